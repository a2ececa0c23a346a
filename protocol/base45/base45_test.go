package base45

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// rfcExamples are RFC 9285 sections 4.3 and 4.4.
var rfcExamples = []struct{ plain, encoded string }{
	{"AB", "BB8"},
	{"Hello!!", "%69 VD92EX0"},
	{"base-45", "UJCLQE7W581"},
	{"ietf!", "QED8WEX0"},
}

func TestEncodeRFC(t *testing.T) {
	for _, c := range rfcExamples {
		if got := Encode([]byte(c.plain)); got != c.encoded {
			t.Errorf("Encode(%q) = %q, want %q", c.plain, got, c.encoded)
		}
	}
}

func TestDecodeRFC(t *testing.T) {
	for _, c := range rfcExamples {
		got, err := Decode([]byte(c.encoded))
		if err != nil || string(got) != c.plain {
			t.Errorf("Decode(%q) = %q, %v, want %q", c.encoded, got, err, c.plain)
		}
	}
}

func TestDecodeLowercase(t *testing.T) {
	for _, c := range rfcExamples {
		lower := strings.ToLower(c.encoded)
		got, err := Decode([]byte(lower))
		if err != nil || string(got) != c.plain {
			t.Errorf("Decode(%q) = %q, %v, want %q", lower, got, err, c.plain)
		}
	}
	// Mixed case, as a scanner toggling Caps Lock mid-read would give.
	got, err := Decode([]byte("uJcLqE7w581"))
	if err != nil || string(got) != "base-45" {
		t.Errorf("Decode(mixed case) = %q, %v", got, err)
	}
}

func TestDecodeEmpty(t *testing.T) {
	got, err := Decode(nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Decode(nil) = %q, %v", got, err)
	}
	if s := Encode(nil); s != "" {
		t.Errorf("Encode(nil) = %q", s)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	for _, c := range []struct {
		in      string
		offset  int64
		partial string // decoded before the corrupt group
	}{
		{"GGW", 0, ""},           // RFC 9285 section 4.4: 65536
		{"BB8GGW", 3, "AB"},      // out of range after a good group
		{":::", 0, ""},           // 44+44*45+44*2025 = 91124
		{"A", 0, ""},             // length 1 mod 3
		{"BB8A", 3, "AB"},        // length 1 mod 3 after a good group
		{"BB8!", 3, "AB"},        // lone trailing character outside the alphabet
		{"!B8", 0, ""},           // outside the alphabet
		{"B!8", 1, ""},           // outside the alphabet, middle
		{"BB!", 2, ""},           // outside the alphabet, last of a triple
		{"BB8B!", 4, "AB"},       // outside the alphabet, trailing pair
		{"!B", 0, ""},            // outside the alphabet, first of a pair
		{"BB8\x00", 3, "AB"},     // NUL
		{"BB8\xff\xff", 3, "AB"}, // high bytes
		{"U8", 0, ""},            // pair 30+8*45 = 390 > 255
		{"Z6", 0, ""},            // pair 35+6*45 = 305 > 255
		{"BB8_B8", 3, "AB"},      // underscore is not in the alphabet
		{"BB8\u00c5B", 3, "AB"},  // a non-ASCII letter does not fold
		{"BB8 \tB", 4, "AB"},     // space is in the alphabet, tab is not
	} {
		got, err := Decode([]byte(c.in))
		var ce CorruptInputError
		if !errors.As(err, &ce) {
			t.Errorf("Decode(%q) error = %v, want CorruptInputError", c.in, err)
			continue
		}
		if int64(ce) != c.offset {
			t.Errorf("Decode(%q) offset = %d, want %d", c.in, ce, c.offset)
		}
		if string(got) != c.partial {
			t.Errorf("Decode(%q) partial = %q, want %q", c.in, got, c.partial)
		}
	}
}

func TestDecodeBounds(t *testing.T) {
	// The largest values a triple and a pair may carry.
	for _, c := range []struct {
		in   string
		want []byte
	}{
		{"FGW", []byte{0xff, 0xff}},
		{"U5", []byte{0xff}},
		{"000", []byte{0, 0}},
		{"00", []byte{0}},
	} {
		got, err := Decode([]byte(c.in))
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("Decode(%q) = %x, %v, want %x", c.in, got, err, c.want)
		}
		if e := Encode(c.want); e != c.in {
			t.Errorf("Encode(%x) = %q, want %q", c.want, e, c.in)
		}
	}
}

