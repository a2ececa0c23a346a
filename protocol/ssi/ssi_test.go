package ssi

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/hextest"
)

// hx decodes space-separated hex, the way SCANNERS.md writes bytes.
var hx = hextest.Decode

func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// specSegments is the multipacket test vector of SCANNERS.md: 500 × 'Z' in a QR code.
func specSegments(t testing.TB) [][]byte {
	return [][]byte{
		cat(hx(t, "FF 73 02 00 00 F3 00 00 01 F7 1C 01 01 F4"), rep(0x5A, 241), hx(t, "A6 D5")),
		cat(hx(t, "FF 73 00 00 01"), rep(0x5A, 250), hx(t, "A6 A9")),
		cat(hx(t, "0E 73 00 00 02"), rep(0x5A, 9), hx(t, "FC 53")),
	}
}

func TestChecksumSpecVector(t *testing.T) {
	for i, seg := range specSegments(t) {
		body, ck := seg[:len(seg)-2], seg[len(seg)-2:]
		if got := Checksum(body); got != uint16(ck[0])<<8|uint16(ck[1]) {
			t.Errorf("segment %d: Checksum = %04X, spec says % X", i, got, ck)
		}
		if int(seg[0]) != len(body) {
			t.Errorf("segment %d: length byte %d, body %d bytes", i, seg[0], len(body))
		}
	}
}

func TestChecksumZeroSum(t *testing.T) {
	// 0x10000 − 0 does not fit 16 bits: it wraps to 0.
	if got := Checksum([]byte{0, 0, 0, 0}); got != 0 {
		t.Errorf("Checksum(zeros) = %04X, want 0000", got)
	}
}

func TestHostPackets(t *testing.T) {
	for _, tc := range []struct {
		name, pkt, spec string
		p               Packet
	}{
		{"ACK", Ack, "04 D0 04 00 FF 28", Packet{Opcode: OpAck, Source: SourceHost}},
		{"NAK resend", Nak, "05 D1 04 00 01 FF 25", Packet{Opcode: OpNak, Source: SourceHost, Data: []byte{CauseResend}}},
		{"MULTIPACKET_ACK", MultipacketAck, "04 74 04 00 FF 84", Packet{Opcode: OpMultipacketAck, Source: SourceHost}},
		{"START_SESSION", StartSession, "04 E4 04 00 FF 14", Packet{Opcode: OpStartSession, Source: SourceHost}},
		{"STOP_SESSION", StopSession, "04 E5 04 00 FF 13", Packet{Opcode: OpStopSession, Source: SourceHost}},
	} {
		want := hx(t, tc.spec)
		if !bytes.Equal([]byte(tc.pkt), want) {
			t.Errorf("%s constant = % X, want % X", tc.name, tc.pkt, want)
		}
		got, err := tc.p.MarshalBinary()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s encoded = % X, %v; want % X", tc.name, got, err, want)
		}
		p, n, err := Parse(want)
		if err != nil || n != len(want) || p.Opcode != tc.p.Opcode || p.Source != SourceHost || !bytes.Equal(p.Data, tc.p.Data) {
			t.Errorf("%s parsed = %+v, %d, %v", tc.name, p, n, err)
		}
	}
}

func TestParse(t *testing.T) {
	ack := []byte(Ack)
	t.Run("trailing bytes are not consumed", func(t *testing.T) {
		p, n, err := Parse(cat(ack, []byte{0x99, 0x98}))
		if err != nil || n != 6 || p.Opcode != OpAck || len(p.Data) != 0 {
			t.Fatalf("Parse = %+v, %d, %v", p, n, err)
		}
	})
	t.Run("short", func(t *testing.T) {
		for i := range len(ack) {
			if _, _, err := Parse(ack[:i]); !errors.Is(err, ErrShort) {
				t.Errorf("Parse(% X) error = %v, want ErrShort", ack[:i], err)
			}
		}
	})
	t.Run("length below 4", func(t *testing.T) {
		var le LengthError
		_, _, err := Parse([]byte{3, 0xD0, 4, 0, 0xFF, 0x29})
		if !errors.As(err, &le) || le != 3 || err.Error() != "ssi: length 3 outside 4..255" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("checksum", func(t *testing.T) {
		bad := bytes.Clone(ack)
		bad[5] ^= 1
		var ce ChecksumError
		_, _, err := Parse(bad)
		if !errors.As(err, &ce) || ce.Want != 0xFF28 || ce.Got != 0xFF29 {
			t.Fatalf("err = %v", err)
		}
		if err.Error() != "ssi: checksum 0xFF29, want 0xFF28" {
			t.Errorf("message %q", err)
		}
	})
	t.Run("data is capped", func(t *testing.T) {
		b := cat(mustPacket(t, OpDecodeData, 0, TypeQR, 'A'), []byte{0xEE})
		p, _, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		_ = append(p.Data, 'X')
		if b[6] == 'X' {
			t.Error("appending to Data overwrote the checksum")
		}
	})
	t.Run("status bits other than the defined ones are kept", func(t *testing.T) {
		b := mustPacket(t, OpDecodeData, 0xA0, TypeQR, 'A')
		p, _, err := Parse(b)
		if err != nil || p.Status != 0xA0 {
			t.Fatalf("Parse = %+v, %v", p, err)
		}
	})
}

func TestAppendBinaryLimits(t *testing.T) {
	b, err := Packet{Opcode: OpDecodeData, Data: rep('A', MaxData)}.AppendBinary([]byte{0x42})
	if err != nil || len(b) != 1+MaxPacket || b[1] != MaxLen {
		t.Fatalf("max packet: len %d, err %v", len(b), err)
	}
	if _, _, err := Parse(b[1:]); err != nil {
		t.Errorf("max packet does not parse: %v", err)
	}
	var le LengthError
	if _, err := (Packet{Data: rep('A', MaxData+1)}).AppendBinary(nil); !errors.As(err, &le) || le != 256 {
		t.Errorf("oversized packet: err %v", err)
	}
}

func TestTypeName(t *testing.T) {
	for typ, want := range map[byte]string{0x1C: "qr", 0x2C: "microqr", 0x1B: "datamatrix", 0x11: "pdf417", 0x03: "code128", 0x00: "", 0xFF: ""} {
		if got := TypeName(typ); got != want {
			t.Errorf("TypeName(%02X) = %q, want %q", typ, got, want)
		}
	}
}

func mustPacket(t testing.TB, op, status byte, data ...byte) []byte {
	t.Helper()
	b, err := Packet{Opcode: op, Source: SourceScanner, Status: status, Data: data}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
