package serial

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// recorder is a device.Sink that queues everything for the test to wait on. It never
// blocks the driver: a full queue is counted and fails the test.
type recorder struct {
	reads    chan device.Read
	states   chan device.State
	drops    chan device.Drop
	overflow atomic.Int64

	mu        sync.Mutex
	allStates []device.State
	allDrops  []device.Drop
}

func newRecorder() *recorder {
	return &recorder{
		reads:  make(chan device.Read, 1<<15),
		states: make(chan device.State, 1<<12),
		drops:  make(chan device.Drop, 1<<12),
	}
}

func (r *recorder) Read(x device.Read) {
	select {
	case r.reads <- x:
	default:
		r.overflow.Add(1)
	}
}

func (r *recorder) State(x device.State) {
	r.mu.Lock()
	r.allStates = append(r.allStates, x)
	r.mu.Unlock()
	select {
	case r.states <- x:
	default:
		r.overflow.Add(1)
	}
}

func (r *recorder) Drop(x device.Drop) {
	r.mu.Lock()
	r.allDrops = append(r.allDrops, x)
	r.mu.Unlock()
	select {
	case r.drops <- x:
	default:
		r.overflow.Add(1)
	}
}

func (r *recorder) statesSoFar() []device.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]device.State(nil), r.allStates...)
}

func (r *recorder) dropsSoFar() []device.Drop {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]device.Drop(nil), r.allDrops...)
}

// waitState returns the next state change to want, skipping others.
func (r *recorder) waitState(t testing.TB, want string) device.State {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-r.states:
			if s.State == want {
				return s
			}
		case <-deadline:
			t.Fatalf("no %q state within 10s; states: %+v", want, r.statesSoFar())
		}
	}
}

// waitRead returns the next scan.
func (r *recorder) waitRead(t testing.TB) device.Read {
	t.Helper()
	select {
	case x := <-r.reads:
		return x
	case <-time.After(10 * time.Second):
		t.Fatalf("no scan within 10s; drops: %+v", r.dropsSoFar())
	}
	panic("unreachable")
}

// expectRead waits for the next scan and checks its payload and AIM id.
func (r *recorder) expectRead(t testing.TB, data, aim string) device.Read {
	t.Helper()
	x := r.waitRead(t)
	if string(x.Data) != data || x.AIM != aim {
		t.Fatalf("scan %q aim %q, want %q aim %q", x.Data, x.AIM, data, aim)
	}
	if x.Driver != "serial" || x.Kind != "qr" || x.At.IsZero() {
		t.Fatalf("scan metadata %+v", x)
	}
	return x
}

// waitDrop returns the next drop with reason want, skipping others.
func (r *recorder) waitDrop(t testing.TB, want string) device.Drop {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case d := <-r.drops:
			if d.Reason == want {
				return d
			}
			t.Logf("drop %+v while waiting for %q", d, want)
		case <-deadline:
			t.Fatalf("no %q drop within 10s; drops: %+v", want, r.dropsSoFar())
		}
	}
}

func (r *recorder) expectNoRead(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case x := <-r.reads:
		t.Fatalf("unexpected scan %q", x.Data)
	case <-time.After(within):
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start runs a device until the test ends, then checks that Run stopped cleanly.
func start(t testing.TB, c Config) (*Device, *recorder) {
	t.Helper()
	if c.Name == "" {
		c.Name = "scanner-1"
	}
	if c.Logger == nil {
		c.Logger = quietLogger()
	}
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
		st := rec.statesSoFar()
		if len(st) == 0 || st[len(st)-1].State != device.StateStopped {
			t.Errorf("last state is not stopped: %+v", st)
		}
		if n := rec.overflow.Load(); n > 0 {
			t.Errorf("%d sink events overflowed the test's queues", n)
		}
	})
	return d, rec
}

// scanner makes a virtual scanner behind a symlink in the test's temp dir.
func scanner(t testing.TB, c vscanner.Config) *vscanner.Scanner {
	t.Helper()
	if c.Link == "" {
		c.Link = filepath.Join(t.TempDir(), "scanner")
	}
	s, err := vscanner.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
