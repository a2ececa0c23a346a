package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// DefaultApplyTimeout is how long a card application may take, retries included
// (PLATFORM.md, "Card application": default 5 s).
const DefaultApplyTimeout = 5 * time.Second

// Errors of Apply beside ErrUnreachable, ErrAuth and ErrBadAnswer.
var (
	// ErrRefused: the platform refused the application (422); RefusedError has its reason.
	ErrRefused = errors.New("application_refused")
)

// RefusedError is a 422 from /cards/apply, with the platform's reason (bad_id_number,
// invalid_applicant, …).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return ErrRefused.Error() + ": " + e.Reason }

func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Application is the body of POST /api/v1/cards/apply (PLATFORM.md, "Card
// application"). It is personal data: never log it.
type Application struct {
	ApplicationID string    `json:"application_id"` // UUIDv7, the idempotency key
	TerminalID    string    `json:"terminal_id"`
	Applicant     Applicant `json:"applicant"`
	Source        string    `json:"source"` // id_card_reader | manual
	Consent       Consent   `json:"consent"`
}

// Applicant is who applies. Fields that are not known are left out.
type Applicant struct {
	IDType    string `json:"id_type"`
	IDNumber  string `json:"id_number"`
	Name      string `json:"name"`
	Gender    string `json:"gender,omitempty"`
	Ethnicity string `json:"ethnicity,omitempty"`
	BirthDate string `json:"birth_date,omitempty"`
	Address   string `json:"address,omitempty"`
	IDValidTo string `json:"id_valid_to,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

// Consent is the consent the applicant gave on the kiosk.
type Consent struct {
	TextVersion string `json:"text_version"`
	At          string `json:"at"` // RFC 3339
}

// Issued is the platform's answer: the card, and whether it was created now (false: the
// resident already had it).
type Issued struct {
	EHCID   string `json:"ehc_id"`
	Code    string `json:"code"`
	Created bool   `json:"created"`
}

// Apply sends a card application, online only: nothing is queued. A lost answer, a
// reset, a 5xx or a 429 is retried with the same application_id (the platform answers
// a repeat as it answered the first) until timeout has passed since the call; each
// attempt is signed anew. Then the error is ErrUnreachable. A 422 is a *RefusedError
// (ErrRefused), a 401 ErrAuth, any other answer ErrBadAnswer; none of them is retried.
func (u *Uplink) Apply(ctx context.Context, a *Application, timeout time.Duration) (*Issued, error) {
	if timeout <= 0 {
		timeout = DefaultApplyTimeout
	}
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for n := 1; ; n++ {
		remaining := time.Until(deadlineOf(ctx))
		if remaining <= 0 || ctx.Err() != nil {
			break
		}
		ans, err := u.do(ctx, http.MethodPost, "/api/v1/cards/apply", "", body, nil, remaining)
		switch {
		case err != nil:
			last = netReason(err)
		case ans.status == http.StatusOK || ans.status == http.StatusCreated:
			var is Issued
			if err := json.Unmarshal(ans.body, &is); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadAnswer, err)
			}
			if is.EHCID == "" || is.Code == "" {
				return nil, fmt.Errorf("%w: ehc_id and code are required", ErrBadAnswer)
			}
			return &is, nil
		case ans.status == http.StatusUnprocessableEntity:
			return nil, &RefusedError{Reason: answerReason(ans.body, "invalid")}
		case ans.status == http.StatusUnauthorized:
			u.update(func(st *Status) { st.AuthFailed = true })
			return nil, fmt.Errorf("%w: %s", ErrAuth, answerReason(ans.body, "unauthorized"))
		case ans.status >= 500 || ans.status == http.StatusTooManyRequests:
			last = fmt.Sprintf("http %d", ans.status)
		default:
			return nil, fmt.Errorf("%w: http %d %s", ErrBadAnswer, ans.status, answerReason(ans.body, ""))
		}
		u.log.Info("card application: no answer, retrying with the same application_id",
			"reason", last, "attempt", n)
		// Short pauses: a patient is waiting, and the deadline bounds the whole.
		if !sleep(ctx, min(u.backoff(n), time.Second)) {
			break
		}
	}
	if last == "" {
		last = "timeout"
	}
	if ctx.Err() != nil && last != "timeout" {
		last += ", then timeout"
	}
	return nil, fmt.Errorf("%w: %s", ErrUnreachable, last)
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
