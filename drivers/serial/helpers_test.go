package serial

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/device/devicetest"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// recorder queues what the device tells for the test to wait on.
type recorder struct{ *devicetest.Recorder }

func newRecorder() *recorder { return &recorder{devicetest.NewRecorder(1<<15, 1<<12, 1<<12)} }

// waitState returns the next state change to want, skipping others.
func (r *recorder) waitState(t testing.TB, want string) device.State {
	t.Helper()
	return r.WaitState(t, want, 10*time.Second)
}

// waitRead returns the next scan.
func (r *recorder) waitRead(t testing.TB) device.Read {
	t.Helper()
	select {
	case x := <-r.Reads:
		return x
	case <-time.After(10 * time.Second):
		t.Fatalf("no scan within 10s; drops: %+v", r.DropsSoFar())
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
		case d := <-r.Drops:
			if d.Reason == want {
				return d
			}
			t.Logf("drop %+v while waiting for %q", d, want)
		case <-deadline:
			t.Fatalf("no %q drop within 10s; drops: %+v", want, r.DropsSoFar())
		}
	}
}

func (r *recorder) expectNoRead(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case x := <-r.Reads:
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
	devicetest.Run(t, d, rec, 5*time.Second, func() { rec.CheckStopped(t) })
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
