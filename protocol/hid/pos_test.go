package hid

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

// SCANNERS.md, USB HID POS: Honeywell's 64-byte input report (ID 2),
// [02][len][AIM ×3][data ×56][code id][00][flags].
func TestHoneywellLayout(t *testing.T) {
	r := honeywellReport("]Q1", []byte("HC1:ABC"), 's', false)
	if len(r) != 64 || r[0] != 0x02 || r[1] != 7 || string(r[2:5]) != "]Q1" || r[61] != 's' || r[62] != 0 || r[63] != 0 {
		t.Fatalf("report builder is off the layout: % x", r)
	}
	p := mustPOS(t, POSConfig{Layout: Honeywell})
	wantOutputs(t, p.Feed(r, nil), `scan ]Q1 "HC1:ABC"`)
	if p.Pending() {
		t.Fatal("pending after a complete scan")
	}
}

// Flags bit 0 = more data follows: concatenate until clear.
func TestHoneywellContinuation(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 15)) // 150 bytes: 56 + 56 + 38
	rs := honeywellScan("]Q1", data)
	if len(rs) != 3 || rs[0][63] != 1 || rs[1][63] != 1 || rs[2][63] != 0 {
		t.Fatalf("want 3 reports flagged 1 1 0, got %d", len(rs))
	}
	p := mustPOS(t, POSConfig{Layout: Honeywell})
	if out := p.Feed(rs[0], nil); len(out) != 0 || !p.Pending() {
		t.Fatalf("first part: %q, pending %v", describe(out), p.Pending())
	}
	out := feedAll(p, rs[1:])
	wantOutputs(t, out, `scan ]Q1 "`+string(data)+`"`)
}

func TestHoneywellNoAIM(t *testing.T) {
	p := mustPOS(t, POSConfig{Layout: Honeywell})
	wantOutputs(t, p.Feed(honeywellReport("\x00\x00\x00", []byte("X"), 0, false), nil), `scan  "X"`)
}

func TestHoneywellBadAndForeignReports(t *testing.T) {
	p := mustPOS(t, POSConfig{Layout: Honeywell})
	bad := honeywellReport("]Q1", nil, 0, false)
	bad[1] = 57 // more than 56 data bytes cannot fit
	other := honeywellReport("]Q1", []byte("status"), 0, false)
	other[0] = 0x03
	out := feedAll(p, [][]byte{
		honeywellReport("]Q1", []byte("AB"), 0, true),
		bad,
		other, // another report id: skipped
		honeywellReport("]Q1", []byte("AB")[:1], 0, false)[:10], // cut short
		honeywellReport("]d1", []byte("OK"), 0, false),
	})
	wantOutputs(t, out, "drop bad_report 66", "drop bad_report 10", `scan ]d1 "OK"`)
}

func TestHoneywellStaleAndDisconnected(t *testing.T) {
	p := mustPOS(t, POSConfig{Layout: Honeywell})
	out := p.Feed(honeywellReport("]Q1", []byte("PART"), 0, true), nil)
	out = p.Expire(out)
	out = p.Feed(honeywellReport("]Q1", []byte("LOST"), 0, true), out)
	out = p.Reset(out)
	out = p.Reset(p.Expire(out)) // nothing pending: nothing more
	wantOutputs(t, out, "drop stale_partial 4", "drop disconnected 4")
}

func TestPOSTooLong(t *testing.T) {
	p := mustPOS(t, POSConfig{Layout: Honeywell, MaxScan: 100})
	wantOutputs(t, feedAll(p, honeywellScan("]Q1", bytes.Repeat([]byte("Z"), 101))), "drop too_long 101")
	wantOutputs(t, feedAll(p, honeywellScan("]Q1", bytes.Repeat([]byte("Z"), 100))), `scan ]Q1 "`+strings.Repeat("Z", 100)+`"`)
	// Too long is counted, never buffered, and the next scan is whole.
	out := feedAll(p, append(honeywellScan("]Q1", bytes.Repeat([]byte("Z"), 300)), honeywellScan("]Q1", []byte("next"))...))
	wantOutputs(t, out, "drop too_long 300", `scan ]Q1 "next"`)
}

// Newland: input ID 2 and output ID 4, both 64 bytes [id][len][payload…], the payload
// being the serial 7E 00 frames: "04 09 7E 00 08 01 00 02 01 02 DA 00…" starts scanning.
func TestNewlandTriggerReport(t *testing.T) {
	c, err := trigger.Lookup("newland")
	if err != nil {
		t.Fatal(err)
	}
	rs := Newland.Commands(c.Start)
	want := append([]byte{0x04, 0x09, 0x7E, 0x00, 0x08, 0x01, 0x00, 0x02, 0x01, 0x02, 0xDA}, make([]byte, 64-11)...)
	if len(rs) != 1 || !bytes.Equal(rs[0], want) {
		t.Fatalf("start report:\n% x\nwant\n% x", rs, want)
	}
	stop := Newland.Commands(c.Stop)
	if len(stop) != 1 || !bytes.Equal(stop[0][:11], []byte{0x04, 0x09, 0x7E, 0x00, 0x08, 0x01, 0x00, 0x02, 0x02, 0x32, 0xB9}) {
		t.Fatalf("stop report % x", stop)
	}
}

