package hid

import (
	"bytes"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// checkOutputs holds for every decoder: scans are non-empty, within MaxScan, and the
// caller's (a later feed does not change them); drops name a reason.
func checkOutputs(t *testing.T, out []framing.Output, max int) {
	t.Helper()
	for _, o := range out {
		switch o.Kind {
		case framing.KindScan:
			if len(o.Data) == 0 || len(o.Data) > max {
				t.Fatalf("scan of %d bytes (max %d)", len(o.Data), max)
			}
		case framing.KindDrop:
			if o.Reason == "" || o.Dropped < 0 {
				t.Fatalf("drop %+v", o)
			}
		default:
			t.Fatalf("output kind %d", o.Kind)
		}
	}
}

// FuzzPOS: b is cut into reports (each byte of lens a length); outputs are bounded and
// owned, and the same reports always give the same outputs.
func FuzzPOS(f *testing.F) {
	long := honeywellScan("]Q1", bytes.Repeat([]byte("0123456789"), 15))
	ack := append([]byte{0x02, 0x07, 0x02, 0x00, 0x00, 0x01, 0x00, 0x33, 0x31}, make([]byte, 64-9)...)
	seeds := [][][]byte{
		{honeywellReport("]Q1", []byte("HC1:ABC"), 's', false)},
		long,
		{ack, idLenReport(2, []byte("]Q1NEWLAND"))},
		{idLenReport(1, bytes.Repeat([]byte("m"), 62)), idLenReport(1, []byte("tail"))},
	}
	for i, s := range seeds {
		lens := make([]byte, len(s))
		for j, r := range s {
			lens[j] = byte(len(r))
		}
		f.Add(uint8(i), lens, bytes.Join(s, nil))
	}
	f.Fuzz(func(t *testing.T, layout uint8, lens, b []byte) {
		c := POSConfig{Layout: Layout(layout%3 + 1), AIM: layout&4 != 0, Gap: 1, MaxScan: 100}
		reports := cut(lens, b)
		run := func() ([]framing.Output, [][]byte) {
			p := mustPOS(t, c)
			var out []framing.Output
			var held [][]byte
			for _, r := range reports {
				out = p.Feed(slices.Clone(r), out)
				held = cloneAll(out)
			}
			out = p.Expire(out)
			out = p.Reset(out)
			if p.Pending() {
				t.Fatal("pending after Expire")
			}
			return out, held
		}
		out, held := run()
		checkOutputs(t, out, c.MaxScan)
		for i, h := range held {
			if !bytes.Equal(out[i].Data, h) {
				t.Fatalf("output %d changed after a later feed", i)
			}
		}
		again, _ := run()
		if !slices.Equal(describe(out), describe(again)) {
			t.Fatal("not deterministic")
		}
	})
}

// FuzzKeyboard: any run of reports, in every mode; outputs are bounded and owned, and a
// plain-mode scan is UTF-8 and never holds the Enter or Tab that ended it (unless an
// Alt + keypad run typed bytes as data).
func FuzzKeyboard(f *testing.F) {
	seed := func(s string) []byte { return bytes.Join(typeUS(f, s, true), nil) }
	f.Add(uint8(0), seed("]Q1HC1:ABC"))
	f.Add(uint8(1), seed("B0 A1 48"))
	f.Add(uint8(2), append([]byte{modLAlt, 0, 0, 0, 0, 0, 0, 0, modLAlt, 0, 0x5C, 0, 0, 0, 0, 0}, make([]byte, 8)...))
	f.Add(uint8(3), []byte{0, 0, 1, 1, 1, 1, 1, 1, modRAlt, 0, 0x14, 0, 0, 0, 0, 0, 0, 0, keyCapsLock, 0, 0, 0, 0, 0})
	// Dead keys (mode 2 is de, 3 is fr): ´ e, ` space, ^ ^, ´ x, ´ at the end; fr ^ e, ¨ y,
	// ^ then Enter; and an Alt code while an accent waits.
	dead := func(strokes ...stroke) []byte {
		return bytes.Join(append(sendReleasing([]typed{keys(strokes...)}), enterReports...), nil)
	}
	f.Add(uint8(2), dead(stroke{0, 0x2E}, stroke{0, 0x08}, stroke{shift, 0x2E}, stroke{0, 0x2C}, stroke{0, 0x35},
		stroke{0, 0x35}, stroke{0, 0x2E}, stroke{0, 0x1B}, stroke{0, 0x2E}))
	f.Add(uint8(3), dead(stroke{0, 0x2F}, stroke{0, 0x08}, stroke{shift, 0x2F}, stroke{0, 0x1C}, stroke{0, 0x2F}))
	f.Add(uint8(2), bytes.Join(sendModifierHeld([]typed{keys(stroke{0, 0x2E}), altCode("0233"), altCode("45217"),
		keys(stroke{shift, 0x2E}, stroke{shift, 0x08})}), nil))
	f.Add(uint8(6), dead(stroke{0, 0x1E}, stroke{0, 0x35}, stroke{0, 0x2C}, stroke{0, 0x35})) // de, hex dump
	f.Fuzz(func(t *testing.T, mode uint8, b []byte) {
		maps := KeyMapNames()
		m, err := ParseKeyMap(maps[int(mode)%len(maps)])
		if err != nil {
			t.Fatal(err)
		}
		c := KeyboardConfig{KeyMap: m, HexDump: mode&4 != 0, AIM: mode&8 != 0, Gap: 1, MaxScan: 16}
		k := mustKeyboard(t, c)
		var out []framing.Output
		var held [][]byte
		altCodes := false // Alt + keypad may carry CR, LF or Tab as data
		for len(b) > 0 {
			n := min(len(b), BootReportLen)
			if mode&16 != 0 && n > 3 {
				n-- // short reports too
			}
			altCodes = altCodes || b[0]&(modLAlt|modRAlt) != 0
			out = k.Feed(slices.Clone(b[:n]), out)
			held = cloneAll(out)
			b = b[n:]
		}
		out = k.Reset(k.Expire(out))
		checkOutputs(t, out, c.MaxScan)
		for i, h := range held {
			if !bytes.Equal(out[i].Data, h) {
				t.Fatalf("output %d changed after a later feed", i)
			}
		}
		if !c.HexDump && !altCodes {
			for _, o := range out {
				if o.Kind == framing.KindScan && bytes.ContainsAny(o.Data, "\r\n\t") {
					t.Fatalf("scan holds its terminator: %q", o.Data)
				}
				// Keys, dead keys and their compositions type characters, never
				// broken UTF-8 (only Alt codes and hex dumps carry raw bytes).
				if o.Kind == framing.KindScan && !utf8.Valid(o.Data) {
					t.Fatalf("scan is not UTF-8: %q", o.Data)
				}
			}
		}
	})
}

// FuzzDescriptor: any bytes parse or fail with a DescriptorError, in bounded time, and
// report sizes stay within what the bytes could declare.
func FuzzDescriptor(f *testing.F) {
	for _, d := range [][]byte{posDescriptor, vendorDescriptor, keyboardDescriptor} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			if _, ok := err.(*DescriptorError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		for kind := Input; kind <= Feature; kind++ {
			for id := 0; id < 256; id++ {
				if n := d.ReportSize(kind, uint8(id)); n < 0 || n > 1+len(b)/2*0xFFFF*0xFFFF/8+1 {
					t.Fatalf("report size %d", n)
				}
			}
		}
	})
}

// cut splits b into pieces of the lengths in lens (the rest, if any, is one more piece).
func cut(lens, b []byte) [][]byte {
	var rs [][]byte
	for _, n := range lens {
		if len(b) == 0 {
			break
		}
		k := min(int(n), len(b))
		rs = append(rs, b[:k])
		b = b[k:]
	}
	if len(b) > 0 {
		rs = append(rs, b)
	}
	return rs
}
