package apdu

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

func FuzzParseCommand(f *testing.F) {
	for _, c := range cardsCommands {
		f.Add(h(c.hex))
	}
	f.Add(h("00 A4 00 00 00 00 02"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCommand(in)
		if err != nil {
			return
		}
		// A parsed command re-encodes to exactly its input: the case is not guessed.
		out, err := c.Bytes()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("ParseCommand(% X) = %+v re-encodes to % X, %v", in, c, out, err)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{"61 1E", "90 00", "6C 14", "0B 02 C1 F5 90 00", "", "90"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseResponse(in)
		if err != nil {
			if len(in) >= 2 || !errors.Is(err, ErrShortResponse) {
				t.Fatalf("ParseResponse(% X): %v", in, err)
			}
			return
		}
		if len(r.Data) != len(in)-2 || r.SW1() != in[len(in)-2] || r.SW2() != in[len(in)-1] {
			t.Fatalf("ParseResponse(% X) = %+v", in, r)
		}
	})
}

// FuzzExchange plays a card whose answers come from the fuzzer: Exchange must end within
// its bounds with a response or an error, never loop or grow without limit; each command
// after the first must be the GET RESPONSE a 61xx asks for or the previous command with
// the Le a 6Cxx asks for; and the data returned is that of the answers other than 6Cxx,
// in order.
func FuzzExchange(f *testing.F) {
	f.Add(h("61 1E"), h("AB 90 00"), byte(0))
	f.Add(h("6C 07"), h("0B 05 C1 F5 B4 F3 00 90 00"), byte(0))
	f.Add(h("61 00"), h("61 00"), byte(0))
	f.Add(h("6C 07"), h("6C 07"), byte(1))
	f.Add(h("61 10"), h("6C 08"), byte(0x10))
	f.Add(h("AA 61 04"), h("BB 61 04"), byte(0))
	f.Add(h(""), h(""), byte(0))
	f.Fuzz(func(t *testing.T, first, rest []byte, le byte) {
		n := 0
		var prev, prevAns, want []byte
		card := transmitFunc(func(cmd []byte) ([]byte, error) {
			n++
			ans := rest
			if n == 1 {
				ans = first
			}
			if n > 1 {
				var next []byte
				switch sw1 := prevAns[len(prevAns)-2]; sw1 {
				case 0x61:
					next = []byte{0x00, 0xC0, 0x00, 0x00, prevAns[len(prevAns)-1]}
				case 0x6C:
					c, err := ParseCommand(prev)
					if err != nil {
						t.Fatalf("sent % X, which does not parse: %v", prev, err)
					}
					c.Ne = ne(prevAns[len(prevAns)-1])
					next, _ = c.Bytes()
				default:
					t.Fatalf("command % X sent after the final answer % X", cmd, prevAns)
				}
				if !bytes.Equal(cmd, next) {
					t.Fatalf("after % X answered % X: sent % X, want % X", prev, prevAns, cmd, next)
				}
			}
			prev, prevAns = bytes.Clone(cmd), ans
			if len(ans) >= 2 && ans[len(ans)-2] != 0x6C {
				want = append(want, ans[:len(ans)-2]...)
			}
			return ans, nil
		})
		r, err := Exchange(card, Command{INS: 0xB2, P1: 1, P2: 4, Ne: int(le)})
		if n > MaxRoundTrips {
			t.Fatalf("%d commands sent", n)
		}
		if err == nil && len(r.Data) > MaxData {
			t.Fatalf("%d bytes collected", len(r.Data))
		}
		if err == nil && (r.SW1() == 0x61 || r.SW1() == 0x6C) {
			t.Fatalf("returned %04X instead of following it", r.SW)
		}
		if err == nil && !bytes.Equal(r.Data, want) {
			t.Fatalf("returned % X, the answers' data is % X", r.Data, want)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	f.Add(append(h("08 12"), []byte("110101198001011234")...), byte(0x08), 18)
	f.Add(h("0B 04 D5 C5 C8 FD"), byte(0x0B), 30)
	f.Add(h("4E 00"), byte(0x4E), 20)
	f.Add(h("08 13 31"), byte(0x08), 18)
	f.Fuzz(func(t *testing.T, in []byte, tag byte, max int) {
		v, err := ParseRecord(in, tag, max)
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) || re.Tag != tag {
				t.Fatalf("error %v is not a RecordError for tag %02X", err, tag)
			}
			return
		}
		if in[0] != tag || len(v) != int(in[1]) || len(v) > max || len(in) != 2+len(v) {
			t.Fatalf("ParseRecord(% X, %02X, %d) = % X", in, tag, max, v)
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"C9 E7 BB E1 B1 A3 D5 CF", "D5 C5 C8 FD 00 00", "C0 EE CB C4 20 20", "33 2E 30 30", "C9", "FF FF", "81 30 81 30"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Text(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(s) || len(s) > 3*len(in) {
			t.Fatalf("Text(% X) = %q", in, s)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7F || r == utf8.RuneError {
				t.Fatalf("Text(% X) = %q has %U", in, s, r)
			}
		}
		// What decodes encodes back to the same text.
		b, err := EncodeText(s, len(in), 0)
		if err != nil {
			t.Fatalf("EncodeText(%q): %v", s, err)
		}
		if s2, err := Text(b); err != nil || s2 != s {
			t.Fatalf("round trip %q -> %q, %v", s, s2, err)
		}
	})
}

func FuzzBCD(f *testing.F) {
	for _, s := range []string{"19 80 01 01", "44 01 00", "12 3F FF", "FF", "1A", "F1"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := BCD(in)
		if err != nil {
			return
		}
		if len(s) > 2*len(in) {
			t.Fatalf("BCD(% X) = %q", in, s)
		}
		if s == "" {
			return // unwritten
		}
		b, err := EncodeBCD(s, len(in))
		if err != nil || !bytes.Equal(b, in) {
			t.Fatalf("BCD(% X) = %q re-encodes to % X, %v", in, s, b, err)
		}
	})
}