// "the ACK arrives as 02 07 02 00 00 01 00 33 31 00…": a reply, never a scan.
func TestNewlandAckIsNoScan(t *testing.T) {
	ack := append([]byte{0x02, 0x07, 0x02, 0x00, 0x00, 0x01, 0x00, 0x33, 0x31}, make([]byte, 64-9)...)
	p := mustPOS(t, POSConfig{Layout: Newland, AIM: true})
	out := p.Feed(ack, nil)
	out = p.Feed(idLenReport(0x02, []byte("]Q1HC1:X")), out)
	wantOutputs(t, out, `scan ]Q1 "HC1:X"`)
	// A reply frame with a wrong CRC is data, not a reply.
	bad := bytes.Clone(ack)
	bad[8] = 0x32
	wantOutputs(t, p.Feed(bad, nil), `scan  "\x02\x00\x00\x01\x0032"`)
}

func TestNewlandContinuation(t *testing.T) {
	data := []byte(strings.Repeat("N", 62) + strings.Repeat("M", 62) + "END")
	p := mustPOS(t, POSConfig{Layout: Newland, AIM: true})
	out := feedAll(p, [][]byte{idLenReport(2, data[:62]), idLenReport(2, data[62:124])})
	if len(out) != 0 || !p.Pending() {
		t.Fatalf("full reports must wait for more: %q", describe(out))
	}
	wantOutputs(t, p.Feed(idLenReport(2, data[124:]), nil), `scan  "`+string(data)+`"`)
	// Exactly a multiple of 62: the gap ends it.
	out = feedAll(p, [][]byte{idLenReport(2, data[:62])})
	wantOutputs(t, p.Expire(out), `scan  "`+string(data[:62])+`"`)
}

// Microscan: ID 1 both ways, [01][len 0-62][data, NUL-padded]; long data continues in
// further reports of length 62.
func TestMicroscan(t *testing.T) {
	p := mustPOS(t, POSConfig{Layout: Microscan, AIM: true})
	long := strings.Repeat("m", 62) + "tail"
	out := feedAll(p, [][]byte{
		idLenReport(1, nil), // an empty report with nothing pending: nothing
		idLenReport(1, []byte("]d1DATAMATRIX")),
		idLenReport(2, []byte("not ours")),
		idLenReport(1, []byte(long[:62])),
		idLenReport(1, []byte(long[62:])),
	})
	wantOutputs(t, out, `scan ]d1 "DATAMATRIX"`, `scan  "`+long+`"`)
	r := idLenReport(1, nil)
	r[1] = 63
	wantOutputs(t, p.Feed(r, nil), "drop bad_report 64")
	cmd := Microscan.Commands([]byte("<K200,1>"))
	if len(cmd) != 1 || len(cmd[0]) != 64 || cmd[0][0] != 1 || cmd[0][1] != 8 || string(cmd[0][2:10]) != "<K200,1>" || cmd[0][10] != 0 {
		t.Fatalf("microscan command report % x", cmd)
	}
}

func TestHoneywellOutputReports(t *testing.T) {
	if !bytes.Equal(HoneywellTrigger(true), []byte{0x04, 0x04}) || !bytes.Equal(HoneywellTrigger(false), []byte{0x04, 0x02}) {
		t.Fatal("trigger bit field")
	}
	if !bytes.Equal(HoneywellRoute(), []byte{0xFE, 0x01}) {
		t.Fatal("route feature report")
	}
	// "output report FD len data carries raw serial menu commands"
	rs := Honeywell.Commands([]byte{0x16, 'T', '\r'})
	if len(rs) != 1 || !bytes.Equal(rs[0], []byte{0xFD, 0x03, 0x16, 'T', '\r'}) {
		t.Fatalf("FD report % x", rs)
	}
	long := Honeywell.Commands(bytes.Repeat([]byte{'x'}, 100))
	if len(long) != 2 || long[0][1] != 62 || long[1][1] != 38 {
		t.Fatalf("split command: %d reports", len(long))
	}
}

func TestLayouts(t *testing.T) {
	for _, n := range LayoutNames() {
		l, err := ParseLayout(" " + strings.ToUpper(n))
		if err != nil || l.String() != n {
			t.Fatalf("%s: %v %v", n, l, err)
		}
	}
	if _, err := ParseLayout("zebra"); err == nil {
		t.Fatal("unknown layout accepted")
	}
	for vid, want := range map[uint16]Layout{0x0C2E: Honeywell, 0x0536: Honeywell, 0x0DB5: Honeywell, 0x1EAB: Newland} {
		if l, ok := LayoutForVID(vid); !ok || l != want {
			t.Errorf("vid %04x: %v %v", vid, l, ok)
		}
	}
	if _, ok := LayoutForVID(0x05E0); ok {
		t.Error("a vendor with another protocol got a layout")
	}
	if _, err := NewPOS(POSConfig{Layout: Honeywell}); err == nil {
		t.Error("no gap accepted")
	}
	if _, err := NewPOS(POSConfig{Layout: 9, Gap: 1}); err == nil {
		t.Error("unknown layout accepted")
	}
}

// The decoder's scans are the caller's: feeding more never changes them.
func TestPOSScansAreOwned(t *testing.T) {
	p := mustPOS(t, POSConfig{Layout: Honeywell})
	out := p.Feed(honeywellReport("]Q1", []byte("FIRST"), 0, false), nil)
	held := cloneAll(out)
	p.Feed(honeywellReport("]Q1", []byte("SECOND"), 0, false), nil)
	if !slices.EqualFunc(held, cloneAll(out), bytes.Equal) || out[0].Kind != framing.KindScan {
		t.Fatal("a later feed changed an earlier scan")
	}
}
