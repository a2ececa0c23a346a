package devicetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// Recorder is a device.Sink that queues what it is told for the test to wait on. It
// never blocks the driver: what a full queue cannot take is counted in Overflow (a
// test should fail on it). Every state and drop is also kept, in order.
type Recorder struct {
	Reads    chan device.Read
	States   chan device.State
	Drops    chan device.Drop // nil: drops are only kept
	Overflow atomic.Int64

	mu     sync.Mutex
	states []device.State
	drops  []device.Drop
}

// NewRecorder makes a Recorder whose queues hold that many reads, states and drops;
// drops 0 queues no drops.
func NewRecorder(reads, states, drops int) *Recorder {
	r := &Recorder{Reads: make(chan device.Read, reads), States: make(chan device.State, states)}
	if drops > 0 {
		r.Drops = make(chan device.Drop, drops)
	}
	return r
}

func (r *Recorder) Read(x device.Read) {
	select {
	case r.Reads <- x:
	default:
		r.Overflow.Add(1)
	}
}

func (r *Recorder) State(x device.State) {
	r.mu.Lock()
	r.states = append(r.states, x)
	r.mu.Unlock()
	select {
	case r.States <- x:
	default:
		r.Overflow.Add(1)
	}
}

func (r *Recorder) Drop(x device.Drop) {
	r.mu.Lock()
	r.drops = append(r.drops, x)
	r.mu.Unlock()
	if r.Drops == nil {
		return
	}
	select {
	case r.Drops <- x:
	default:
		r.Overflow.Add(1)
	}
}

// StatesSoFar is every state the device has told, in order.
func (r *Recorder) StatesSoFar() []device.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]device.State(nil), r.states...)
}

// DropsSoFar is every drop the device has told, in order.
func (r *Recorder) DropsSoFar() []device.Drop {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]device.Drop(nil), r.drops...)
}

// WaitState returns the next state change to want, skipping others; none within
// `within` fails the test.
func (r *Recorder) WaitState(t testing.TB, want string, within time.Duration) device.State {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case s := <-r.States:
			if s.State == want {
				return s
			}
		case <-deadline:
			t.Fatalf("no %q state within %s; states: %+v", want, within, r.StatesSoFar())
		}
	}
}

// CheckStopped fails the test unless the device's last state was stopped and every
// event it sent fitted the queues: what a test could not see, it must not pass over.
func (r *Recorder) CheckStopped(t testing.TB) {
	t.Helper()
	CheckStopped(t, r.StatesSoFar())
	if n := r.Overflow.Load(); n > 0 {
		t.Errorf("%d sink events overflowed the test's queues", n)
	}
}
