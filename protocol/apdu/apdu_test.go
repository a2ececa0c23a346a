package apdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// h decodes hex written as CARDS.md writes it ("00 B2 08 00 14").
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// The commands of CARDS.md, byte for byte, and what they decode to.
var cardsCommands = []struct {
	name string
	hex  string
	cmd  Command
}{
	{"GET RESPONSE", "00 C0 00 00 10", Command{INS: 0xC0, Ne: 0x10}},
	{"SELECT DDF1", "00 A4 00 00 02 DD F1", Command{INS: 0xA4, Data: h("DD F1")}},
	{"SELECT EF05", "00 A4 00 00 02 EF 05", Command{INS: 0xA4, Data: h("EF 05")}},
	{"SELECT SSC by DF name", "00 A4 04 00 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF",
		Command{INS: 0xA4, P1: 0x04, Data: h("73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF")}},
	{"RHC EF05 card number", "00 B2 08 00 14", Command{INS: 0xB2, P1: 0x08, Ne: 0x14}},
	{"GET CHALLENGE", "00 84 00 00 08", Command{INS: 0x84, Ne: 8}},
	{"PSAM MAC", "80 FA 00 00 10 11 22 33 44 55 66 77 88 00 00 00 00 00 00 00 00",
		Command{CLA: 0x80, INS: 0xFA, Data: h("11 22 33 44 55 66 77 88 00 00 00 00 00 00 00 00")}},
	{"EXTERNAL AUTHENTICATE", "00 82 00 04 11 01 02 03 04 05 06 07 08 11 22 33 44 55 66 77 88 01",
		Command{INS: 0x82, P2: 0x04, Data: h("01 02 03 04 05 06 07 08 11 22 33 44 55 66 77 88 01")}},
	{"RHC EF06 record 1", "00 B2 01 04 00", Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256}},
	{"RHC EF07 photo length", "00 B0 00 00 02", Command{INS: 0xB0, Ne: 2}},
	{"SSC SSN", "00 B2 08 30 14", Command{INS: 0xB2, P1: 0x08, P2: 0x30, Ne: 0x14}},
	{"SSC name extension", "00 B2 4E 30 16", Command{INS: 0xB2, P1: 0x4E, P2: 0x30, Ne: 0x16}},
	{"SSC gender", "00 B2 0A 30 03", Command{INS: 0xB2, P1: 0x0A, P2: 0x30, Ne: 3}},
	{"SSC issue date", "00 B2 05 28 06", Command{INS: 0xB2, P1: 0x05, P2: 0x28, Ne: 6}},
	{"PSAM VERIFY", "00 20 00 00 03 12 34 56", Command{INS: 0x20, Data: h("12 34 56")}},
	{"case 4", "80 DE 47 31 02 AA BB 00", Command{CLA: 0x80, INS: 0xDE, P1: 0x47, P2: 0x31, Data: h("AA BB"), Ne: 256}},
	{"case 1", "00 A4 00 00", Command{INS: 0xA4}},
}

func TestCommandsOfCardsMD(t *testing.T) {
	for _, c := range cardsCommands {
		b, err := c.cmd.Bytes()
		if err != nil || !bytes.Equal(b, h(c.hex)) {
			t.Errorf("%s: encoded % X, %v; want %s", c.name, b, err, c.hex)
		}
		got, err := ParseCommand(h(c.hex))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.CLA != c.cmd.CLA || got.INS != c.cmd.INS || got.P1 != c.cmd.P1 || got.P2 != c.cmd.P2 ||
			!bytes.Equal(got.Data, c.cmd.Data) || got.Ne != c.cmd.Ne {
			t.Errorf("%s: parsed %+v, want %+v", c.name, got, c.cmd)
		}
	}
}

