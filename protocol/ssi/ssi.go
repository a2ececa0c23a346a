// Package ssi encodes and decodes Zebra Simple Serial Interface packets and reassembles the
// scans a scanner sends in them (SCANNERS.md, Serial, "Zebra SSI").
//
// A packet is [len][opcode][source][status][data…][cksum hi][cksum lo]. len counts every
// byte but the checksum and lies in 4..255, so a packet is at most 257 bytes and carries at
// most 251 data bytes. The checksum is 0x10000 minus the sum of the bytes before it,
// big-endian. Everything here works on byte slices: no I/O, no clock, no goroutines, and a
// Framer's memory is bounded by its maximum scan plus two packets.
//
// This package imports nothing else of the project, so protocol/framing can build its
// "ssi" framing on top of Framer (framing.New with Type "ssi" is the usual way in).
package ssi

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Packet sizes.
const (
	MinLen    = 4                  // smallest length byte: a packet with no data
	MaxLen    = 255                // largest length byte
	MaxData   = MaxLen - headerLen // data bytes one packet can carry
	MaxPacket = MaxLen + ckLen     // largest packet on the wire, checksum included
	headerLen = 4                  // len, opcode, source, status
	ckLen     = 2                  // checksum, big-endian
)

// Opcodes (SCANNERS.md lists these; the rest of the protocol is not used by the agent).
const (
	OpMultipacket    = 0x73 // segment of a long scan; acknowledged with MultipacketAck
	OpMultipacketAck = 0x74
	OpParamSend      = 0xC6
	OpAck            = 0xD0
	OpNak            = 0xD1
	OpStartSession   = 0xE4 // start decode (trigger)
	OpStopSession    = 0xE5 // stop decode
	OpBeep           = 0xE6
	OpScanEnable     = 0xE9
	OpScanDisable    = 0xEA
	OpDecodeData     = 0xF3 // a scan: first data byte is the barcode type
)

// Message sources.
const (
	SourceScanner = 0x00
	SourceHost    = 0x04
)

// Status bits. Other bits are ignored, never rejected: real scanners set 0x20 on every
// single-packet DECODE_DATA and 0x80 on replies.
const (
	StatusRetransmit   = 1 << 0
	StatusContinuation = 1 << 1 // more packets of the same message follow
	StatusPermanent    = 1 << 3 // parameter change survives power-off
)

// NAK causes (first data byte of an OpNak packet).
const (
	CauseResend     = 0x01
	CauseBadContext = 0x02
	CauseDenied     = 0x06
)

// Host packets, byte for byte. They are strings so that nobody can change them; use
// []byte(ssi.Ack). TestHostPackets derives each from Packet.AppendBinary.
const (
	Ack            = "\x04\xD0\x04\x00\xFF\x28"     // CMD_ACK: 04 D0 04 00 FF 28
	Nak            = "\x05\xD1\x04\x00\x01\xFF\x25" // CMD_NAK, cause resend: 05 D1 04 00 01 FF 25
	MultipacketAck = "\x04\x74\x04\x00\xFF\x84"     // MULTIPACKET_ACK: 04 74 04 00 FF 84
	StartSession   = "\x04\xE4\x04\x00\xFF\x14"     // START_SESSION: 04 E4 04 00 FF 14
	StopSession    = "\x04\xE5\x04\x00\xFF\x13"     // STOP_SESSION: 04 E5 04 00 FF 13
)

// Barcode types (first data byte of DECODE_DATA) named in SCANNERS.md.
const (
	TypeCode128    = 0x03
	TypePDF417     = 0x11
	TypeDataMatrix = 0x1B
	TypeQR         = 0x1C
	TypeMicroQR    = 0x2C
)

// TypeName names a barcode type the way framing.Symbology names AIM identifiers ("qr",
// "datamatrix", …), or returns "" for a type SCANNERS.md does not list.
func TypeName(t byte) string {
	switch t {
	case TypeCode128:
		return "code128"
	case TypePDF417:
		return "pdf417"
	case TypeDataMatrix:
		return "datamatrix"
	case TypeQR:
		return "qr"
	case TypeMicroQR:
		return "microqr"
	}
	return ""
}

// Checksum is the SSI checksum of the bytes before it: 0x10000 minus their sum, modulo
// 0x10000.
func Checksum(p []byte) uint16 {
	var s uint16
	for _, b := range p {
		s += uint16(b)
	}
	return -s
}

// Packet is one SSI packet without its length and checksum, which are derived.
type Packet struct {
	Opcode byte
	Source byte
	Status byte
	Data   []byte // at most MaxData bytes
}

// ErrShort means the bytes end before the packet their length byte announces.
var ErrShort = errors.New("ssi: packet incomplete")

// LengthError is a packet length outside MinLen..MaxLen: a length byte read from the
// wire, or 4 + len(Data) of a packet being encoded.
type LengthError int

func (e LengthError) Error() string {
	return "ssi: length " + strconv.Itoa(int(e)) + " outside 4..255"
}

// ChecksumError is a packet whose checksum does not match its bytes.
type ChecksumError struct {
	Got, Want uint16
}

func (e ChecksumError) Error() string {
	return "ssi: checksum " + hex16(e.Got) + ", want " + hex16(e.Want)
}

func hex16(v uint16) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{'0', 'x', digits[v>>12], digits[v>>8&0xF], digits[v>>4&0xF], digits[v&0xF]})
}

// Parse decodes the packet at the start of b and returns it with the number of bytes it
// occupies. Data aliases b (capped, so appending to it never overwrites b). Errors are
// ErrShort, a LengthError or a ChecksumError.
func Parse(b []byte) (Packet, int, error) {
	if len(b) == 0 {
		return Packet{}, 0, ErrShort
	}
	n := int(b[0])
	if n < MinLen {
		return Packet{}, 0, LengthError(n)
	}
	if len(b) < n+ckLen {
		return Packet{}, 0, ErrShort
	}
	got, want := binary.BigEndian.Uint16(b[n:]), Checksum(b[:n])
	if got != want {
		return Packet{}, 0, ChecksumError{Got: got, Want: want}
	}
	return Packet{Opcode: b[1], Source: b[2], Status: b[3], Data: b[headerLen:n:n]}, n + ckLen, nil
}

// AppendBinary appends the packet's wire form, length and checksum included, to b
// (encoding.BinaryAppender).
func (p Packet) AppendBinary(b []byte) ([]byte, error) {
	n := headerLen + len(p.Data)
	if n > MaxLen {
		return b, LengthError(n)
	}
	start := len(b)
	b = append(b, byte(n), p.Opcode, p.Source, p.Status)
	b = append(b, p.Data...)
	return binary.BigEndian.AppendUint16(b, Checksum(b[start:])), nil
}

// MarshalBinary returns the packet's wire form (encoding.BinaryMarshaler).
func (p Packet) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, headerLen+len(p.Data)+ckLen))
}
