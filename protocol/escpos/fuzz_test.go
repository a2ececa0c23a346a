package escpos

import (
	"errors"
	"reflect"
	"testing"
)

// The parser's seeds are PRINTERS.md's byte examples, a whole receipt, and the refused
// inputs of TestParseErrors.
func parseSeeds(f *testing.F) {
	for _, s := range []string{
		"1B 40", "1C 26", "1C 2E", "1B 61 00", "1B 61 01", "1B 45 01", "1B 45 00", "1D 21 11", "1D 21 00",
		"1D 28 6B 04 00 31 41 32 00", "1D 28 6B 03 00 31 43 08", "1D 28 6B 03 00 31 45 30", "1D 28 6B 03 00 31 45 33",
		"1D 28 6B 06 00 31 50 30 41 42 43 1D 28 6B 03 00 31 51 30", "1D 56 42 00", "10 04 04", "1D 72 01",
		"1D 28 6B FF FF 31 50 30 41", "1D 28 6B 03 00 31 51 30", "1C 26 D6 D0 CE C4 0A", "41 D6 D0 0A",
	} {
		f.Add(h(s))
	}
	r := testReceipt()
	job, err := r.Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(job)
}

func FuzzParse(f *testing.F) {
	parseSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(b) {
				t.Fatalf("error %v is not a SyntaxError within the input", err)
			}
			return
		}
		// A stream reader sees the same document, whatever the pieces.
		got, err := parseChunked(b, 3)
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Fatalf("chunked: %v\n%+v\nwant %+v", err, got, d)
		}
		total := 0
		for _, q := range d.QRs() {
			if len(q.Payload) == 0 || len(q.Payload) > MaxQRData || q.ModuleSize < 1 || q.ModuleSize > 16 {
				t.Fatalf("symbol %+v", q)
			}
			total += len(q.Payload)
		}
		// Rendering encodes every symbol and draws every dot: keep that to small jobs, or
		// minimising a long input takes the fuzzer minutes.
		if total <= 64 && len(b) <= 512 {
			Render(d, Dots58mm, testFont)
		}
	})
}

// Any text the Builder accepts in the Chinese mode reads back the same.
func FuzzGBKText(f *testing.F) {
	for _, s := range []string{"居民电子健康卡", "姓名：张**", "K-0001", "ＡＢＣ", "〇", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b Builder
		b.Chinese(true)
		b.Line(s)
		job, err := b.Bytes()
		if err != nil {
			return
		}
		d, err := Parse(job)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := d.Texts(); len(got) != 1 || got[0] != s {
			t.Fatalf("%q read back as %q", s, got)
		}
	})
}

// testFont has one glyph, so that the fuzzer draws with a font too.
var testFont = Font{'中': h("01000100010001003FF8210821082108210821083FF821080100010001000100")}