func TestCommandBounds(t *testing.T) {
	if _, err := (Command{Data: make([]byte, 256)}).Bytes(); !errors.Is(err, ErrExtended) {
		t.Errorf("256 data bytes: %v", err)
	}
	if _, err := (Command{Ne: 257}).Bytes(); !errors.Is(err, ErrExtended) {
		t.Errorf("Ne 257: %v", err)
	}
	for _, in := range []string{"", "00 A4 00", "00 A4 00 00 00 00 01", "00 A4 00 00 03 01 02", "00 A4 00 00 02 01 02 03 04"} {
		if _, err := ParseCommand(h(in)); err == nil {
			t.Errorf("ParseCommand(%s) accepted", in)
		}
	}
}

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse(h("01 02 61 1E"))
	if err != nil || !bytes.Equal(r.Data, h("01 02")) || r.SW != 0x611E || r.SW1() != 0x61 || r.SW2() != 0x1E {
		t.Fatalf("%+v %v", r, err)
	}
	for _, in := range []string{"", "90"} {
		if _, err := ParseResponse(h(in)); !errors.Is(err, ErrShortResponse) {
			t.Errorf("ParseResponse(%q): %v", in, err)
		}
	}
}

func TestStatusError(t *testing.T) {
	err := Response{SW: 0x6A83}.Check(0xB2)
	var se *StatusError
	if !errors.As(err, &se) || se.SW != SWRecordNotFound || se.INS != 0xB2 || !se.NotFound() {
		t.Fatalf("%v", err)
	}
	if !errors.Is(err, &StatusError{SW: SWRecordNotFound}) || errors.Is(err, &StatusError{SW: SWFileNotFound}) {
		t.Fatal("errors.Is by status word")
	}
	if got := err.Error(); got != "apdu: INS B2 answered 6A83 (record not found)" {
		t.Fatalf("%q", got)
	}
	if got := (&StatusError{INS: 0x20, SW: 0x63C2}).Error(); !strings.Contains(got, "2 tries left") {
		t.Fatalf("%q", got)
	}
	if (Response{SW: SWOK}).Check(0xB2) != nil {
		t.Fatal("9000 is not an error")
	}
}

// script is a card that expects exactly these commands, in order, and gives these answers.
type script struct {
	t     testing.TB
	steps [][2]string
	i     int
}

func (s *script) Transmit(cmd []byte) ([]byte, error) {
	if s.i >= len(s.steps) {
		s.t.Fatalf("unexpected command % X after the script", cmd)
	}
	st := s.steps[s.i]
	s.i++
	if !bytes.Equal(cmd, h(st[0])) {
		s.t.Fatalf("step %d: sent % X, want %s", s.i, cmd, st[0])
	}
	if st[1] == "error" {
		return nil, errTransport
	}
	return h(st[1]), nil
}

func (s *script) done() {
	if s.i != len(s.steps) {
		s.t.Fatalf("script stopped at step %d of %d", s.i, len(s.steps))
	}
}

var errTransport = errors.New("transport gone")

func TestExchange61xx(t *testing.T) {
	// CARDS.md: real social security cards answer the SELECT by DF name with 61 1E and
	// the FCI follows through GET RESPONSE.
	fci := strings.Repeat("AB ", 0x1E)
	s := &script{t: t, steps: [][2]string{
		{"00 A4 04 00 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF", "61 1E"},
		{"00 C0 00 00 1E", fci + "90 00"},
	}}
	r, err := Exchange(s, cardsCommands[3].cmd)
	if err != nil || r.SW != SWOK || len(r.Data) != 0x1E {
		t.Fatalf("%v %04X %d", err, r.SW, len(r.Data))
	}
	s.done()

	// The PSAM's 80 FA answers 61 10; chained answers are concatenated.
	s = &script{t: t, steps: [][2]string{
		{"80 FA 00 00 10 11 22 33 44 55 66 77 88 00 00 00 00 00 00 00 00", "61 10"},
		{"00 C0 00 00 10", "01 02 03 04 05 06 07 08 61 08"},
		{"00 C0 00 00 08", "09 0A 0B 0C 0D 0E 0F 10 90 00"},
	}}
	data, err := Do(s, cardsCommands[6].cmd)
	if err != nil || !bytes.Equal(data, h("01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10")) {
		t.Fatalf("% X %v", data, err)
	}
	s.done()
}

