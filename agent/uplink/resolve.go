package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Errors of Resolve; each message is the stable reason a caller reports.
var (
	ErrUnknownCode = errors.New("code_unknown")         // 404: unknown or expired code
	ErrBadCode     = errors.New("code_malformed")       // 400
	ErrUnreachable = errors.New("platform_unreachable") // no answer in time, or 5xx/429
	ErrAuth        = errors.New("auth_failed")          // 401
	ErrBadAnswer   = errors.New("bad_answer")           // a 200 without the four identity fields
)

// Resolve asks the platform who an ehc_online code (CODES.md, normalised) belongs to,
// within ResolveTimeout: a patient is waiting, so there is one attempt and no retry.
// The identity has at least ehc_id, id_type, id_number and name; a photo, if the
// platform sends one, is for the local API only (event.ForPlatform drops it).
func (u *Uplink) Resolve(ctx context.Context, code string) (*event.Identity, error) {
	body, err := json.Marshal(map[string]string{"code": code})
	if err != nil {
		return nil, err
	}
	ans, err := u.do(ctx, http.MethodPost, "/api/v1/codes/resolve", "", body, nil, u.o.ResolveTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnreachable, netReason(err))
	}
	switch s := ans.status; {
	case s == http.StatusOK:
	case s == http.StatusNotFound:
		return nil, ErrUnknownCode
	case s == http.StatusBadRequest:
		return nil, ErrBadCode
	case s == http.StatusUnauthorized:
		u.update(func(st *Status) { st.AuthFailed = true })
		return nil, fmt.Errorf("%w: %s", ErrAuth, answerReason(ans.body, "unauthorized"))
	default:
		return nil, fmt.Errorf("%w: http %d", ErrUnreachable, s)
	}
	var id event.Identity
	if err := json.Unmarshal(ans.body, &id); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if id.EHCID == "" || id.IDType == "" || id.IDNumber == "" || id.Name == "" {
		return nil, fmt.Errorf("%w: ehc_id, id_type, id_number and name are required", ErrBadAnswer)
	}
	return &id, nil
}

// ResolveReason is the stable reason of a Resolve error, and whether the code stays
// pending (the platform could not answer: try again later) rather than invalid.
func ResolveReason(err error) (reason string, pending bool) {
	for _, e := range []error{ErrUnknownCode, ErrBadCode} {
		if errors.Is(err, e) {
			return e.Error(), false
		}
	}
	for _, e := range []error{ErrUnreachable, ErrAuth, ErrBadAnswer} {
		if errors.Is(err, e) {
			return e.Error(), true
		}
	}
	return ErrUnreachable.Error(), true
}
