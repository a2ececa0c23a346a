//go:build cgo

package usbhid

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/hid"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

type stateSink struct {
	mu     sync.Mutex
	states []device.State
}

func (s *stateSink) Read(device.Read) {}
func (s *stateSink) Drop(device.Drop) {}
func (s *stateSink) State(st device.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, st)
}

func (s *stateSink) list() []device.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]device.State(nil), s.states...)
}

func TestNewChecksConfig(t *testing.T) {
	newland := trigger.Commands{Start: []byte{1}}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{VID: 1, Mode: ModeHIDPOS, Layout: hid.Honeywell}, "missing name"},
		{Config{Name: "x", Mode: ModeHIDPOS}, "missing VID"},
		{Config{Name: "x", VID: 0x1234, Mode: ModeHIDPOS}, "no layout given, and none is known for VID 1234"},
		{Config{Name: "x", VID: 0x1EAB, Mode: ModeHIDPOS, TriggerBits: true}, "needs the honeywell layout, not newland"},
		{Config{Name: "x", VID: 0x1EAB, Mode: ModeHIDPOS, HexDump: true}, "keyboard mode"},
		{Config{Name: "x", VID: 0x0627, Mode: ModeKeyboard, Trigger: &newland}, "no host trigger"},
		{Config{Name: "x", VID: 0x0627, Mode: "serial"}, `mode "serial"`},
		{Config{Name: "x", VID: 0x1EAB, Mode: ModeHIDPOS, Trigger: &trigger.Commands{}}, "without a start command"},
		{Config{Name: "x", VID: 0x1EAB, Mode: ModeHIDPOS, Gap: -1}, "gap must be positive"},
	} {
		if _, err := New(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	d, err := New(Config{Name: "x", VID: 0x0C2E, PID: 1, Mode: ModeHIDPOS})
	if err != nil || d.cfg.Layout != hid.Honeywell || d.cfg.Gap != DefaultPOSGap || d.Name() != "x" {
		t.Fatalf("defaults: %+v %v", d, err)
	}
	k, err := New(Config{Name: "k", VID: 0x0627, PID: 1, Mode: ModeKeyboard})
	if err != nil || k.cfg.Gap != DefaultKeyboardGap {
		t.Fatalf("keyboard defaults: %v", err)
	}
}

func TestMatches(t *testing.T) {
	c := Config{VID: 0x0C2E, PID: 0x0B87}
	if !c.Matches(Info{VID: 0x0C2E, PID: 0x0B87, SerialNumber: "A"}) || c.Matches(Info{VID: 0x0C2E, PID: 0x0B88}) {
		t.Fatal("ids")
	}
	c.SerialNumber = "B"
	if c.Matches(Info{VID: 0x0C2E, PID: 0x0B87, SerialNumber: "A"}) || !c.Matches(Info{VID: 0x0C2E, PID: 0x0B87, SerialNumber: "B"}) {
		t.Fatal("serial number")
	}
}

func TestTriggerWithoutDevice(t *testing.T) {
	d, err := New(Config{Name: "x", VID: 0x0C2E, PID: 1, Mode: ModeHIDPOS, TriggerBits: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Trigger(context.Background()); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("trigger while disconnected: %v", err)
	}
	n, _ := New(Config{Name: "y", VID: 0x0C2E, PID: 1, Mode: ModeHIDPOS})
	if err := n.Untrigger(context.Background()); !errors.Is(err, ErrNoTrigger) {
		t.Fatalf("no trigger configured: %v", err)
	}
}

// On a machine where the scanner is absent (here: a host with no USB at all, or none
// with these ids), Run keeps looking, says why once, and stops at once when told.
func TestRunWithoutDevice(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := New(Config{Name: "x", VID: 0xFFFE, PID: 0xFFFE, Mode: ModeHIDPOS, Layout: hid.Microscan, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s := &stateSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, s) }()
	time.Sleep(PollInterval + 300*time.Millisecond) // two lookups: the same reason is told once
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	st := s.list()
	if len(st) != 3 || st[0].Reason != ReasonStart || st[2].State != device.StateStopped {
		t.Fatalf("states %+v", st)
	}
	if r := st[1].Reason; st[1].State != device.StateConnecting || (r != ReasonUSBUnavailable && r != ReasonNotFound) {
		t.Fatalf("second state %+v", st[1])
	}
}

func TestListOnThisMachine(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Logf("no USB here: %v", err)
		return
	}
	for _, i := range list {
		if i.VID == 0 && i.PID == 0 {
			t.Errorf("device without ids: %+v", i)
		}
	}
}
