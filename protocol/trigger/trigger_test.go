package trigger

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/hextest"
)

var hx = hextest.Decode

// TestLookupSpecBytes: every trigger frame of SCANNERS.md, byte for byte.
func TestLookupSpecBytes(t *testing.T) {
	for _, tc := range []struct {
		name, start, stop string
		replies           []string
	}{
		{"honeywell", "16 54 0D", "16 55 0D", nil},
		{"newland", "7E 00 08 01 00 02 01 02 DA", "7E 00 08 01 00 02 02 32 B9", []string{"02 00 00 01 00 33 31"}},
		{"gm65", "7E 00 08 01 00 02 01 AB CD", "7E 00 08 01 00 02 00 AB CD", []string{"02 00 00 01 00 33 31"}},
		{"newland-2d", "1B 31", "1B 30", []string{"06"}},
		{"ssi", "04 E4 04 00 FF 14", "04 E5 04 00 FF 13", nil},
	} {
		c, err := Lookup(tc.name)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tc.name, err)
			continue
		}
		if !bytes.Equal(c.Start, hx(t, tc.start)) || !bytes.Equal(c.Stop, hx(t, tc.stop)) {
			t.Errorf("%s: start % X stop % X; want %s / %s", tc.name, c.Start, c.Stop, tc.start, tc.stop)
		}
		if len(c.Replies) != len(tc.replies) {
			t.Errorf("%s: replies % X, want %q", tc.name, c.Replies, tc.replies)
			continue
		}
		for i, r := range tc.replies {
			if !bytes.Equal(c.Replies[i], hx(t, r)) {
				t.Errorf("%s: reply % X, want %s", tc.name, c.Replies[i], r)
			}
		}
	}
}

func TestNamesAllResolve(t *testing.T) {
	for _, n := range Names() {
		if _, err := Lookup(n); err != nil {
			t.Errorf("Lookup(%q): %v", n, err)
		}
	}
}

func TestLookupCaseAndErrors(t *testing.T) {
	if c, err := Lookup(" Newland "); err != nil || c.Start[len(c.Start)-1] != 0xDA {
		t.Errorf("Lookup(\" Newland \") = % X, %v", c.Start, err)
	}
	for _, n := range []string{"", "custom", "zebra", "newland2d"} {
		_, err := Lookup(n)
		var e *Error
		if !errors.As(err, &e) || e.Field != "type" || !strings.Contains(err.Error(), "honeywell, newland, gm65, newland-2d, ssi") {
			t.Errorf("Lookup(%q) error = %v", n, err)
		}
	}
}

func TestLookupReturnsFreshSlices(t *testing.T) {
	a, _ := Lookup("newland")
	a.Start[0], a.Replies[0][0] = 0, 0
	b, _ := Lookup("newland")
	if b.Start[0] != 0x7E || b.Replies[0][0] != 0x02 {
		t.Errorf("a caller's change leaked: % X, % X", b.Start, b.Replies[0])
	}
}

// TestCRC16XModem reproduces the CRC bytes SCANNERS.md gives: 02 DA and 32 B9 over the
// bytes after 7E 00, and 33 31 closing the 7E00 reply.
func TestCRC16XModem(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
	}{
		{"08 01 00 02 01", 0x02DA},
		{"08 01 00 02 02", 0x32B9},
		{"00 01 00", 0x3331},
		{hex.EncodeToString([]byte("123456789")), 0x31C3}, // the catalogue check value
		{"", 0},
	} {
		if got := CRC16XModem(hx(t, tc.in)); got != tc.want {
			t.Errorf("CRC16XModem(%s) = %04X, want %04X", tc.in, got, tc.want)
		}
	}
}

func TestCustom(t *testing.T) {
	c, err := Custom("16 54 0d", "16:55:0D")
	if err != nil || !bytes.Equal(c.Start, []byte{0x16, 0x54, 0x0D}) || !bytes.Equal(c.Stop, []byte{0x16, 0x55, 0x0D}) || c.Replies != nil {
		t.Errorf("Custom = %+v, %v", c, err)
	}
	if c, err := Custom("1B31", ""); err != nil || len(c.Stop) != 0 {
		t.Errorf("Custom without stop = %+v, %v", c, err)
	}
	for _, tc := range []struct{ start, stop, field string }{
		{"", "00", "start"},
		{"zz", "", "start"},
		{"1", "", "start"},
		{"00", "0x01", "stop"},
		{strings.Repeat("00", MaxCommand+1), "", "start"},
	} {
		_, err := Custom(tc.start, tc.stop)
		var e *Error
		if !errors.As(err, &e) || e.Field != tc.field || !strings.HasPrefix(err.Error(), "trigger: "+tc.field+": ") {
			t.Errorf("Custom(%q, %q) error = %v, want a %s error", tc.start, tc.stop, err, tc.field)
		}
	}
}

// FuzzCustom: the hex parser never panics, and what it accepts round-trips.
func FuzzCustom(f *testing.F) {
	for _, s := range []string{"16 54 0D", "7E 00 08 01 00 02 01 02 DA", "1B:31", "", "zz", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Custom(s, s)
		if err != nil {
			return
		}
		if len(c.Start) == 0 || len(c.Start) > MaxCommand || !bytes.Equal(c.Start, c.Stop) {
			t.Fatalf("Custom(%q) = %+v", s, c)
		}
		again, err := Custom(hex.EncodeToString(c.Start), "")
		if err != nil || !bytes.Equal(again.Start, c.Start) {
			t.Fatalf("round trip of % X: %+v, %v", c.Start, again, err)
		}
	})
}
