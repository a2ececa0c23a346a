package escpos

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		in     string
		offset int
	}{
		{"1B 40 1B 7A", 2},                             // ESC z: unknown
		{"41 42 00", 2},                                // NUL
		{"1B 40 1B 61", 2},                             // ends inside ESC a
		{"1B 61 05", 0},                                // ESC a 5
		{"1D 28 6B 03 00 31 43 00", 0},                 // module size 0
		{"1D 28 6B 03 00 31 43 11", 0},                 // module size 17
		{"1D 28 6B 03 00 31 45 34", 0},                 // level 34
		{"1D 28 6B 04 00 31 41 34 00", 0},              // model 34
		{"1D 28 6B 03 00 31 50 30", 0},                 // store of nothing
		{"1D 28 6B 05 00 31 51 30 00 00", 0},           // print with a wrong length
		{"1D 28 6B 03 00 31 59 30", 0},                 // unknown QR function
		{"1D 28 6B 03 00 31 51 30", 0},                 // print with nothing stored
		{"1D 28 6B FF FF 31 50 30 41", 0},              // store of 65,532 bytes: over the bound
		{"1D 28 6B 10 00 31 50 30 41", 0},              // store cut short
		{"41 0A 10 04 05", 2},                          // DLE EOT 5
		{"41 0A 10 05 01", 2},                          // DLE ENQ: not known
		{"1D 21 88", 0},                                // size 9×9
		{"1D 56 07", 0},                                // unknown cut
		{"1C 43 00", 0},                                // FS C
		{"1D 28 41 02 00 00 01", 0},                    // GS ( A
		{"1D 28 6B 01 00 31", 0},                       // fewer than 2 parameter bytes
		{"1D 28 6B 04 00 31 41 32 01", 0},              // model with n2 = 1
		{"1D 28 6B 03 00 31 50 31", 0},                 // store with m = 31... and k = 0
		{"1D 28 6B 04 00 31 50 31 41", 0},              // store with m = 31
		{"1D 72 03", 0},                                // GS r 3
		{"0A 0A 0A 1D 28 6B 04 00 31 41 32 00 0C", 12}, // FF after the model
	} {
		_, err := Parse(h(c.in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v, want a SyntaxError", c.in, err)
			continue
		}
		if se.Offset != c.offset {
			t.Errorf("%s: offset %d, want %d (%v)", c.in, se.Offset, c.offset, err)
		}
	}
}

// Next wants more bytes for every proper prefix of a command, and tells a prefix that
// cannot become a command at once.
func TestNextIncomplete(t *testing.T) {
	for _, cmd := range []string{"1B 40", "1B 61 01", "1D 21 11", "1C 26", "10 04 04", "1D 72 01", "1D 56 42 00", "1D 56 00",
		"1D 28 6B 04 00 31 41 32 00", "1D 28 6B 06 00 31 50 30 41 42 43", "1D 28 6B 03 00 30 41 00"} {
		b := h(cmd)
		for i := 0; i < len(b); i++ {
			if _, _, err := Next(b[:i]); !errors.Is(err, ErrIncomplete) {
				t.Errorf("%s: prefix of %d bytes: %v", cmd, i, err)
			}
		}
		if _, n, err := Next(b); err != nil || n != len(b) {
			t.Errorf("%s: %d, %v", cmd, n, err)
		}
	}
	// A QR store that promises more than a symbol holds is refused before its data.
	if _, _, err := Next(h("1D 28 6B FF FF 31 50")); errors.Is(err, ErrIncomplete) || err == nil {
		t.Errorf("oversized store: %v", err)
	}
}

// Fed in pieces of any size, the stream makes the same document as Parse.
func TestStreamEqualsParse(t *testing.T) {
	r := testReceipt()
	job, err := r.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse(job)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 2, 3, 7, 64, len(job)} {
		got, err := parseChunked(job, chunk)
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("chunks of %d: %+v\nwant %+v", chunk, got, want)
		}
	}
}

// parseChunked reads b as a stream reader does: commands as they complete, text runs
// in whatever pieces the chunks cut them into.
func parseChunked(b []byte, chunk int) (*Document, error) {
	var it Interpreter
	var pending []byte
	for len(b) > 0 {
		n := min(chunk, len(b))
		pending = append(pending, b[:n]...)
		b = b[n:]
		for len(pending) > 0 {
			c, used, err := Next(pending)
			if errors.Is(err, ErrIncomplete) {
				break
			}
			if err != nil {
				return nil, err
			}
			if err := it.Apply(c); err != nil {
				return nil, err
			}
			pending = pending[used:]
		}
	}
	if len(pending) > 0 {
		return nil, errors.New("ends inside a command")
	}
	return it.Finish(), nil
}

func TestParseSemantics(t *testing.T) {
	// ESC @ throws away a line not yet ended; ESC a takes effect at a line's start; ESC !
	// sets emphasis and size; ESC d feeds; GS r and DLE EOT are requests, not print.
	d, err := Parse(h("41 42 1B 40 1B 61 02 43 1B 61 00 44 0A 1B 21 38 45 0A 1B 64 03 10 04 01 1D 72 01 0D 09 46 0A 1D 56 00"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Kind: BlockText, Text: "CD", Align: Right, Width: 1, High: 1},
		{Kind: BlockText, Text: "E", Align: Right, Bold: true, Width: 2, High: 2},
		{Kind: BlockFeed, Lines: 3},
		{Kind: BlockText, Text: "    F", Align: Right, Bold: true, Width: 2, High: 2},
		{Kind: BlockCut},
	}
	// ESC a 00 came in the middle of "CD": ignored, so "E" is right-aligned too.
	if !reflect.DeepEqual(d.Blocks, want) {
		t.Fatalf("blocks\n%+v\nwant\n%+v", d.Blocks, want)
	}
	if len(d.Requests) != 2 || d.Requests[0].Op != OpRealtimeStatus || d.Requests[0].Arg != 1 ||
		d.Requests[1].Op != OpTransmitStatus || d.Requests[1].Arg != 1 {
		t.Fatalf("requests %+v", d.Requests)
	}
	// Bytes ≥ 0x80 outside the Chinese mode are code page glyphs: U+FFFD.
	d, err = Parse(h("41 D6 D0 0A 1C 26 D6 D0 0A"))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Texts(); len(got) != 2 || got[0] != "A\uFFFD\uFFFD" || got[1] != "中" {
		t.Fatalf("texts %q", got)
	}
}
