package cards

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestHistoricalBytes(t *testing.T) {
	for _, c := range []struct{ atr, hist string }{
		// CARDS.md's social security card: TB1 TC1, then 13 historical bytes.
		{atrHex, "00 81 54 4C 97 86 84 32 02 AD 93 2A 48"},
		// A T=1 card (a Lingnan Pass): TD1 TD2 chain to T=1, 15 bytes, then TCK 68.
		{"3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68", "80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00"},
		// TA1 TB1 TC1 TD1 (T=1, TD2 follows), TD2 (TA3 TB3), TA3 TB3; 3 bytes, TCK.
		{"3B F3 11 00 FF 81 31 FE 45 80 31 A0 6C", "80 31 A0"},
		{"3F 02 14 50", "14 50"},
		{"3B 00", ""},
	} {
		got, err := HistoricalBytes(h(c.atr))
		if err != nil || !bytes.Equal(got, h(c.hist)) {
			t.Errorf("%s: % X, %v; want %s", c.atr, got, err, c.hist)
		}
	}
}

func TestHistoricalBytesRefusesBrokenATRs(t *testing.T) {
	for _, c := range []struct {
		atr    string
		offset int
	}{
		{"", 0},
		{"3B", 1},
		{"12 34", 0},                   // not a TS
		{"3B 6D 00 00 00 81", 6},       // 13 announced, 2 there
		{"3B 80", 2},                   // TD1 announced, missing
		{"3B 80 80 80", 4},             // a TD chain running off the end
		{"3B 70 11", 3},                // TA1 TB1 TC1 announced, one there
		{"3B 8F 80 01 80 4F 0C A0", 8}, // a T=1 ATR cut short
	} {
		_, err := HistoricalBytes(h(c.atr))
		var ae *ATRError
		if !errors.As(err, &ae) || ae.Offset != c.offset {
			t.Errorf("%q: %v, want an ATRError at %d", c.atr, err, c.offset)
		}
	}
}

func ExampleHistoricalBytes() {
	hist, _ := HistoricalBytes([]byte{0x3B, 0x6D, 0x00, 0x00, 0x00, 0x81, 0x54, 0x4C, 0x97, 0x86, 0x84, 0x32, 0x02, 0xAD, 0x93, 0x2A, 0x48})
	fmt.Printf("%X\n", hist)
	// Output: 0081544C9786843202AD932A48
}

// FuzzHistoricalBytes: whatever the bytes, the answer is the K bytes T0 announces, inside
// the ATR and after TS T0, or an error that points into (or just past) it.
func FuzzHistoricalBytes(f *testing.F) {
	for _, s := range []string{atrHex, "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68", "3B F3 11 00 FF 81 31 FE 45 80 31 A0 6C", "3B 80 80 80"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, atr []byte) {
		hist, err := HistoricalBytes(atr)
		if err != nil {
			var ae *ATRError
			if !errors.As(err, &ae) || ae.Offset < 0 || ae.Offset > len(atr) {
				t.Fatalf("%v", err)
			}
			return
		}
		if len(hist) != int(atr[1]&0x0F) {
			t.Fatalf("%d bytes, T0 says %d", len(hist), atr[1]&0x0F)
		}
		if len(hist) > 0 && !bytes.Contains(atr[2:], hist) {
			t.Fatalf("% X not in % X", hist, atr)
		}
	})
}
