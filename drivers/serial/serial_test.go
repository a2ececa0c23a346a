package serial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goserial "go.bug.st/serial"
	"go.bug.st/serial/enumerator"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/ssi"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

var payloads = []string{
	"EHC1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK1F",
	"医保 电子凭证 123",
	"A",
	"with\ttab and spaces ",
}

// Every line framing delivers exactly the payload, with prefix and suffix stripped and
// the AIM id stripped and reported.
func TestLineFramings(t *testing.T) {
	for _, tc := range []struct {
		name           string
		suffix, prefix string
		aim            string
	}{
		{"cr", "\r", "", ""},
		{"lf", "\n", "", ""},
		{"crlf", "\r\n", "", ""},
		{"custom suffix", "<END>", "", ""},
		{"prefix", "\r", "PFX", ""},
		{"aim", "\r", "", "]Q1"},
		{"prefix aim crlf", "\r\n", "\x02", "]d1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := scanner(t, vscanner.Config{Suffix: []byte(tc.suffix), Prefix: []byte(tc.prefix), AIM: tc.aim, Baud: 115200})
			_, rec := start(t, Config{Path: vs.Link(), Baud: 115200, Framing: framing.Config{
				Type: "line", Suffix: []byte(tc.suffix), Prefix: []byte(tc.prefix), AIM: tc.aim != "",
			}})
			rec.waitState(t, device.StateConnected)
			for _, p := range payloads {
				if err := vs.Send(testCtx(t), []byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range payloads {
				rec.expectRead(t, p, tc.aim)
			}
			if d := rec.DropsSoFar(); len(d) > 0 {
				t.Fatalf("drops: %+v", d)
			}
		})
	}
}

// Idle framing: a scan ends when the line is silent for the gap. At 9600 baud bytes come
// about 1 ms apart; the 100 ms gap leaves room for a sender descheduled on a loaded
// machine, which would otherwise split a scan just as a pausing scanner would.
func TestIdleFraming(t *testing.T) {
	vs := scanner(t, vscanner.Config{Framing: vscanner.Idle, Gap: 300 * time.Millisecond, Baud: 9600, AIM: "]Q1"})
	_, rec := start(t, Config{Path: vs.Link(), Framing: framing.Config{Type: "idle", Gap: 100 * time.Millisecond, AIM: true}})
	rec.waitState(t, device.StateConnected)
	go func() {
		for _, p := range payloads {
			if err := vs.Send(context.Background(), []byte(p)); err != nil {
				return
			}
		}
	}()
	for _, p := range payloads {
		rec.expectRead(t, p, "]Q1")
	}
}

// SSI: single packets, a bad checksum NAKed and the resend accepted, multipacket
// segments (the spec's 500 × Z vector), and continuation packets. Every packet is ACKed
// by the driver writing the framer's reply to the port.
func TestSSI(t *testing.T) {
	for _, cont := range []bool{false, true} {
		t.Run(fmt.Sprintf("continuation=%v", cont), func(t *testing.T) {
			vs := scanner(t, vscanner.Config{Framing: vscanner.SSI, Baud: 115200, Continuation: cont, AckTimeout: 2 * time.Second})
			_, rec := start(t, Config{Path: vs.Link(), Baud: 115200, Framing: framing.Config{Type: "ssi"}})
			rec.waitState(t, device.StateConnected)
			ctx := testCtx(t)

			if err := vs.Send(ctx, []byte("HELLO")); err != nil {
				t.Fatal(err)
			}
			rec.expectRead(t, "HELLO", "ssi:1C")

			if err := vs.Send(ctx, []byte("RESENT"), vscanner.BadChecksum(0)); err != nil {
				t.Fatal(err)
			}
			rec.expectRead(t, "RESENT", "ssi:1C")
			rec.waitDrop(t, framing.ReasonBadChecksum)
			if !bytes.Contains(vs.Received(), []byte(ssi.Nak)) {
				t.Fatalf("host never sent a NAK: % x", vs.Received())
			}

			long := strings.Repeat("Z", 500)
			if err := vs.Send(ctx, []byte(long)); err != nil {
				t.Fatal(err)
			}
			rec.expectRead(t, long, "ssi:1C")

			// Two packets in the middle of a long scan (of 5) NAKed and resent. Numbered
			// data shows any packet lost, repeated or out of order.
			var mixed []byte
			for i := range 200 {
				mixed = fmt.Appendf(mixed, "%04d,", i)
			}
			if err := vs.Send(ctx, mixed, vscanner.BadChecksum(1, 3)); err != nil {
				t.Fatal(err)
			}
			rec.expectRead(t, string(mixed), "ssi:1C")

			st := vs.Stats()
			t.Logf("scanner stats: %+v", st)
			if st.NAKs != 3 || st.Timeouts != 0 {
				t.Fatalf("want 3 NAKs and no time-outs: %+v", st)
			}
		})
	}
}

// A repetitive 1,000-byte scan is four identical 250-byte packets with continuation.
// The second is NAKed (bad checksum) and resent with the retransmit bit: the same bytes
// as the packet accepted just before it, which is still new data. Once it was taken for
// a duplicate and the scan arrived 250 bytes short. Multipacket segments carry their
// index, so they never looked alike; both are checked.
func TestSSIRepetitiveResend(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 100)
	for _, cont := range []bool{true, false} {
		t.Run(fmt.Sprintf("continuation=%v", cont), func(t *testing.T) {
			vs := scanner(t, vscanner.Config{Framing: vscanner.SSI, Baud: 115200, Continuation: cont, AckTimeout: 2 * time.Second})
			_, rec := start(t, Config{Path: vs.Link(), Baud: 115200, Framing: framing.Config{Type: "ssi"}})
			rec.waitState(t, device.StateConnected)
			ctx := testCtx(t)
			for i := range 2 { // the second time, the framer has seen this very scan before
				if err := vs.Send(ctx, payload, vscanner.BadChecksum(1)); err != nil {
					t.Fatal(err)
				}
				x := rec.waitRead(t)
				if !bytes.Equal(x.Data, payload) {
					t.Fatalf("scan %d: %d bytes, want the %d sent exactly", i, len(x.Data), len(payload))
				}
				rec.waitDrop(t, framing.ReasonBadChecksum)
			}
			rec.expectNoRead(t, 100*time.Millisecond)
			st := vs.Stats()
			if st.NAKs != 2 || st.Retransmits != 2 || st.Timeouts != 0 || st.Scans != 2 {
				t.Fatalf("want 2 scans, 2 NAKs and resends, no time-outs: %+v", st)
			}
			for _, d := range rec.DropsSoFar() {
				if d.Reason != framing.ReasonBadChecksum {
					t.Errorf("drop %+v", d)
				}
			}
		})
	}
}

