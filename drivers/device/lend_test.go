package device

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// loop is a driver's run loop reduced to its lend part: it waits on Wake and holds
// while Asked, recording the states it reports.
type loop struct {
	l      *Loan
	mu     sync.Mutex
	states []string
}

func (p *loop) report(state, reason, _ string) {
	p.mu.Lock()
	p.states = append(p.states, state+"/"+reason)
	p.mu.Unlock()
}

func (p *loop) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.states) == 0 {
		return ""
	}
	return p.states[len(p.states)-1]
}

func runLoop(t *testing.T, l *Loan) *loop {
	p := &loop{l: l}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if l.Asked() {
				l.Hold(ctx, p.report)
				continue
			}
			select {
			case <-ctx.Done():
			case <-l.Wake():
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func TestLoan(t *testing.T) {
	var l Loan
	p := runLoop(t, &l)
	ctx := context.Background()
	if err := l.Reclaim(ctx); !errors.Is(err, ErrNotLent) {
		t.Fatalf("reclaim before any lend: %v", err)
	}
	if err := l.Lend(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Lend returns only once the state is reported.
	if got := p.last(); got != StateLent+"/"+ReasonLent {
		t.Fatalf("after Lend: %q", got)
	}
	if err := l.Lend(ctx, time.Now().Add(time.Minute)); !errors.Is(err, ErrAlreadyLent) {
		t.Fatalf("second lend: %v", err)
	}
	// Two reclaims at once: both return once the loop left the lend; neither fails.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- l.Reclaim(ctx) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, ErrNotLent) {
			t.Fatalf("reclaim: %v", err)
		}
	}
	if got := p.last(); got != StateConnecting+"/"+ReasonReclaimed {
		t.Fatalf("after Reclaim: %q", got)
	}
	// Expiry.
	if err := l.Lend(ctx, time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.last() != StateConnecting+"/"+ReasonLendExpired {
		if time.Now().After(deadline) {
			t.Fatalf("no expiry: %v", p.states)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Lend(ctx, time.Now().Add(MaxLend+time.Minute)); !errors.Is(err, ErrBadLendTime) {
		t.Fatalf("too long a lend: %v", err)
	}
}

// A lend no run loop takes fails with not_running, and leaves the device free.
func TestLoanNotTaken(t *testing.T) {
	var l Loan
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := l.Lend(ctx, time.Now().Add(time.Minute)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("lend: %v", err)
	}
	if l.Asked() {
		t.Fatal("still asked after the lend gave up")
	}
	runLoop(t, &l)
	if err := l.Lend(context.Background(), time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("lend after a given-up one: %v", err)
	}
}
