package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Lending a device: another program on the machine (the national medical-insurance
// SDK, which opens the scanner's port itself) needs the port for a while. The driver
// finishes a read in progress, closes its port or USB interface, reports StateLent and
// neither opens nor retries anything until the lend ends: at its deadline, or on
// Reclaim. It then goes back to its normal reconnect loop, so a lender that still holds
// the port shows as the driver's usual "port busy" connecting state until it lets go.
//
// The bookkeeping (one lend at a time, the deadline) is Loan's, kept by the driver and
// not by its caller: the driver's run loop is already waiting on its own events, so the
// deadline costs no goroutine, a lend can never outlive its deadline whatever the caller
// does, and "already lent" is decided under the same lock that changes the state.

// Lend limits.
const (
	MinLend = time.Second
	MaxLend = 600 * time.Second
	// LendGrace bounds the wait for a read in progress to finish before the device is
	// closed for a lend; a read still unfinished then is dropped.
	LendGrace = time.Second
)

// Errors of Lend and Reclaim. Their text is the stable reason code; errors.Is tells them
// apart through wrapping.
var (
	ErrUnknownDevice = errors.New("unknown_device") // no device of that name
	ErrNotLendable   = errors.New("not_lendable")   // the driver cannot give its device away (pcsc, sim)
	ErrAlreadyLent   = errors.New("already_lent")   // lent (or being lent) to another caller
	ErrNotLent       = errors.New("not_lent")       // Reclaim of a device that is not lent
	ErrBadLendTime   = errors.New("bad_seconds")    // the lend's length is outside MinLend..MaxLend
	ErrNotRunning    = errors.New("not_running")    // the driver did not take the lend in time (not running)
)

// State reasons of a lend.
const (
	ReasonLent        = "lent"         // lent: closed for another program until Detail's time
	ReasonReclaimed   = "reclaimed"    // connecting: Reclaim ended the lend
	ReasonLendExpired = "lend_expired" // connecting: the lend's deadline passed
)

// Lender is implemented by devices that can be lent.
type Lender interface {
	// Lend closes the device for another program until until, or until Reclaim. It
	// returns once the device is closed and StateLent reported (a read in progress is
	// finished first, within LendGrace), or with ErrAlreadyLent, or with ErrNotRunning
	// when ctx ends first (nothing is then lent).
	Lend(ctx context.Context, until time.Time) error
	// Reclaim ends a lend early: it returns once the driver has left StateLent and is
	// opening the device again, or with ErrNotLent.
	Reclaim(ctx context.Context) error
}

type loanPhase uint8

const (
	loanFree   loanPhase = iota
	loanAsked            // Lend waits for the run loop to close the device
	loanLent             // closed, StateLent reported
	loanReturn           // Reclaim waits for the run loop to leave StateLent
)

// Loan is the lend bookkeeping of one device, for a driver to embed: Lend and Reclaim
// come from any goroutine, the driver's run loop waits on Wake and calls Asked and Hold.
// The zero value is ready.
type Loan struct {
	mu      sync.Mutex
	phase   loanPhase
	until   time.Time
	changed chan struct{} // closed and replaced on every phase change: waiters watch it
	wake    chan struct{} // capacity 1: a pending request for the run loop
}

// init makes the channels; l.mu is held.
func (l *Loan) init() {
	if l.wake == nil {
		l.wake = make(chan struct{}, 1)
		l.changed = make(chan struct{})
	}
}

// set changes the phase and wakes every waiter; l.mu is held.
func (l *Loan) set(p loanPhase) {
	l.phase = p
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Loan) kick() {
	select {
	case l.wake <- struct{}{}:
	default: // one pending wake is enough: the run loop reads the phase
	}
}

// Wake is the channel the driver's run loop waits on besides its own events: a value
// means Lend or Reclaim was called. Spurious wakes are harmless.
func (l *Loan) Wake() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	return l.wake
}

// Asked reports whether a lend waits for the driver to close its device.
func (l *Loan) Asked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase == loanAsked
}

// Lend implements Lender.Lend for the driver.
func (l *Loan) Lend(ctx context.Context, until time.Time) error {
	if d := time.Until(until); d <= 0 || d > MaxLend+time.Second {
		return fmt.Errorf("%w: the lend must end within %s", ErrBadLendTime, MaxLend)
	}
	l.mu.Lock()
	l.init()
	if l.phase != loanFree {
		until := l.until
		l.mu.Unlock()
		return fmt.Errorf("%w until %s", ErrAlreadyLent, until.Format(time.RFC3339))
	}
	l.until = until
	l.set(loanAsked)
	changed := l.changed
	l.mu.Unlock()
	l.kick()
	select {
	case <-changed:
		return nil // lent (Hold reported it), or undone by a Reclaim
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.phase == loanAsked && l.changed == changed {
		l.set(loanFree)
		return fmt.Errorf("%w: the driver did not close the device: %v", ErrNotRunning, ctx.Err())
	}
	return nil
}

// Reclaim implements Lender.Reclaim for the driver.
func (l *Loan) Reclaim(ctx context.Context) error {
	for {
		l.mu.Lock()
		l.init()
		phase, changed := l.phase, l.changed
		switch phase {
		case loanFree:
			l.mu.Unlock()
			return ErrNotLent
		case loanLent:
			l.set(loanReturn)
			changed = l.changed
		}
		l.mu.Unlock()
		if phase == loanLent {
			l.kick()
		}
		// Asked: wait for the lend to be taken, then reclaim it. Return: another
		// Reclaim asked already; this one ends with it.
		select {
		case <-changed:
			if phase != loanAsked {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: the driver did not reopen the device: %v", ErrNotRunning, ctx.Err())
		}
	}
}

// Hold is called by the driver's run loop, with its device closed, when Asked reports
// a lend. It reports StateLent through report, waits for the lend to end (deadline,
// Reclaim or ctx) without using the CPU, and reports the connecting state that follows
// (reason ReasonLendExpired or ReasonReclaimed) before it returns that reason. The
// driver then opens its device at once. It returns "" when ctx ended (the driver then
// reports stopped), or when the lend was withdrawn before Hold took it.
//
// report is called with the Loan's lock held, so that a Lend or Reclaim returns only
// once its state is visible: it must not call Lend or Reclaim.
func (l *Loan) Hold(ctx context.Context, report func(state, reason, detail string)) string {
	l.mu.Lock()
	l.init()
	if l.phase != loanAsked {
		l.mu.Unlock()
		return ""
	}
	until := l.until
	report(StateLent, ReasonLent, "until "+until.Format(time.RFC3339))
	l.set(loanLent)
	l.mu.Unlock()

	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	end := func(reason string) string {
		l.mu.Lock()
		defer l.mu.Unlock()
		if reason != "" {
			report(StateConnecting, reason, "")
		}
		l.set(loanFree)
		return reason
	}
	for {
		select {
		case <-ctx.Done():
			return end("")
		case <-timer.C:
			return end(ReasonLendExpired)
		case <-l.wake:
			l.mu.Lock()
			back := l.phase == loanReturn
			l.mu.Unlock()
			if back {
				return end(ReasonReclaimed)
			}
		}
	}
}
