package uplink

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/outbox"
)

// Batch bounds of PLATFORM.md, Endpoints.
const (
	MaxBatchEvents = 100
	MaxBatchBytes  = 1 << 20
)

// batchJSON is what Pending may return: the body adds `{"events":[`, `]}` and a comma
// between events.
const batchJSON = MaxBatchBytes - len(`{"events":[]}`) - (MaxBatchEvents - 1)

// Dead-letter reasons the agent gives itself; the platform's reasons pass through.
const (
	DeadTooLarge   = "too_large"
	DeadBadRequest = "bad_request"
)

// compactEvery spaces the outbox compactions the delivery loop runs when idle.
const compactEvery = 10 * time.Minute

// maxRetryAfter caps a Retry-After: the platform may ask for a pause, not for the
// terminal to stop for a day.
const maxRetryAfter = 10 * time.Minute

// RunDelivery delivers the outbox until ctx ends; it returns nil then. It never gives
// up on an event: see the package comment for what settles one. One RunDelivery per
// Uplink: two would send the same batches side by side.
func (u *Uplink) RunDelivery(ctx context.Context) error {
	defer u.http.CloseIdleConnections()
	failures := 0
	for ctx.Err() == nil {
		recs, err := u.o.Outbox.Pending(MaxBatchEvents, batchJSON)
		if err != nil {
			failures++
			u.failed("outbox_read")
			u.log.Error("outbox unreadable; retrying", "reason", "outbox_read", "err", err)
			sleep(ctx, u.backoff(failures))
			continue
		}
		failures = 0
		if len(recs) == 0 {
			u.update(func(s *Status) { s.State = StateIdle })
			u.compact()
			u.idle(ctx)
			continue
		}
		u.deliver(ctx, recs)
	}
	return nil
}

// idle waits for Notify, the idle poll, or the end of ctx.
func (u *Uplink) idle(ctx context.Context) {
	t := time.NewTimer(u.o.IdlePoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-u.wake:
	case <-t.C:
	}
}

func (u *Uplink) compact() {
	if time.Since(u.compacted) < compactEvery {
		return
	}
	u.compacted = time.Now()
	if n, err := u.o.Outbox.Compact(time.Now()); err != nil {
		u.log.Warn("outbox compaction failed", "reason", "outbox_compact", "err", err)
	} else if n > 0 {
		u.log.Debug("outbox compacted", "removed", n)
	}
}

// verdict is what to do with a batch after one attempt.
type verdict int

const (
	settled verdict = iota // every event delivered or dead-lettered
	split                  // too large or refused whole: halve it
	retry                  // nothing settled: send the same events again later
)

type outcome struct {
	v          verdict
	reason     string
	retryAfter time.Duration   // retry: the platform's Retry-After, if any
	left       []outbox.Record // retry: what is still unsettled (nil: the whole batch)
}

// deliver settles recs, retrying and splitting as the platform answers, until every
// event in it is delivered or dead-lettered, or ctx ends.
func (u *Uplink) deliver(ctx context.Context, recs []outbox.Record) {
	work := [][]outbox.Record{recs}
	failures := 0
	for len(work) > 0 && ctx.Err() == nil {
		b := work[0]
		out := u.send(ctx, b)
		switch out.v {
		case settled:
			work, failures = work[1:], 0
		case split:
			work, failures = work[1:], 0
			if len(b) == 1 {
				u.deadLetter(b[0], out.reason)
				continue
			}
			h := len(b) / 2
			work = append([][]outbox.Record{b[:h], b[h:]}, work...)
			u.log.Info("batch split", "reason", out.reason, "events", len(b), "first_seq", b[0].Seq)
		case retry:
			if ctx.Err() != nil {
				return // shutting down: the events stay pending for the next start
			}
			failures++
			if out.left != nil {
				work[0] = out.left
			}
			wait := out.retryAfter
			if wait <= 0 {
				wait = u.backoff(failures)
			}
			u.failed(out.reason)
			u.log.Warn("delivery failed; retrying the same batch", "reason", out.reason,
				"events", len(work[0]), "first_seq", work[0][0].Seq, "attempt", failures, "wait", wait.Round(time.Millisecond).String())
			sleep(ctx, wait)
		}
	}
}

func (u *Uplink) deadLetter(r outbox.Record, reason string) {
	if err := u.o.Outbox.DeadLetter(r.Seq, reason); err != nil {
		// Still pending: it will be sent, and refused, again.
		u.log.Error("dead letter not stored", "reason", "outbox_write", "seq", r.Seq, "err", err)
		return
	}
	u.update(func(s *Status) { s.DeadLettered++ })
	u.log.Warn("event dead-lettered", "reason", reason, "seq", r.Seq, "event_id", r.EventID)
}

