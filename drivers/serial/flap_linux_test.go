package serial

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goserial "go.bug.st/serial"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// flapper opens ports for a Device. While on, it ignores the configured path, opens the
// slave of a fresh pty and closes the master right after: the open succeeds and every
// read then fails in the kernel (EIO on a hung-up tty), as on a flaky USB-serial bridge
// that enumerates and opens fine but cannot carry a byte. While off it opens the path.
type flapper struct {
	t     testing.TB
	on    atomic.Bool
	opens atomic.Int32 // successful opens while on
}

func (f *flapper) open(path string, mode *goserial.Mode) (goserial.Port, error) {
	if !f.on.Load() {
		return goserial.Open(path, mode)
	}
	master, slave, err := vscanner.OpenRawPTY()
	if err != nil {
		f.t.Errorf("flapper: %v", err)
		return nil, err
	}
	p, err := goserial.Open(slave.Name(), mode)
	slave.Close()
	master.Close() // hangs the tty up: every read of p fails from now on
	if err == nil {
		f.opens.Add(1)
	}
	return p, err
}

// logHandler keeps every record's level and message.
type logHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *logHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logHandler) WithGroup(string) slog.Handler            { return h }
func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}

// count is the number of records at level with message msg.
func (h *logHandler) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

func (h *logHandler) warnings() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level >= slog.LevelWarn {
			n++
		}
	}
	return n
}