func TestCorruptInputErrorMessage(t *testing.T) {
	if got, want := CorruptInputError(7).Error(), "illegal base45 data at input byte 7"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAppend(t *testing.T) {
	dst := []byte("EHC1:")
	got := AppendEncode(dst, []byte("AB"))
	if string(got) != "EHC1:BB8" {
		t.Errorf("AppendEncode = %q", got)
	}
	dec, err := AppendDecode([]byte{0x01}, []byte("BB8"))
	if err != nil || string(dec) != "\x01AB" {
		t.Errorf("AppendDecode = %q, %v", dec, err)
	}
	dec, err = AppendDecode([]byte{0x01}, []byte("BB8GGW"))
	if err == nil || string(dec) != "\x01AB" {
		t.Errorf("AppendDecode(corrupt) = %q, %v, want partial \"\\x01AB\" and an error", dec, err)
	}
}

func TestLens(t *testing.T) {
	for n := 0; n < 100; n++ {
		e := EncodedLen(n)
		if got := len(Encode(make([]byte, n))); got != e {
			t.Fatalf("EncodedLen(%d) = %d, encoding has %d", n, e, got)
		}
		if got := DecodedLen(e); got != n {
			t.Fatalf("DecodedLen(EncodedLen(%d)) = %d", n, got)
		}
	}
}

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := make([]byte, r.IntN(400))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		s := Encode(b)
		got, err := Decode([]byte(s))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x: got %x, %v", b, got, err)
		}
	}
}

// TestEveryTriple checks the whole value space of a group both ways.
func TestEveryTriple(t *testing.T) {
	for v := 0; v <= 0xffff; v++ {
		b := []byte{byte(v >> 8), byte(v)}
		s := Encode(b)
		got, err := Decode([]byte(s))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("value %d: Encode = %q, Decode = %x, %v", v, s, got, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range rfcExamples {
		f.Add([]byte(c.encoded))
		f.Add([]byte(strings.ToLower(c.encoded)))
	}
	for _, s := range []string{"GGW", "FGW", "U5", "U6", "A", "", "BB8GGW", "::", ":::", "BB8 \t"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Decode(in)
		if len(out) > DecodedLen(len(in)) {
			t.Fatalf("Decode(%q) gave %d bytes, bound %d", in, len(out), DecodedLen(len(in)))
		}
		if err != nil {
			var ce CorruptInputError
			if !errors.As(err, &ce) || ce < 0 || int(ce) >= len(in) {
				t.Fatalf("Decode(%q) error %v: not a CorruptInputError within the input", in, err)
			}
			return
		}
		// Base45 is canonical: what decodes re-encodes to the same text, up to case.
		enc := Encode(out)
		if enc != strings.ToUpper(string(in)) {
			t.Fatalf("Encode(Decode(%q)) = %q", in, enc)
		}
		again, err := Decode([]byte(enc))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Decode(Encode(Decode(%q))) = %x, %v, want %x", in, again, err, out)
		}
	})
}

func FuzzEncode(f *testing.F) {
	for _, c := range rfcExamples {
		f.Add([]byte(c.plain))
	}
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := Encode(in)
		if len(s) != EncodedLen(len(in)) {
			t.Fatalf("len(Encode(%x)) = %d, want %d", in, len(s), EncodedLen(len(in)))
		}
		out, err := Decode([]byte(s))
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("Decode(Encode(%x)) = %x, %v", in, out, err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	src := make([]byte, 353) // the largest EHC1 code
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		Encode(src)
	}
}

func BenchmarkDecode(b *testing.B) {
	src := []byte(Encode(make([]byte, 353)))
	dst := make([]byte, 0, 353)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendDecode(dst[:0], src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEncode(b *testing.B) {
	src := make([]byte, 353)
	dst := make([]byte, 0, EncodedLen(len(src)))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		AppendEncode(dst[:0], src)
	}
}