func TestExchange6Cxx(t *testing.T) {
	s := &script{t: t, steps: [][2]string{
		{"00 B2 01 04 00", "6C 07"},
		{"00 B2 01 04 07", "0B 05 C1 F5 B4 F3 00 90 00"},
	}}
	data, err := Do(s, Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256})
	if err != nil || !bytes.Equal(data, h("0B 05 C1 F5 B4 F3 00")) {
		t.Fatalf("% X %v", data, err)
	}
	s.done()

	// 6C then 61: a T=0 card may do both.
	s = &script{t: t, steps: [][2]string{
		{"00 B2 01 04 00", "6C 03"},
		{"00 B2 01 04 03", "61 03"},
		{"00 C0 00 00 03", "0C 01 01 90 00"},
	}}
	if data, err = Do(s, Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256}); err != nil || len(data) != 3 {
		t.Fatalf("% X %v", data, err)
	}

	// A second 6Cxx is a card going in circles.
	s = &script{t: t, steps: [][2]string{
		{"00 B2 01 04 00", "6C 07"},
		{"00 B2 01 04 07", "6C 08"},
	}}
	if _, err = Exchange(s, Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256}); !errors.Is(err, ErrLoop) {
		t.Fatalf("%v", err)
	}
	// 6C00 asks for 256 bytes.
	s = &script{t: t, steps: [][2]string{
		{"00 B0 00 00 10", "6C 00"},
		{"00 B0 00 00 00", strings.Repeat("00 ", 256) + "90 00"},
	}}
	if data, err = Do(s, Command{INS: 0xB0, Ne: 16}); err != nil || len(data) != 256 {
		t.Fatalf("%d %v", len(data), err)
	}
}

// CARDS.md: "6Cxx by re-sending with Le = xx" — the command that got the 6C, which after
// 61xx is the GET RESPONSE, never the original again (the PSAM's 80 FA would encrypt
// anew), and the data collected before it is kept.
func TestExchange6CxxResendsTheCommandItAnswers(t *testing.T) {
	fa := "80 FA 00 00 10 11 22 33 44 55 66 77 88 00 00 00 00 00 00 00 00"
	for _, c := range []struct {
		name  string
		cmd   Command
		steps [][2]string
		data  string // hex, when the exchange ends with 9000
		sw    uint16
		err   error
	}{{
		name: "6Cxx on the first answer: the original with Le = xx",
		cmd:  Command{INS: 0xB2, P1: 0x08, P2: 0x00, Ne: 0x14},
		steps: [][2]string{
			{"00 B2 08 00 14", "6C 06"},
			{"00 B2 08 00 06", "08 04 31 32 33 34 90 00"},
		},
		data: "08 04 31 32 33 34", sw: SWOK,
	}, {
		name: "data that came with 6Cxx is dropped",
		cmd:  Command{INS: 0xB2, P1: 0x08, P2: 0x00, Ne: 0x14},
		steps: [][2]string{
			{"00 B2 08 00 14", "EE EE 6C 02"},
			{"00 B2 08 00 02", "08 00 90 00"},
		},
		data: "08 00", sw: SWOK,
	}, {
		name: "61xx then 6Cxx on the GET RESPONSE: the GET RESPONSE with the new Le",
		cmd:  cardsCommands[6].cmd,
		steps: [][2]string{
			{fa, "61 10"},
			{"00 C0 00 00 10", "6C 08"},
			{"00 C0 00 00 08", "01 02 03 04 05 06 07 08 90 00"},
		},
		data: "01 02 03 04 05 06 07 08", sw: SWOK,
	}, {
		name: "data of earlier GET RESPONSEs kept, in order",
		cmd:  cardsCommands[6].cmd,
		steps: [][2]string{
			{fa, "61 10"},
			{"00 C0 00 00 10", "01 02 03 04 05 06 07 08 61 08"},
			{"00 C0 00 00 08", "6C 06"},
			{"00 C0 00 00 06", "09 0A 0B 0C 0D 0E 61 02"},
			{"00 C0 00 00 02", "0F 10 90 00"},
		},
		data: "01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10", sw: SWOK,
	}, {
		name: "6C00 on the GET RESPONSE asks for 256",
		cmd:  Command{INS: 0xB0, Ne: 0x80},
		steps: [][2]string{
			{"00 B0 00 00 80", "AA 61 00"},
			{"00 C0 00 00 00", "6C 00"},
			{"00 C0 00 00 00", strings.Repeat("BB ", 256) + "90 00"},
		},
		data: "AA " + strings.Repeat("BB ", 256), sw: SWOK,
	}, {
		name: "a status other than 9000 after the re-send is returned as it is",
		cmd:  Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256},
		steps: [][2]string{
			{"00 B2 01 04 00", "61 04"},
			{"00 C0 00 00 04", "6C 02"},
			{"00 C0 00 00 02", "01 02 62 82"},
		},
		data: "01 02", sw: 0x6282,
	}, {
		name: "6Cxx answering the re-sent GET RESPONSE: a loop",
		cmd:  cardsCommands[6].cmd,
		steps: [][2]string{
			{fa, "61 10"},
			{"00 C0 00 00 10", "6C 08"},
			{"00 C0 00 00 08", "6C 10"},
		},
		err: ErrLoop,
	}, {
		name: "6Cxx answering the re-sent original: a loop",
		cmd:  Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256},
		steps: [][2]string{
			{"00 B2 01 04 00", "6C 07"},
			{"00 B2 01 04 07", "6C 07"},
		},
		err: ErrLoop,
	}} {
		t.Run(c.name, func(t *testing.T) {
			s := &script{t: t, steps: c.steps}
			r, err := Exchange(s, c.cmd)
			s.done()
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("got %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || r.SW != c.sw || !bytes.Equal(r.Data, h(c.data)) {
				t.Fatalf("got % X %04X %v, want %s %04X", r.Data, r.SW, err, c.data, c.sw)
			}
		})
	}
}