// flappingDevice runs a device on vs's link whose opens go through a flapper (on at
// first), with the watcher off so that only the backoff decides when it retries.
func flappingDevice(t *testing.T, vs *vscanner.Scanner) (*flapper, *recorder, *logHandler) {
	t.Helper()
	h := &logHandler{}
	d, err := New(Config{Name: "flaky", Path: vs.Link(), Baud: 115200, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	f := &flapper{t: t}
	f.on.Store(true)
	d.openPort = f.open
	d.noWatch = true
	return f, runDevice(t, d), h
}

// connects returns the times of the "connected" states so far and checks that each
// was followed by a port_closed "disconnected" (the last may still be open).
func connects(t *testing.T, rec *recorder) []time.Time {
	t.Helper()
	var at []time.Time
	open := false
	for _, s := range rec.StatesSoFar() {
		switch s.State {
		case device.StateConnected:
			if open {
				t.Fatalf("connected twice without a disconnect: %+v", rec.StatesSoFar())
			}
			open = true
			at = append(at, s.At)
		case device.StateDisconnected:
			if s.Reason != ReasonPortClosed {
				t.Errorf("flap disconnected with reason %q (%s)", s.Reason, s.Detail)
			}
			open = false
		}
	}
	return at
}

// A port that opens fine but fails every read at once must back off as a missing port
// does: attempts 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s after the start, so about five
// connected/disconnected pairs in 3 s, not thirty (the backoff used to start again from
// 100 ms at every open). Its loss is logged at WARN once, the repeats at debug level.
// Once the fault stops the device reconnects on the backoff, a scan gets through, and
// after that healthy session a pulled cable is back within the bound of TestReplug50.
func TestFlappingPortBacksOff(t *testing.T) {
	if testing.Short() {
		t.Skip("flaps for 3 s, then waits for the backoff")
	}
	vs := scanner(t, vscanner.Config{Baud: 115200, ForceNewName: true})
	f, rec, h := flappingDevice(t, vs)
	time.Sleep(3 * time.Second)

	at := connects(t, rec)
	opens := f.opens.Load()
	t.Logf("3 s of flapping: %d opens, %d connected states", opens, len(at))
	// ≤ 8 leaves room for a loaded machine; the old reset gave about 30.
	if opens < 3 || opens > 8 || len(at) < 3 || len(at) > 8 {
		t.Fatalf("3 s of flapping: %d opens and %d connected states, want 3..8", opens, len(at))
	}
	// The gaps grow: the backoff doubles rather than starting again at each open (the
	// last is 800 ms on the schedule; 100 ms without the fix).
	if gap := at[len(at)-1].Sub(at[len(at)-2]); gap < 400*time.Millisecond {
		t.Errorf("last gap between opens %v: the backoff did not grow; opens at %v", gap, at)
	}
	if n := h.warnings(); n != 1 {
		t.Errorf("%d WARN lines while flapping, want 1", n)
	}
	if n := h.count(slog.LevelDebug, "serial port lost right after opening again; backing off"); n < len(at)-2 {
		t.Errorf("%d repeated losses at debug level for %d opens", n, len(at))
	}

	// The fault stops: the next attempt (at most MaxBackoff away) opens the scanner.
	if l := stopFlapping(t, f, rec); l > MaxBackoff+2*time.Second {
		t.Errorf("connected %v after the fault stopped", l)
	}
	ctx := testCtx(t)
	if err := vs.Send(ctx, []byte("AFTER-FLAP")); err != nil {
		t.Fatal(err)
	}
	rec.expectRead(t, "AFTER-FLAP", "")

	// The scan proved the session healthy: the backoff starts again from 100 ms.
	replugFast(t, vs, rec, "AFTER-REPLUG")
	if n := h.count(slog.LevelWarn, "serial port lost; reconnecting"); n != 1 {
		t.Errorf("healthy loss logged %d times at WARN, want 1", n)
	}
}

// A session without a scan that lasts HealthySession is healthy too (an idle scanner):
// after a flap has grown the backoff, a cable pulled from such a session is back fast.
func TestIdleSessionResetsBackoff(t *testing.T) {
	if testing.Short() {
		t.Skip("flaps, then holds an idle session for HealthySession")
	}
	vs := scanner(t, vscanner.Config{Baud: 115200, ForceNewName: true})
	f, rec, _ := flappingDevice(t, vs)
	// Five opens: the backoff is now 1.6 s, doubling.
	deadline := time.Now().Add(10 * time.Second)
	for f.opens.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if f.opens.Load() < 5 {
		t.Fatalf("only %d opens in 10 s", f.opens.Load())
	}
	stopFlapping(t, f, rec)
	time.Sleep(HealthySession + 500*time.Millisecond)
	replugFast(t, vs, rec, "AFTER-IDLE")
}

// stopFlapping ends the fault and waits for the device to connect to the real port; it
// returns how long that took. States of the flaps are skipped: a "connected" before the
// fault stopped, or one followed by "disconnected" within 300 ms (an open already under
// way when the fault stopped).
func stopFlapping(t *testing.T, f *flapper, rec *recorder) time.Duration {
	t.Helper()
	f.on.Store(false)
	off := time.Now()
	for {
		s := rec.waitState(t, device.StateConnected)
		if s.At.Before(off) {
			continue
		}
		select {
		case x := <-rec.States:
			t.Logf("state %+v right after connecting: a flap", x)
			continue
		case <-time.After(300 * time.Millisecond):
		}
		return s.At.Sub(off)
	}
}

// replugFast pulls vs, plugs it back and checks the device is connected again within
// 1 s of the plug (issue 4) with the watcher off, which only a backoff started again
// from MinBackoff gives, and that a scan gets through.
func replugFast(t *testing.T, vs *vscanner.Scanner, rec *recorder, scan string) {
	t.Helper()
	if err := vs.Pull(); err != nil {
		t.Fatal(err)
	}
	if s := rec.waitState(t, device.StateDisconnected); s.Reason != ReasonPortClosed {
		t.Fatalf("disconnected with reason %q (%s)", s.Reason, s.Detail)
	}
	time.Sleep(50 * time.Millisecond)
	plugged := time.Now()
	if err := vs.Plug(); err != nil {
		t.Fatal(err)
	}
	l := rec.waitState(t, device.StateConnected).At.Sub(plugged)
	t.Logf("after a healthy session: connected %v after the plug", l)
	if l > time.Second {
		t.Fatalf("connected %v after the plug, want ≤ 1 s", l)
	}
	if err := vs.Send(testCtx(t), []byte(scan)); err != nil {
		t.Fatal(err)
	}
	rec.expectRead(t, scan, "")
}
