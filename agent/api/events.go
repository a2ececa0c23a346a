package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// handleEvents is the long-poll: GET /v1/events?after=SEQ&wait=30s answers a JSON array
// of the events with seq > after as soon as there is at least one, or [] once wait has
// passed. Without after, only events committed from now on are returned. When some
// events after `after` are no longer held (the ring keeps the last RingSize, and none
// from before the agent started), the answer comes at once with Ehc-Events-Missed: true;
// Ehc-First-Seq and Ehc-Last-Seq tell the oldest and the newest seq there is.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_after", "after must be a seq (a non-negative integer)")
			return
		}
		after = n
	} else {
		after = s.hub.lastSeq()
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		d, err := parseWait(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_wait", "wait must be a duration such as 30s, or seconds")
			return
		}
		wait = min(d, MaxWait)
	}

	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		win, wake := s.hub.since(after)
		if len(win.entries) > 0 || win.missed || wait <= 0 {
			writeEvents(w, win)
			return
		}
		select {
		case <-wake:
		case <-timeout:
			writeEvents(w, win)
			return
		case <-s.closing:
			writeEvents(w, win)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func writeEvents(w http.ResponseWriter, win window) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Ehc-First-Seq", strconv.FormatUint(win.first, 10))
	h.Set("Ehc-Last-Seq", strconv.FormatUint(win.last, 10))
	if win.missed {
		h.Set("Ehc-Events-Missed", "true")
	}
	w.Write(joinJSON(win.entries))
}

func parseWait(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		return 0, errors.New("negative duration")
	}
	return d, err
}
