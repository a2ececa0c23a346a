package hid

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// honeywellReport is one 64-byte Honeywell input report:
// [02][len][AIM ×3][data ×56][code id][00][flags].
func honeywellReport(aim string, data []byte, codeID byte, more bool) []byte {
	r := make([]byte, ReportLen)
	r[0] = 0x02
	r[1] = byte(len(data))
	copy(r[2:5], aim)
	copy(r[5:61], data)
	r[61] = codeID
	if more {
		r[63] = 0x01
	}
	return r
}

// honeywellScan splits data over as many reports as it takes, as a scanner does.
func honeywellScan(aim string, data []byte) [][]byte {
	var rs [][]byte
	for {
		n := min(len(data), honeywellData)
		rs = append(rs, honeywellReport(aim, data[:n], 's', n < len(data)))
		data = data[n:]
		if len(data) == 0 {
			return rs
		}
	}
}

// idLenReport is a Newland or Microscan report: [id][len][payload, NUL-padded to 64].
func idLenReport(id byte, payload []byte) []byte {
	r := make([]byte, ReportLen)
	r[0], r[1] = id, byte(len(payload))
	copy(r[2:], payload)
	return r
}

func mustPOS(t testing.TB, c POSConfig) *POS {
	t.Helper()
	if c.Gap == 0 {
		c.Gap = 100 * time.Millisecond
	}
	p, err := NewPOS(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustKeyboard(t testing.TB, c KeyboardConfig) *Keyboard {
	t.Helper()
	if c.Gap == 0 {
		c.Gap = 100 * time.Millisecond
	}
	k, err := NewKeyboard(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func feedAll(d interface {
	Feed([]byte, []framing.Output) []framing.Output
}, reports [][]byte) []framing.Output {
	var out []framing.Output
	for _, r := range reports {
		out = d.Feed(r, out)
	}
	return out
}

// describe renders outputs for comparison: "scan ]Q1 HELLO", "drop too_long 70".
func describe(out []framing.Output) []string {
	s := make([]string, len(out))
	for i, o := range out {
		switch o.Kind {
		case framing.KindScan:
			s[i] = fmt.Sprintf("scan %s %q", o.AIM, o.Data)
		case framing.KindDrop:
			s[i] = fmt.Sprintf("drop %s %d", o.Reason, o.Dropped)
		default:
			s[i] = fmt.Sprintf("kind %d", o.Kind)
		}
	}
	return s
}

func wantOutputs(t *testing.T, got []framing.Output, want ...string) {
	t.Helper()
	g := describe(got)
	if len(g) != len(want) {
		t.Fatalf("got %q, want %q", g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("output %d: got %q, want %q (all: %q)", i, g[i], want[i], g)
		}
	}
}

// typeUS is what a wedge scanner sends for s on a US layout: for each character a
// key-down report (with Shift when needed) and an all-zero release. Enter ends it when
// enter is set.
func typeUS(t testing.TB, s string, enter bool) [][]byte {
	t.Helper()
	var rs [][]byte
	for _, c := range []byte(s) {
		key, shift, ok := usKey(c)
		if !ok {
			t.Fatalf("no US key types %q", c)
		}
		var mods byte
		if shift {
			mods = modLShift
		}
		rs = append(rs, []byte{mods, 0, key, 0, 0, 0, 0, 0}, make([]byte, 8))
	}
	if enter {
		rs = append(rs, []byte{0, 0, keyEnter, 0, 0, 0, 0, 0}, make([]byte, 8))
	}
	return rs
}

func usKey(c byte) (key byte, shift, ok bool) {
	for k := 0; k < 256; k++ {
		e := keyMapUS.keys[k]
		if k >= keyKP1-0x05 && k <= 0x63 { // prefer the main block to the keypad
			continue
		}
		if e[0] == rune(c) {
			return byte(k), false, true
		}
		if e[1] == rune(c) {
			return byte(k), true, true
		}
	}
	return 0, false, false
}

func cloneAll(out []framing.Output) [][]byte {
	h := make([][]byte, len(out))
	for i, o := range out {
		h[i] = bytes.Clone(o.Data)
	}
	return h
}