// send makes one attempt at b.
func (u *Uplink) send(ctx context.Context, b []outbox.Record) outcome {
	size := len(`{"events":[]}`) + len(b) - 1
	for _, r := range b {
		size += len(r.JSON)
	}
	if size > MaxBatchBytes {
		// Pending keeps batches under the limit except for one event that alone is
		// over it, which the platform can only refuse with 413: settle it here.
		return outcome{v: split, reason: DeadTooLarge}
	}
	body := make([]byte, 0, size)
	body = append(body, `{"events":[`...)
	for i, r := range b {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, r.JSON...)
	}
	body = append(body, "]}"...)

	u.update(func(s *Status) {
		if s.State != StateRetrying {
			s.State = StateDelivering
		}
	})
	ans, err := u.do(ctx, http.MethodPost, "/api/v1/events", "", body, nil, u.o.Timeout)
	if err != nil {
		return outcome{v: retry, reason: netReason(err)}
	}
	switch s := ans.status; {
	case s == http.StatusOK:
		return u.settle(b, ans.body)
	case s == http.StatusRequestEntityTooLarge:
		return outcome{v: split, reason: DeadTooLarge}
	case s == http.StatusBadRequest:
		return outcome{v: split, reason: answerReason(ans.body, DeadBadRequest)}
	case s == http.StatusUnauthorized:
		reason := answerReason(ans.body, "unauthorized")
		u.update(func(st *Status) { st.AuthFailed = true })
		u.log.Error("platform refuses the terminal's signature; events are kept and retried",
			"reason", "auth_failed", "platform_reason", reason, "terminal_id", u.o.TerminalID)
		return outcome{v: retry, reason: "auth_failed"}
	case s == http.StatusTooManyRequests:
		return outcome{v: retry, reason: "throttled", retryAfter: u.retryAfter(ans.header)}
	case s >= 500:
		return outcome{v: retry, reason: "platform_" + strconv.Itoa(s), retryAfter: u.retryAfter(ans.header)}
	default:
		// Not a status the spec gives /events (404 from a wrong URL, 403 from a proxy):
		// nothing the platform said settles an event, so keep them and retry.
		return outcome{v: retry, reason: "http_" + strconv.Itoa(s)}
	}
}

// retryAfter reads Retry-After: delay-seconds or an HTTP date (taken against the
// answer's Date, so our clock's offset does not matter).
func (u *Uplink) retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		ref, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			ref = u.Now()
		}
		d = t.Sub(ref)
	}
	return min(max(d, 0), maxRetryAfter)
}

// eventsAnswer is the 200 answer of /events.
type eventsAnswer struct {
	Accepted   []string `json:"accepted"`
	Duplicates []string `json:"duplicates"`
	Rejected   []struct {
		Index   *int   `json:"index"`
		EventID string `json:"event_id"`
		Reason  string `json:"reason"`
	} `json:"rejected"`
}

// settle applies a 200 answer to b: accepted and duplicates are delivered, rejected
// dead-lettered. Events the answer does not mention stay pending and are retried.
func (u *Uplink) settle(b []outbox.Record, body []byte) outcome {
	var a eventsAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return outcome{v: retry, reason: "bad_answer"}
	}
	byID := make(map[string][]int, len(b))
	for i, r := range b {
		k := strings.ToLower(r.EventID)
		byID[k] = append(byID[k], i)
	}
	done := make([]bool, len(b))
	var delivered []uint64
	mark := func(ids []string) {
		for _, id := range ids {
			for _, i := range byID[strings.ToLower(id)] {
				if !done[i] {
					done[i] = true
					delivered = append(delivered, b[i].Seq)
				}
			}
		}
	}
	mark(a.Accepted)
	mark(a.Duplicates)
	type dead struct {
		rec    outbox.Record
		reason string
	}
	var rejected []dead
	for _, rj := range a.Rejected {
		i := -1
		if rj.Index != nil && *rj.Index >= 0 && *rj.Index < len(b) &&
			(rj.EventID == "" || strings.EqualFold(rj.EventID, b[*rj.Index].EventID)) {
			i = *rj.Index
		} else {
			// An index that does not match the id: trust the id.
			for _, j := range byID[strings.ToLower(rj.EventID)] {
				if !done[j] {
					i = j
					break
				}
			}
		}
		if i < 0 || done[i] {
			continue
		}
		done[i] = true
		reason := cleanReason(rj.Reason)
		if reason == "" {
			reason = "rejected"
		}
		rejected = append(rejected, dead{b[i], reason})
	}
	if len(delivered) > 0 {
		if err := u.o.Outbox.Delivered(delivered, time.Now()); err != nil {
			// They stay pending and go again; the platform answers duplicates.
			u.log.Error("delivered events not recorded", "reason", "outbox_write", "err", err)
			return outcome{v: retry, reason: "outbox_write"}
		}
		u.log.Debug("events delivered", "events", len(delivered), "delivered_through", slices.Max(delivered))
	}
	for _, d := range rejected {
		u.deadLetter(d.rec, d.reason)
	}
	var left []outbox.Record
	for i, r := range b {
		if !done[i] {
			left = append(left, r)
		}
	}
	dups := 0
	for _, id := range a.Duplicates {
		dups += len(byID[strings.ToLower(id)])
	}
	u.update(func(s *Status) {
		s.Delivered += uint64(len(delivered))
		s.Duplicates += uint64(dups)
		s.LastDelivery = time.Now()
		if s.State == StateRetrying {
			s.State = StateDelivering
		}
	})
	if len(left) > 0 {
		return outcome{v: retry, reason: "incomplete_answer", left: left}
	}
	return outcome{v: settled}
}