// A card that keeps alternating 61xx and 6Cxx never answers the same command 6C twice in
// a row, so no ErrLoop: MaxRoundTrips ends it, with exactly that many commands sent.
func TestExchangeAlternating61And6C(t *testing.T) {
	var sent [][]byte
	card := transmitFunc(func(cmd []byte) ([]byte, error) {
		sent = append(sent, bytes.Clone(cmd))
		if len(sent)%2 == 1 {
			return h("AB 61 05"), nil
		}
		return h("6C 05"), nil
	})
	_, err := Exchange(card, Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256})
	if !errors.Is(err, ErrTooLong) || len(sent) != MaxRoundTrips {
		t.Fatalf("%d commands, %v", len(sent), err)
	}
	// Only the first command is the original; every other is a GET RESPONSE.
	for i, cmd := range sent[1:] {
		if !bytes.Equal(cmd, h("00 C0 00 00 05")) {
			t.Fatalf("command %d: % X", i+2, cmd)
		}
	}
}

func TestExchangeBounds(t *testing.T) {
	endless := transmitFunc(func([]byte) ([]byte, error) { return h("61 00"), nil })
	if _, err := Exchange(endless, Command{INS: 0xB0, Ne: 256}); !errors.Is(err, ErrTooLong) {
		t.Fatalf("endless 61xx: %v", err)
	}
	n := 0
	chatty := transmitFunc(func([]byte) ([]byte, error) { n++; return h("61 01"), nil })
	if _, err := Exchange(chatty, Command{INS: 0xB0, Ne: 1}); !errors.Is(err, ErrTooLong) || n != MaxRoundTrips {
		t.Fatalf("%d commands, %v", n, err)
	}
	short := transmitFunc(func([]byte) ([]byte, error) { return nil, nil })
	if _, err := Exchange(short, Command{INS: 0xB2}); !errors.Is(err, ErrShortResponse) {
		t.Fatalf("0-byte answer: %v", err)
	}
	broken := transmitFunc(func([]byte) ([]byte, error) { return nil, errTransport })
	if _, err := Exchange(broken, Command{INS: 0xB2}); !errors.Is(err, errTransport) {
		t.Fatalf("transport error not wrapped: %v", err)
	}
	// A status word other than 9000 is the caller's to judge; Do makes it an error.
	nf := transmitFunc(func([]byte) ([]byte, error) { return h("6A 82"), nil })
	if r, err := Exchange(nf, Command{INS: 0xA4}); err != nil || r.SW != SWFileNotFound {
		t.Fatalf("%v %04X", err, r.SW)
	}
	if _, err := Do(nf, Command{INS: 0xA4}); !errors.Is(err, &StatusError{SW: SWFileNotFound}) {
		t.Fatalf("%v", err)
	}
}

