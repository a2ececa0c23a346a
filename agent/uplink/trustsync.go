package uplink

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// minTrustPause keeps a key set whose next_update is now, or just passed, from making
// the sync loop spin.
const minTrustPause = 5 * time.Second

// syncError is a failed trust sync; transient ones (no answer, 5xx, 401, 429) are
// retried with backoff, a refused document waits for the next regular sync.
type syncError struct {
	kind, reason string
	transient    bool
	err          error
}

func (e *syncError) Error() string {
	s := e.kind + ": " + e.reason
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *syncError) Unwrap() error { return e.err }

// RunTrustSync keeps the trust store fresh until ctx ends: a sync at once, then at
// the key set's next_update or after TrustSyncInterval, whichever comes first. It
// returns nil at once when there is no trust store.
func (u *Uplink) RunTrustSync(ctx context.Context) error {
	if u.o.Trust == nil {
		return nil
	}
	failures := 0
	for {
		err := u.SyncTrust(ctx)
		var wait time.Duration
		var se *syncError
		if errors.As(err, &se) && se.transient {
			failures++
			wait = min(u.backoff(failures), u.o.TrustSyncInterval)
		} else {
			failures = 0
			wait = u.nextTrustSync()
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// nextTrustSync is the pause until the next regular sync: the interval, or less when
// the key set says a new one is due sooner — plus a tenth of that, at most 30 s, of
// jitter then, so that a fleet does not ask at the same second.
func (u *Uplink) nextTrustSync() time.Duration {
	wait := u.o.TrustSyncInterval
	now := u.Now()
	due := u.o.Trust.Versions(now).NextUpdate.Sub(now)
	if due > 0 && due < wait {
		wait = due + rand.N(min(30*time.Second, due/10)+1)
	}
	return max(wait, minTrustPause)
}

// SyncTrust fetches both trust documents once (conditionally, with the ETags of the
// last accepted ones) and applies what changed through the trust store, which verifies
// the anchor's signature and refuses a lower version. A refused document leaves the
// cached one in use; the refusal is logged with its reason and kept in Status.
func (u *Uplink) SyncTrust(ctx context.Context) error {
	if u.o.Trust == nil {
		return nil
	}
	err := errors.Join(u.syncDocument(ctx, trust.KindKeySet), u.syncDocument(ctx, trust.KindRevocations))
	u.update(func(s *Status) {
		s.TrustSyncAt = time.Now()
		var se *syncError
		if errors.As(err, &se) {
			s.TrustError = se.kind + ": " + se.reason
		} else {
			s.TrustError = ""
		}
	})
	return err
}

func (u *Uplink) syncDocument(ctx context.Context, kind string) error {
	v := u.o.Trust.Versions(u.Now())
	path, query, have, version := "/api/v1/trust/keyset", "", v.HasKeySet, v.KeySet
	apply := u.o.Trust.ApplyKeySet
	if kind == trust.KindRevocations {
		path, have, version = "/api/v1/trust/revocations", v.HasRevocations, v.Revocations
		apply = u.o.Trust.ApplyRevocations
		// The endpoint always carries since (PLATFORM.md, Endpoints). Without a cached
		// list it is 0: versions start at 1, so any published list is above it.
		if !have {
			version = 0
		}
		query = "since=" + strconv.FormatUint(version, 10)
	}
	hdr := http.Header{}
	u.mu.Lock()
	etag := u.etags[kind]
	u.mu.Unlock()
	if etag != "" && have {
		hdr.Set("If-None-Match", etag)
	}
	ans, err := u.do(ctx, http.MethodGet, path, query, nil, hdr, u.o.Timeout)
	if err != nil {
		return &syncError{kind: kind, reason: netReason(err), transient: true, err: err}
	}
	switch s := ans.status; {
	case s == http.StatusNotModified:
		return nil
	case s == http.StatusNotFound && kind == trust.KindRevocations:
		return nil // the platform publishes no revocation list: nothing revoked
	case s == http.StatusOK:
	case s == http.StatusUnauthorized:
		u.update(func(st *Status) { st.AuthFailed = true })
		return &syncError{kind: kind, reason: "auth_failed", transient: true}
	default:
		return &syncError{kind: kind, reason: "http_" + strconv.Itoa(s), transient: true}
	}
	if err := apply(ans.body); err != nil {
		reason := trust.Reason(err)
		if reason == "" {
			reason = "refused"
		}
		u.log.Warn("trust document from the platform refused; the cached one stays in use",
			"reason", reason, "kind", kind, "cached_version", version, "err", err.Error())
		return &syncError{kind: kind, reason: reason, transient: reason == trust.ReasonStorage, err: err}
	}
	u.mu.Lock()
	u.etags[kind] = ans.header.Get("ETag")
	u.mu.Unlock()
	after := u.o.Trust.Versions(u.Now())
	nv := after.KeySet
	if kind == trust.KindRevocations {
		nv = after.Revocations
	}
	if nv != version || !have {
		u.log.Info("trust document updated", "kind", kind, "version", nv, "previous", version)
	}
	return nil
}