// Trigger commands reach the scanner, and its replies never become scans.
func TestTrigger(t *testing.T) {
	cmds, err := trigger.Lookup("newland")
	if err != nil {
		t.Fatal(err)
	}
	vs := scanner(t, vscanner.Config{Responses: []vscanner.Response{
		{When: cmds.Start, Reply: cmds.Replies[0]},
		{When: cmds.Stop, Reply: cmds.Replies[0]},
	}})
	d, err := New(Config{Name: "t", Path: vs.Link(), Trigger: &cmds, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Trigger(context.Background()); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("trigger before Run: %v", err)
	}

	d, rec := start(t, Config{Path: vs.Link(), Trigger: &cmds, Framing: framing.Config{Type: "line", AIM: true}})
	rec.waitState(t, device.StateConnected)
	ctx := testCtx(t)
	if err := d.Trigger(ctx); err != nil {
		t.Fatal(err)
	}
	if err := vs.WaitReceived(ctx, cmds.Start); err != nil {
		t.Fatal(err)
	}
	if err := vs.Send(ctx, []byte("CODE-1")); err != nil {
		t.Fatal(err)
	}
	rec.expectRead(t, "CODE-1", "")
	if err := d.Untrigger(ctx); err != nil {
		t.Fatal(err)
	}
	if err := vs.WaitReceived(ctx, cmds.Stop); err != nil {
		t.Fatal(err)
	}
	if err := vs.Send(ctx, []byte("CODE-2")); err != nil {
		t.Fatal(err)
	}
	rec.expectRead(t, "CODE-2", "")
	if dr := rec.DropsSoFar(); len(dr) > 0 {
		t.Fatalf("drops: %+v", dr)
	}

	plain, err := New(Config{Name: "p", Path: vs.Link()})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Trigger(ctx); !errors.Is(err, ErrNoTrigger) {
		t.Fatalf("trigger without commands: %v", err)
	}
}

// The cable is pulled and plugged back 50 times, for outages from 0 to 245 ms. Each time
// the driver must be connected again within 1 s of the plug and lose no scan sent after
// that. Reconnect attempts come 100, 300, 700 ms after the pull (backoff 100 ms doubling),
// so the expected plug-to-connected time is under 200 ms for these outages; 1 s leaves
// room for a loaded machine.
func TestReplug50(t *testing.T) {
	vs := scanner(t, vscanner.Config{Baud: 115200, ForceNewName: true})
	_, rec := start(t, Config{Path: vs.Link(), Baud: 115200})
	rec.waitState(t, device.StateConnected)
	ctx := testCtx(t)
	var lat []time.Duration
	for i := range 50 {
		before := fmt.Sprintf("BEFORE-%02d", i)
		if err := vs.Send(ctx, []byte(before)); err != nil {
			t.Fatal(err)
		}
		rec.expectRead(t, before, "")

		if err := vs.Pull(); err != nil {
			t.Fatal(err)
		}
		if s := rec.waitState(t, device.StateDisconnected); s.Reason != ReasonPortClosed {
			t.Fatalf("disconnected with reason %q (%s)", s.Reason, s.Detail)
		}
		time.Sleep(time.Duration(i*5) * time.Millisecond)
		plugged := time.Now()
		if err := vs.Plug(); err != nil {
			t.Fatal(err)
		}
		s := rec.waitState(t, device.StateConnected)
		l := s.At.Sub(plugged)
		lat = append(lat, l)
		if l > time.Second {
			t.Errorf("replug %d: connected %v after the plug", i, l)
		}
		for _, suffix := range []string{"a", "b", "c"} {
			if err := vs.Send(ctx, []byte(fmt.Sprintf("AFTER-%02d-%s", i, suffix))); err != nil {
				t.Fatal(err)
			}
		}
		for _, suffix := range []string{"a", "b", "c"} {
			rec.expectRead(t, fmt.Sprintf("AFTER-%02d-%s", i, suffix), "")
		}
	}
	slices.Sort(lat)
	t.Logf("plug-to-connected over %d replugs: min %v, p50 %v, p90 %v, max %v",
		len(lat), lat[0], lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
	if d := rec.DropsSoFar(); len(d) > 0 {
		t.Fatalf("drops: %+v", d)
	}
}

// 10,000 distinct numbered scans back to back at 115200 baud: none lost, merged or split.
func TestBackToBack10000(t *testing.T) {
	if testing.Short() {
		t.Skip("8 s of wire time")
	}
	const n = 10000
	vs := scanner(t, vscanner.Config{Baud: 115200})
	_, rec := start(t, Config{Path: vs.Link(), Baud: 115200})
	rec.waitState(t, device.StateConnected)
	sendErr := make(chan error, 1)
	began := time.Now()
	go func() {
		for i := range n {
			if err := vs.Send(context.Background(), []byte(fmt.Sprintf("S%07d", i))); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	var lost, merged, split, other int
	next := 0
	for next < n {
		x := rec.waitRead(t)
		got := string(x.Data)
		want := fmt.Sprintf("S%07d", next)
		switch {
		case got == want:
			next++
		case len(got) > len(want):
			merged++
			next += len(got) / len(want)
		case len(got) < len(want):
			split++
		default:
			var k int
			if _, err := fmt.Sscanf(got, "S%07d", &k); err == nil && k > next {
				lost += k - next
				next = k + 1
			} else {
				other++
				next++
			}
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d scans of 9 bytes at 115200 in %v", n, time.Since(began).Round(time.Millisecond))
	if lost+merged+split+other > 0 {
		t.Fatalf("lost %d, merged %d, split %d, other %d", lost, merged, split, other)
	}
	if d := rec.DropsSoFar(); len(d) > 0 {
		t.Fatalf("drops: %+v", d)
	}
}

// Junk is dropped with a counted reason, and the next good scan still arrives.
func TestJunk(t *testing.T) {
	t.Run("noise and long runs", func(t *testing.T) {
		vs := scanner(t, vscanner.Config{}) // unpaced: 64 KiB at 115200 would take 6 s
		_, rec := start(t, Config{Path: vs.Link(), Framing: framing.Config{Type: "line", Gap: 300 * time.Millisecond}})
		rec.waitState(t, device.StateConnected)
		ctx := testCtx(t)

		// Line noise without a terminator: stale after the gap.
		if err := vs.SendRaw(ctx, vscanner.Noise(200, 1, '\r')); err != nil {
			t.Fatal(err)
		}
		if d := rec.waitDrop(t, framing.ReasonStalePartial); d.Bytes != 200 {
			t.Fatalf("stale drop of %d bytes, want 200", d.Bytes)
		}
		vs.Send(ctx, []byte("GOOD-1"))
		rec.expectRead(t, "GOOD-1", "")

		// A 64 KiB run without a terminator: dropped as too long, every byte counted. (If
		// the writer stalled past the gap, the run's tail would count as a stale partial.)
		if err := vs.SendRaw(ctx, vscanner.Noise(64<<10, 2, '\r')); err != nil {
			t.Fatal(err)
		}
		total, reasons := 0, map[string]int{}
		for total < 64<<10 {
			select {
			case d := <-rec.Drops:
				total += d.Bytes
				reasons[d.Reason] += d.Bytes
			case <-time.After(10 * time.Second):
				t.Fatalf("drops count %d of %d bytes: %v", total, 64<<10, reasons)
			}
		}
		if total != 64<<10 || reasons[framing.ReasonTooLong] < 60<<10 {
			t.Fatalf("drops count %d bytes, want %d, mostly too_long: %v", total, 64<<10, reasons)
		}
		t.Logf("64 KiB run dropped as %v", reasons)
		vs.Send(ctx, []byte("GOOD-2"))
		rec.expectRead(t, "GOOD-2", "")

		// A 10 KB junk "scan" with a terminator: too long, and the scan after it intact.
		junk := append(vscanner.Noise(10<<10, 3, '\r'), '\r')
		if err := vs.SendRaw(ctx, junk); err != nil {
			t.Fatal(err)
		}
		vs.Send(ctx, []byte("GOOD-3"))
		if d := rec.waitDrop(t, framing.ReasonTooLong); d.Bytes < 10<<10 {
			t.Fatalf("too_long drop of %d bytes", d.Bytes)
		}
		rec.expectRead(t, "GOOD-3", "")
	})

	t.Run("partial scan then pull", func(t *testing.T) {
		vs := scanner(t, vscanner.Config{})
		// A long gap, so that only the pull can end the partial scan.
		_, rec := start(t, Config{Path: vs.Link(), Framing: framing.Config{Type: "line", Gap: time.Minute}})
		rec.waitState(t, device.StateConnected)
		ctx := testCtx(t)
		if err := vs.SendRaw(ctx, []byte("PARTIAL")); err != nil {
			t.Fatal(err)
		}
		if err := vs.WaitRead(ctx); err != nil {
			t.Fatal(err)
		}
		vs.Pull()
		if d := rec.waitDrop(t, framing.ReasonDisconnected); d.Bytes != len("PARTIAL") {
			t.Fatalf("disconnected drop of %d bytes, want %d", d.Bytes, len("PARTIAL"))
		}
		rec.waitState(t, device.StateDisconnected)
		if err := vs.Plug(); err != nil {
			t.Fatal(err)
		}
		rec.waitState(t, device.StateConnected)
		vs.Send(ctx, []byte("GOOD-4"))
		rec.expectRead(t, "GOOD-4", "")
	})
}

// By VID/PID, the port is looked up again before every open: after a replug the scanner
// has another /dev/pts name, and the driver follows it.
func TestResolveByUSBIDs(t *testing.T) {
	vs := scanner(t, vscanner.Config{ForceNewName: true})
	var calls atomic.Int64
	ports := func() ([]*enumerator.PortDetails, error) {
		calls.Add(1)
		list := []*enumerator.PortDetails{
			{Name: "/dev/ttyS0"},
			{Name: "/dev/ehc-test-no-such-port", IsUSB: true, VID: "0C2E", PID: "0B62", SerialNumber: "SN1"},
			{Name: "/dev/ehc-test-no-such-port2", IsUSB: true, VID: "0C2E", PID: "0B61", SerialNumber: "OTHER"},
		}
		if p := vs.Path(); p != "" {
			list = append(list, &enumerator.PortDetails{Name: p, IsUSB: true, VID: "0C2E", PID: "0B61", SerialNumber: "sn1", Product: "Virtual"})
		}
		return list, nil
	}
	_, rec := start(t, Config{VID: "0c2e", PID: "0B61", SerialNumber: "SN1", Ports: ports})
	ctx := testCtx(t)

	first := vs.Path()
	if s := rec.waitState(t, device.StateConnected); s.Detail != first {
		t.Fatalf("connected to %q, want %q", s.Detail, first)
	}
	vs.Send(ctx, []byte("ONE"))
	rec.expectRead(t, "ONE", "")

	vs.Pull()
	rec.waitState(t, device.StateDisconnected)
	if s := rec.waitState(t, device.StateConnecting); s.Reason != ReasonNotFound {
		t.Fatalf("connecting while unplugged: %+v", s)
	}
	vs.Plug()
	second := vs.Path()
	if second == first {
		t.Fatalf("replug kept the name %s", first)
	}
	if s := rec.waitState(t, device.StateConnected); s.Detail != second {
		t.Fatalf("connected to %q, want %q", s.Detail, second)
	}
	vs.Send(ctx, []byte("TWO"))
	rec.expectRead(t, "TWO", "")
	if calls.Load() < 3 {
		t.Fatalf("port list read %d times: not re-resolved", calls.Load())
	}
}

// Cancelling Run's context ends a blocked Read at once, whether the port is open or the
// driver is waiting to reconnect.
func TestStop(t *testing.T) {
	vs := scanner(t, vscanner.Config{})
	cmds, _ := trigger.Lookup("honeywell")
	for _, plugged := range []bool{true, false} {
		d, err := New(Config{Name: "s", Path: vs.Link(), Trigger: &cmds, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, rec) }()
		if plugged {
			rec.waitState(t, device.StateConnected)
		} else {
			rec.waitState(t, device.StateConnecting)
		}
		time.Sleep(50 * time.Millisecond)
		stopAt := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
		t.Logf("plugged=%v: Run returned %v after cancel", plugged, time.Since(stopAt))
		if s := rec.waitState(t, device.StateStopped); s.Reason != ReasonStopped {
			t.Fatalf("stopped: %+v", s)
		}
		if err := d.Trigger(context.Background()); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("trigger after stop: %v", err)
		}
		vs.Pull()
	}
}

// DTR/RTS on a pty fail with ENOTTY: logged once per device, not per reconnect, and the
// port works.
func TestModemLinesOptional(t *testing.T) {
	vs := scanner(t, vscanner.Config{})
	h := &countHandler{}
	on := true
	_, rec := start(t, Config{Path: vs.Link(), DTR: &on, RTS: &on, Logger: slog.New(h)})
	for range 3 {
		rec.waitState(t, device.StateConnected)
		vs.Send(testCtx(t), []byte("X"))
		rec.expectRead(t, "X", "")
		vs.Pull()
		rec.waitState(t, device.StateDisconnected)
		vs.Plug()
	}
	if n := h.count("modem_lines"); n != 1 {
		t.Fatalf("modem line failure logged %d times, want once", n)
	}
}

type countHandler struct {
	mu      sync.Mutex
	reasons map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countHandler) WithGroup(string) slog.Handler            { return h }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reasons == nil {
		h.reasons = map[string]int{}
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			h.reasons[a.Value.String()]++
		}
		return true
	})
	return nil
}

func (h *countHandler) count(reason string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reasons[reason]
}

func TestNewRejects(t *testing.T) {
	ok := Config{Name: "s", Path: "/dev/ttyUSB0"}
	for name, mod := range map[string]func(*Config){
		"no name":        func(c *Config) { c.Name = "" },
		"no port":        func(c *Config) { c.Path = "" },
		"path and ids":   func(c *Config) { c.VID, c.PID = "0c2e", "0b61" },
		"bad vid":        func(c *Config) { c.Path, c.VID, c.PID = "", "xyz", "0b61" },
		"vid only":       func(c *Config) { c.Path, c.VID = "", "0c2e" },
		"negative baud":  func(c *Config) { c.Baud = -1 },
		"data bits":      func(c *Config) { c.DataBits = 9 },
		"parity":         func(c *Config) { c.Parity = "sometimes" },
		"stop bits":      func(c *Config) { c.StopBits = "3" },
		"1.5 stop bits":  func(c *Config) { c.StopBits = "1.5" },
		"framing":        func(c *Config) { c.Framing.Type = "morse" },
		"idle no gap":    func(c *Config) { c.Framing.Type = "idle" },
		"trigger no cmd": func(c *Config) { c.Trigger = &trigger.Commands{} },
	} {
		c := ok
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
}

// The trigger's replies are added to the framer's Ignore list once, whatever the
// caller already put there.
func TestTriggerRepliesIgnored(t *testing.T) {
	cmds, _ := trigger.Lookup("gm65")
	d, err := New(Config{Name: "s", Path: "/dev/x", Trigger: &cmds, Framing: framing.Config{Ignore: cmds.Replies}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.cfg.Framing.Ignore) != 1 {
		t.Fatalf("ignore %x", d.cfg.Framing.Ignore)
	}
	ssiCmds, _ := trigger.Lookup("ssi")
	if _, err := New(Config{Name: "s", Path: "/dev/x", Trigger: &ssiCmds, Framing: framing.Config{Type: "ssi"}}); err != nil {
		t.Fatal(err)
	}
}

func TestListPorts(t *testing.T) {
	got, err := ListPorts(func() ([]*enumerator.PortDetails, error) {
		return []*enumerator.PortDetails{
			{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0C2E", PID: "b61", SerialNumber: "X1", Product: "Xenon"},
			{Name: "/dev/ttyACM0", IsUSB: true, VID: "1eab", PID: "1a03"},
			{Name: "/dev/ttyS0"},
			nil,
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []PortInfo{
		{Path: "/dev/ttyACM0", USB: true, VID: "1eab", PID: "1a03"},
		{Path: "/dev/ttyS0"},
		{Path: "/dev/ttyUSB0", USB: true, VID: "0c2e", PID: "0b61", SerialNumber: "X1", Product: "Xenon"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := ListPorts(func() ([]*enumerator.PortDetails, error) { return nil, errors.New("boom") }); err == nil {
		t.Fatal("error lost")
	}
}

// A read that fails because the device vanished is a pulled cable, whatever errno the
// kernel picked; anything else stays a read error.
func TestGone(t *testing.T) {
	for _, c := range []struct {
		err  error
		gone bool
	}{
		{&fs.PathError{Op: "read", Path: "/dev/ttyUSB0", Err: syscall.EIO}, true},
		{syscall.ENODEV, true},
		{fmt.Errorf("read: %w", syscall.ENXIO), true},
		{&goserial.PortError{}, false},
		{syscall.EAGAIN, false},
		{errors.New("framing error"), false},
	} {
		if got := Gone(c.err); got != c.gone {
			t.Errorf("Gone(%v) = %v, want %v", c.err, got, c.gone)
		}
	}
}