type transmitFunc func([]byte) ([]byte, error)

func (f transmitFunc) Transmit(b []byte) ([]byte, error) { return f(b) }

func TestParseRecord(t *testing.T) {
	// CARDS.md: `00 B2 08 00 14` reads the RHC card number, AN18: tag 08, length 18.
	rec := append(h("08 12"), []byte("110101198001011234")...)
	v, err := ParseRecord(rec, 0x08, 18)
	if err != nil || string(v) != "110101198001011234" {
		t.Fatalf("%q %v", v, err)
	}
	for _, c := range []struct {
		in, problem string
	}{
		{"", "truncated"},
		{"08", "truncated"},
		{"08 03 31 32", "truncated"},
		{"08 01 31 32", "trailing bytes"},
		{"0C 01 31", "tag 0C"},
		{"08 13" + strings.Repeat(" 31", 19), "length 19 over 18"},
	} {
		_, err := ParseRecord(h(c.in), 0x08, 18)
		var re *RecordError
		if !errors.As(err, &re) || re.Problem != c.problem || re.Tag != 0x08 {
			t.Errorf("ParseRecord(%s): %v, want %s", c.in, err, c.problem)
		}
	}
	if v, err := ParseRecord(h("4E 00"), 0x4E, 20); err != nil || len(v) != 0 {
		t.Fatalf("empty record: %v", err)
	}
}

func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"C9 E7 BB E1 B1 A3 D5 CF", "社会保障"}, // the SSC DF name's GBK tail, CARDS.md
		{"D5 C5 C8 FD 00 00 00 00", "张三"},   // RHC: right-padded with 00
		{"C0 EE CB C4 20 20 20 20", "李四"},   // SSC: with 20
		{"C0 EE CB C4 20 00 20 00", "李四"},   // SSC: mixed
		{"33 2E 30 30", "3.00"},
		{"20 41 20 00", "A"},
		{"00 00 00", ""},
		{"FF FF FF FF", ""},
		{"", ""},
	} {
		got, err := Text(h(c.in))
		if err != nil || got != c.want {
			t.Errorf("Text(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"C9", "C9 20", "41 0A 42", "41 00 42", "FF 41", "41 7F", "81 30 81 30"} {
		if got, err := Text(h(in)); err == nil {
			t.Errorf("Text(%s) = %q, want an error", in, got)
		}
	}
	b, err := EncodeText("社会保障", 10, 0x00)
	if err != nil || !bytes.Equal(b, h("C9 E7 BB E1 B1 A3 D5 CF 00 00")) {
		t.Fatalf("% X %v", b, err)
	}
	if _, err := EncodeText("社会保障", 7, 0); err == nil {
		t.Fatal("overlong text accepted")
	}
}

func TestBCD(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"19 80 01 01", "19800101"}, // CARDS.md's example date
		{"44 01 00", "440100"},
		{"44 01 0F", "44010"},
		{"01", "01"},
		{"12 3F FF", "123"},
		{"FF FF", ""},
		{"00 00 00 00", ""},
	} {
		got, err := BCD(h(c.in))
		if err != nil || got != c.want {
			t.Errorf("BCD(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"1A", "F1", "12 F3", "A0", "1F 11"} {
		if got, err := BCD(h(in)); err == nil {
			t.Errorf("BCD(%s) = %q, want an error", in, got)
		}
	}
	b, err := EncodeBCD("19800101", 4)
	if err != nil || !bytes.Equal(b, h("19 80 01 01")) {
		t.Fatalf("% X %v", b, err)
	}
	if b, _ = EncodeBCD("123", 3); !bytes.Equal(b, h("12 3F FF")) {
		t.Fatalf("% X", b)
	}
}
