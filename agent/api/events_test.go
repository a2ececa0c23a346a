package api_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

func seqs(t *testing.T, body []byte) []uint64 {
	t.Helper()
	var es []event.Event
	if err := json.Unmarshal(body, &es); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLongPollReturnsOnNewEvent(t *testing.T) {
	h := start(t, func(o *api.Options) { o.StartSeq = 41 })
	type result struct {
		body []byte
		took time.Duration
		hdr  string
		err  error
	}
	res := make(chan result, 1)
	t0 := time.Now()
	go func() {
		resp, body, err := h.try("GET", "/v1/events?after=41&wait=30s", auth())
		r := result{body: body, took: time.Since(t0), err: err}
		if err == nil {
			r.hdr = resp.Header.Get("Ehc-Events-Missed")
		}
		res <- r
	}()
	time.Sleep(150 * time.Millisecond) // the poll is waiting by now
	select {
	case r := <-res:
		t.Fatalf("long-poll answered before any event: %s", r.body)
	default:
	}
	h.srv.Event(testEvent(42, 0))
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := seqs(t, r.body); !equal(got, []uint64{42}) {
			t.Fatalf("got seqs %v, want [42]", got)
		}
		if r.took > 2*time.Second || r.hdr != "" {
			t.Fatalf("took %s, missed header %q", r.took, r.hdr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll did not return after an event")
	}

	// Events already there are returned at once, oldest first, and the full event
	// (identity included) reaches the local client.
	h.srv.Event(testEvent(43, 0))
	h.srv.Event(testEvent(44, 0))
	resp, body := h.do(t, "GET", "/v1/events?after=42&wait=30s", auth())
	if got := seqs(t, body); !equal(got, []uint64{43, 44}) {
		t.Fatalf("got %v, want [43 44]", got)
	}
	var es []event.Event
	json.Unmarshal(body, &es)
	if es[0].Identity == nil || es[0].Identity.IDNumber != idNumber {
		t.Fatalf("identity not delivered to the local API: %s", body)
	}
	if resp.Header.Get("Ehc-Last-Seq") != "44" || resp.Header.Get("Ehc-First-Seq") != "42" {
		t.Fatalf("headers %v", resp.Header)
	}
}

func TestLongPollTimesOutEmpty(t *testing.T) {
	h := start(t, nil)
	h.srv.Event(testEvent(1, 0))
	t0 := time.Now()
	resp, body := h.do(t, "GET", "/v1/events?after=1&wait=300ms", auth())
	took := time.Since(t0)
	if resp.StatusCode != 200 || string(body) != "[]" {
		t.Fatalf("%d %q, want 200 []", resp.StatusCode, body)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Fatalf("returned after %s, want about 300ms", took)
	}
	// wait given in seconds, and no wait at all
	if _, body := h.do(t, "GET", "/v1/events?after=1&wait=0", auth()); string(body) != "[]" {
		t.Fatalf("wait=0: %q", body)
	}
	// Without after, only what comes next: the event already there is not returned.
	if _, body := h.do(t, "GET", "/v1/events?wait=200ms", auth()); string(body) != "[]" {
		t.Fatalf("no after: %q", body)
	}
	for _, q := range []string{"after=-1", "after=x", "wait=soon", "wait=-1s"} {
		if resp, _ := h.do(t, "GET", "/v1/events?"+q, auth()); resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

func TestLongPollReportsMissedEvents(t *testing.T) {
	h := start(t, func(o *api.Options) { o.RingSize = 10; o.StartSeq = 100 })
	// Before anything is published, events up to 100 are from before this process.
	resp, body := h.do(t, "GET", "/v1/events?after=90&wait=10s", auth())
	if string(body) != "[]" || resp.Header.Get("Ehc-Events-Missed") != "true" || resp.Header.Get("Ehc-Last-Seq") != "100" {
		t.Fatalf("before start: %q %v", body, resp.Header)
	}
	for s := uint64(101); s <= 125; s++ {
		h.srv.Event(testEvent(s, 0))
	}
	resp, body = h.do(t, "GET", "/v1/events?after=105&wait=10s", auth())
	want := []uint64{}
	for s := uint64(116); s <= 125; s++ {
		want = append(want, s)
	}
	if got := seqs(t, body); !equal(got, want) {
		t.Fatalf("got %v, want the ring %v", got, want)
	}
	if resp.Header.Get("Ehc-Events-Missed") != "true" || resp.Header.Get("Ehc-First-Seq") != "116" {
		t.Fatalf("missed not reported: %v", resp.Header)
	}
	// Reading from the oldest held event on misses nothing.
	resp, body = h.do(t, "GET", "/v1/events?after=115", auth())
	if got := seqs(t, body); !equal(got, want) || resp.Header.Get("Ehc-Events-Missed") != "" {
		t.Fatalf("after=115: %v %v", got, resp.Header)
	}
	if resp.Header.Get("Ehc-Last-Seq") != strconv.Itoa(125) {
		t.Fatalf("last seq header %q", resp.Header.Get("Ehc-Last-Seq"))
	}
}
