package pipeline

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/offline/verify"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

const paymentCode = "6225881234567890123" // classified, never verified: no trust needed

// healthRig is a running pipeline over a real outbox in a bbolt file, with the db
// exposed: a test holds bbolt's single writer lock to make journal writes hang exactly
// as a stuck commit would.
func healthRig(t *testing.T, subs ...Subscriber) (*Pipeline, *bbolt.DB, *issuer.Keys) {
	t.Helper()
	keys, db, ts := stores(t)
	rc, err := replay.Open(db, replay.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := seal.NewRing(make([]byte, 16))
	ob, err := outbox.Open(db, ring, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{TerminalID: "T-1"}, verify.New(ts, rc, verify.Options{}), ob)
	for _, s := range subs {
		p.Subscribe(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; rc.Close() })
	return p, db, keys
}

func submit(t *testing.T, p *Pipeline, code string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Submit(ctx, device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte(code), At: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// waitStats waits until the counters satisfy ok.
func waitStats(t *testing.T, p *Pipeline, what string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(p.Snapshot()) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %+v", what, p.Snapshot())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestHealthIdlePipelineStaysHealthy(t *testing.T) {
	p, _, _ := healthRig(t)
	h := p.NewHealth()
	t0 := time.Now()
	for _, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(48 * time.Hour)} {
		if ok, stuck := h.Check(at, time.Second); !ok || stuck != 0 {
			t.Fatalf("idle pipeline at +%v: healthy=%v stuck=%v", at.Sub(t0), ok, stuck)
		}
	}
}

// A journal write that never returns (bbolt's writer lock held, as by a commit stuck in
// fsync) makes the pipeline unhealthy once the bound passes, and healthy again when the
// write completes.
func TestHealthStuckJournalWrite(t *testing.T) {
	p, db, _ := healthRig(t)
	h := p.NewHealth()
	submit(t, p, paymentCode)
	waitStats(t, p, "first event", func(s Stats) bool { return s.Events == 1 })

	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			tx.Rollback()
		}
	}()
	submit(t, p, paymentCode)
	waitStats(t, p, "the read to enter", func(s Stats) bool { return s.Reads == 2 })
	time.Sleep(20 * time.Millisecond) // let it reach the writer lock: it stays there

	bound := time.Second
	t0 := time.Now()
	if ok, _ := h.Check(t0, bound); !ok {
		t.Fatal("unhealthy at the first sight of a pending read")
	}
	if ok, stuck := h.Check(t0.Add(bound), bound); !ok || stuck != bound {
		t.Fatalf("at the bound: healthy=%v stuck=%v, want healthy, %v", ok, stuck, bound)
	}
	if ok, stuck := h.Check(t0.Add(bound+time.Millisecond), bound); ok || stuck <= bound {
		t.Fatalf("past the bound with the journal hung: healthy=%v stuck=%v", ok, stuck)
	}
	if s := p.Snapshot(); s.Events != 1 {
		t.Fatalf("the hung write completed after all: %+v", s)
	}

	tx.Rollback()
	released = true
	waitStats(t, p, "the hung write to commit", func(s Stats) bool { return s.Events == 2 })
	if ok, stuck := h.Check(t0.Add(10*bound), bound); !ok || stuck != 0 {
		t.Fatalf("after the write completed: healthy=%v stuck=%v", ok, stuck)
	}
}

// gate is a subscriber that blocks on each event until the test lets it go: a
// subscriber breaking the "must not block" rule.
type gate struct{ in, out chan struct{} }

func (g gate) Event(*event.Event) {
	g.in <- struct{}{}
	<-g.out
}

// Reads queued behind a blocked subscriber are work without progress; each completed
// read is progress and restarts the clock.
func TestHealthBlockedSubscriberAndProgress(t *testing.T) {
	g := gate{in: make(chan struct{}, 8), out: make(chan struct{})}
	p, _, _ := healthRig(t, g)
	defer close(g.out) // lets every remaining event through at the end
	h := p.NewHealth()
	for range 3 {
		submit(t, p, paymentCode)
	}
	<-g.in // the first event is in the subscriber; two reads wait behind it
	bound := time.Second
	t0 := time.Now()
	if ok, _ := h.Check(t0, bound); !ok {
		t.Fatal("unhealthy at first sight")
	}
	if ok, _ := h.Check(t0.Add(2*bound), bound); ok {
		t.Fatal("healthy with reads queued behind a blocked subscriber for twice the bound")
	}

	g.out <- struct{}{} // the first event is delivered; the second read gets processed
	<-g.in
	if ok, stuck := h.Check(t0.Add(3*bound), bound); !ok || stuck != 0 {
		t.Fatalf("after progress: healthy=%v stuck=%v", ok, stuck)
	}
	if ok, _ := h.Check(t0.Add(3*bound+bound/2), bound); !ok {
		t.Fatal("unhealthy within the bound after progress")
	}
	if ok, _ := h.Check(t0.Add(5*bound), bound); ok {
		t.Fatal("healthy after the subscriber blocked again for twice the bound")
	}
}

// Every outcome of a read — event, double read, journal error — must settle the
// in-flight count, or the watchdog would take a finished read for a stuck one. This
// fails if a new return path in process forgets its counter.
func TestHealthEveryOutcomeSettles(t *testing.T) {
	p, db, keys := healthRig(t)
	h := p.NewHealth()
	code, err := keys.NewCode(issuer.CodeOptions{Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	far := time.Now().Add(time.Hour)
	check := func(what string) {
		t.Helper()
		if ok, stuck := h.Check(far, time.Millisecond); !ok || stuck != 0 {
			t.Fatalf("after %s: healthy=%v stuck=%v, counters %+v", what, ok, stuck, p.Snapshot())
		}
	}

	submit(t, p, code)
	waitStats(t, p, "event", func(s Stats) bool { return s.Events == 1 })
	check("an event")

	submit(t, p, code) // same device, same code, at once: a double read
	waitStats(t, p, "double read", func(s Stats) bool { return s.DoubleReads == 1 })
	check("a double read")

	if err := db.Close(); err != nil { // every journal write now fails
		t.Fatal(err)
	}
	submit(t, p, paymentCode)
	waitStats(t, p, "journal error", func(s Stats) bool { return s.JournalErrors == 1 })
	check("a journal error")
}
