package uplink

import (
	"encoding/json"
	"strings"
	"time"
)

// Delivery states of Status.State.
const (
	StateIdle       = "idle"        // nothing pending
	StateDelivering = "delivering"  // sending, the last attempt succeeded
	StateRetrying   = "retrying"    // the last attempt failed; waiting to send the same batch again
	StateAuthFailed = "auth_failed" // the platform refuses the signature; retrying, nothing dropped
)

// Status is the uplink's state for the status API, logs and metrics.
type Status struct {
	URL          string    `json:"url"`
	State        string    `json:"state"`
	LastSuccess  time.Time `json:"last_success,omitzero"`  // last answer past authentication
	LastDelivery time.Time `json:"last_delivery,omitzero"` // last batch the platform settled
	LastError    string    `json:"last_error,omitempty"`   // reason of the last failure
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	AuthFailed   bool      `json:"auth_failed"`
	// ClockOffset is raised when the platform's clock is beyond the limit from ours;
	// ClockOffsetSeconds is the last measured offset, platform − local.
	// ClockMeasuredAt is when it was last measured; zero before any answer with a Date
	// (ClockOffsetSeconds is 0 then, which says nothing of the clocks).
	ClockOffset        bool      `json:"clock_offset"`
	ClockOffsetSeconds float64   `json:"clock_offset_seconds"`
	ClockMeasuredAt    time.Time `json:"clock_measured_at,omitzero"`
	// Counters since start: events acknowledged (accepted or duplicate), of which
	// duplicates, events dead-lettered, and failed attempts.
	Delivered    uint64 `json:"delivered"`
	Duplicates   uint64 `json:"duplicates"`
	DeadLettered uint64 `json:"dead_lettered"`
	Retries      uint64 `json:"retries"`
	// Trust sync: when both documents were last checked, and why the last one was
	// refused or could not be fetched ("keyset: bad_signature").
	TrustSyncAt time.Time `json:"trust_sync_at,omitzero"`
	TrustError  string    `json:"trust_error,omitempty"`
}

// Status returns the uplink's state now.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	s := u.st
	u.mu.Unlock()
	off, raised := u.ClockOffset()
	s.ClockOffset, s.ClockOffsetSeconds = raised, off.Seconds()
	if at := u.measuredAt.Load(); at != 0 {
		s.ClockMeasuredAt = time.Unix(0, at)
	}
	if s.AuthFailed {
		s.State = StateAuthFailed
	}
	return s
}

func (u *Uplink) update(f func(s *Status)) {
	u.mu.Lock()
	f(&u.st)
	u.mu.Unlock()
}

// failed records a failed attempt.
func (u *Uplink) failed(reason string) {
	u.update(func(s *Status) {
		s.State, s.LastError, s.LastErrorAt = StateRetrying, reason, time.Now()
		s.Retries++
	})
}

// answerReason reads {"reason": …} from an answer, cleaned for storage and logs:
// lowercase letters, digits and _ only, at most 64 bytes. The platform's text is not
// trusted to be short or printable.
func answerReason(body []byte, fallback string) string {
	var a struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(body, &a)
	if r := cleanReason(a.Reason); r != "" {
		return r
	}
	return fallback
}

func cleanReason(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
