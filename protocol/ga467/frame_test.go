package ga467

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/hextest"
)

// unhex turns the spaced hex of CARDS.md into bytes.
var unhex = hextest.Decode

// The host frames of CARDS.md, byte for byte, from the constants and from the encoder.
func TestSpecCommands(t *testing.T) {
	for _, tc := range []struct {
		name, wire string
		constant   string
		cmd        Command
	}{
		{"find", "AA AA AA 96 69 00 03 20 01 22", FindCard, Command{Cmd: CmdCard, Para: ParaFind}},
		{"select", "AA AA AA 96 69 00 03 20 02 21", SelectCard, Command{Cmd: CmdCard, Para: ParaSelect}},
		{"read", "AA AA AA 96 69 00 03 30 01 32", ReadCard, Command{Cmd: CmdRead, Para: ParaRead}},
	} {
		want := unhex(t, tc.wire)
		if !bytes.Equal([]byte(tc.constant), want) {
			t.Errorf("%s constant % X, want % X", tc.name, tc.constant, want)
		}
		got, err := tc.cmd.AppendBinary(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s encoded % X, %v; want % X", tc.name, got, err, want)
		}
		body, n, err := ParseFrame(want)
		if err != nil || n != len(want) {
			t.Fatalf("%s: ParseFrame: n %d, %v", tc.name, n, err)
		}
		c, err := ParseCommand(body)
		if err != nil || c.Cmd != tc.cmd.Cmd || c.Para != tc.cmd.Para || len(c.Data) != 0 || c.Name() != tc.name {
			t.Errorf("%s: ParseCommand %+v (%q), %v", tc.name, c, c.Name(), err)
		}
	}
}

// The reader answers of CARDS.md decode to the status and data the table gives.
func TestSpecAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, wire string
		sw3        byte
		data       int
		reason     string
	}{
		{"card found", "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97", StatusCardFound, 4, ""},
		{"no card", "AA AA AA 96 69 00 04 00 00 80 84", StatusFindFailed, 0, ReasonNoCard},
		{"selected", "AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C", StatusOK, 8, ""},
		{"select failed", "AA AA AA 96 69 00 04 00 00 81 85", StatusSelectFailed, 0, ReasonSelectFailed},
		{"read failed", "AA AA AA 96 69 00 04 00 00 41 45", StatusReadFailed, 0, ReasonReadFailed},
	} {
		wire := unhex(t, tc.wire)
		body, n, err := ParseFrame(wire)
		if err != nil || n != len(wire) {
			t.Fatalf("%s: ParseFrame: n %d, %v", tc.name, n, err)
		}
		a, err := ParseAnswer(body)
		if err != nil || a.SW1 != 0 || a.SW2 != 0 || a.SW3 != tc.sw3 || len(a.Data) != tc.data {
			t.Errorf("%s: %+v, %v", tc.name, a, err)
		}
		if r := StatusReason(a.SW3); r != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.name, r, tc.reason)
		}
		again, err := a.AppendBinary(nil)
		if err != nil || !bytes.Equal(again, wire) {
			t.Errorf("%s: re-encoded % X, %v", tc.name, again, err)
		}
	}
	if r := StatusReason(0x33); r != ReasonReaderError {
		t.Errorf("unknown status: reason %q", r)
	}
	if r := StatusReason(StatusBadChecksum); r != ReasonCommandChecksum {
		t.Errorf("status 10: reason %q", r)
	}
}

// The read answer of CARDS.md: its header byte for byte, 1,295 bytes in all, and the
// record back exactly.
func TestSpecReadAnswer(t *testing.T) {
	c := testCard()
	wire, err := c.ReadAnswer()
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) != 1295 || MaxFrame != 1295 {
		t.Fatalf("read answer is %d bytes, MaxFrame %d; want 1295", len(wire), MaxFrame)
	}
	if head := unhex(t, "AA AA AA 96 69 05 08 00 00 90 01 00 04 00"); !bytes.HasPrefix(wire, head) {
		t.Fatalf("read answer starts % X, want % X", wire[:len(head)], head)
	}
	if wire[len(wire)-1] != Checksum(wire[PreambleLen:len(wire)-1]) {
		t.Fatal("CHK")
	}
	body, n, err := ParseFrame(wire)
	if err != nil || n != len(wire) {
		t.Fatalf("ParseFrame: n %d, %v", n, err)
	}
	a, err := ParseAnswer(body)
	if err != nil || a.SW3 != StatusOK {
		t.Fatalf("answer %02X, %v", a.SW3, err)
	}
	got, err := ParseCard(a.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !equalCard(got, c) {
		t.Fatalf("decoded %+v\nwant %+v", got, c)
	}
}

func TestParseFrameErrors(t *testing.T) {
	good := []byte(FindCard)
	badCHK := bytes.Clone(good)
	badCHK[len(badCHK)-1] ^= 0x40
	long := unhex(t, "AA AA AA 96 69 05 09 00")
	tiny := unhex(t, "AA AA AA 96 69 00 02 00")
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"partial preamble", good[:3], ErrShort},
		{"no LEN", good[:6], ErrShort},
		{"no CHK", good[:len(good)-1], ErrShort},
		{"junk", []byte{0xAA, 0x00}, ErrNoPreamble},
		{"junk long", append([]byte{0}, good...), ErrNoPreamble},
		{"LEN beyond the bound", long, LengthError(0x0509)},
		{"LEN too small", tiny, LengthError(2)},
		{"CHK", badCHK, ChecksumError{Got: 0x22 ^ 0x40, Want: 0x22}},
	} {
		_, _, err := ParseFrame(tc.b)
		if !errors.Is(err, tc.want) && err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := AppendFrame(nil, make([]byte, MaxLen)); err != LengthError(MaxLen+1) {
		t.Errorf("oversized body: %v", err)
	}
	if _, err := AppendFrame(nil, []byte{1}); err != LengthError(2) {
		t.Errorf("short body: %v", err)
	}
	if _, err := ParseAnswer([]byte{0, 0}); err != ErrBodyShort {
		t.Errorf("short answer: %v", err)
	}
	if _, err := ParseCommand([]byte{0x20}); err != ErrBodyShort {
		t.Errorf("short command: %v", err)
	}
}

// A body parsed out of a buffer cannot be appended to over the bytes that follow it.
func TestParseFrameCapsBody(t *testing.T) {
	b := append([]byte(SelectCard), FindCard...)
	body, n, err := ParseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(body, 0xFF, 0xFF, 0xFF)
	if !bytes.Equal(b[n:], []byte(FindCard)) {
		t.Fatal("appending to the body overwrote the next frame")
	}
}
