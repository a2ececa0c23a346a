package ga467

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
)

// Preamble starts every frame, in both directions.
const Preamble = "\xAA\xAA\xAA\x96\x69"

// Frame sizes.
const (
	PreambleLen = len(Preamble)
	HeaderLen   = PreambleLen + 2 // preamble and LEN
	// MinLen is the smallest LEN: a command with no data (CMD PARA CHK). An answer is at
	// least 4 (SW1 SW2 SW3 CHK); ParseAnswer checks that.
	MinLen = 3
	// MaxLen is the largest LEN: the answer to a read of text and photo (SW1 SW2 SW3,
	// two lengths, text, photo, CHK). Nothing this package sends asks for more, so a LEN
	// above it can only be noise.
	MaxLen   = 3 + 4 + TextLen + MaxPhotoLen + 1
	MaxFrame = HeaderLen + MaxLen // 1,295 bytes
)

// Commands (CMD, PARA) of CARDS.md.
const (
	CmdCard    = 0x20 // card presence: find, select
	ParaFind   = 0x01
	ParaSelect = 0x02
	CmdRead    = 0x30
	ParaRead   = 0x01 // text and photo
)

// Host frames, byte for byte, as CARDS.md gives them. They are strings so that nobody can
// change them; write []byte(ga467.FindCard). TestSpecFrames derives each from
// Command.AppendBinary.
const (
	FindCard   = Preamble + "\x00\x03\x20\x01\x22"
	SelectCard = Preamble + "\x00\x03\x20\x02\x21"
	ReadCard   = Preamble + "\x00\x03\x30\x01\x32"
)

// Answer statuses (SW3).
const (
	StatusOK           = 0x90
	StatusCardFound    = 0x9F
	StatusFindFailed   = 0x80 // no card in the field
	StatusSelectFailed = 0x81
	StatusReadFailed   = 0x41
	StatusBadChecksum  = 0x10 // the reader got a command with a wrong CHK
)

// Stable reason codes for statuses that are not a success; see StatusReason.
const (
	ReasonNoCard          = "no_card"
	ReasonSelectFailed    = "select_failed"
	ReasonReadFailed      = "read_failed"
	ReasonCommandChecksum = "command_checksum"
	ReasonReaderError     = "reader_error"
)

// StatusReason is the reason code of an answer status: "" for StatusOK and
// StatusCardFound, "reader_error" for a status CARDS.md does not name (the caller reports
// the code itself beside it).
func StatusReason(sw3 byte) string {
	switch sw3 {
	case StatusOK, StatusCardFound:
		return ""
	case StatusFindFailed:
		return ReasonNoCard
	case StatusSelectFailed:
		return ReasonSelectFailed
	case StatusReadFailed:
		return ReasonReadFailed
	case StatusBadChecksum:
		return ReasonCommandChecksum
	}
	return ReasonReaderError
}

// Checksum is the CHK of a frame: the XOR of p, which runs from LEN to the byte before CHK.
func Checksum(p []byte) byte {
	var x byte
	for _, b := range p {
		x ^= b
	}
	return x
}

// ErrShort means the bytes end before the frame their LEN announces (or before LEN).
var ErrShort = errors.New("ga467: frame incomplete")

// ErrNoPreamble means the bytes do not start with Preamble.
var ErrNoPreamble = errors.New("ga467: no preamble")

// LengthError is a LEN outside MinLen..MaxLen: read from the wire, or that of a body
// being encoded.
type LengthError int

func (e LengthError) Error() string {
	return "ga467: LEN " + strconv.Itoa(int(e)) + " outside " + strconv.Itoa(MinLen) + ".." + strconv.Itoa(MaxLen)
}

// ChecksumError is a frame whose CHK does not match its bytes.
type ChecksumError struct {
	Got, Want byte
}

func (e ChecksumError) Error() string {
	return "ga467: CHK " + hex8(e.Got) + ", want " + hex8(e.Want)
}

func hex8(b byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{'0', 'x', digits[b>>4], digits[b&0xF]})
}

// AppendFrame appends the frame carrying body (CMD PARA DATA or SW1 SW2 SW3 DATA) to b:
// preamble, LEN, body, CHK.
func AppendFrame(b, body []byte) ([]byte, error) {
	return appendBody(b, body, nil)
}

// ParseFrame decodes the frame at the start of b and returns its body with the number of
// bytes the frame occupies. The body aliases b (capped, so appending to it never
// overwrites b). Errors are ErrNoPreamble, ErrShort, a LengthError or a ChecksumError.
func ParseFrame(b []byte) (body []byte, n int, err error) {
	if len(b) < PreambleLen {
		if !bytes.HasPrefix([]byte(Preamble), b) {
			return nil, 0, ErrNoPreamble
		}
		return nil, 0, ErrShort
	}
	if string(b[:PreambleLen]) != Preamble {
		return nil, 0, ErrNoPreamble
	}
	if len(b) < HeaderLen {
		return nil, 0, ErrShort
	}
	l := int(binary.BigEndian.Uint16(b[PreambleLen:]))
	if l < MinLen || l > MaxLen {
		return nil, 0, LengthError(l)
	}
	n = HeaderLen + l
	if len(b) < n {
		return nil, 0, ErrShort
	}
	if got, want := b[n-1], Checksum(b[PreambleLen:n-1]); got != want {
		return nil, 0, ChecksumError{Got: got, Want: want}
	}
	return b[HeaderLen : n-1 : n-1], n, nil
}

// Command is a host command: CMD, PARA and optional data.
type Command struct {
	Cmd, Para byte
	Data      []byte
}

// ErrBodyShort is a frame body too short for a command (2 bytes) or an answer (3).
var ErrBodyShort = errors.New("ga467: frame body too short")

// ParseCommand reads a command from a frame body (ParseFrame, or a Decoder's EventFrame).
// Data aliases body.
func ParseCommand(body []byte) (Command, error) {
	if len(body) < 2 {
		return Command{}, ErrBodyShort
	}
	return Command{Cmd: body[0], Para: body[1], Data: body[2:len(body):len(body)]}, nil
}

// AppendBinary appends the command's frame to b (encoding.BinaryAppender).
func (c Command) AppendBinary(b []byte) ([]byte, error) {
	return appendBody(b, []byte{c.Cmd, c.Para}, c.Data)
}

// Name is "find", "select" or "read" for the commands of CARDS.md, else "".
func (c Command) Name() string {
	switch {
	case c.Cmd == CmdCard && c.Para == ParaFind:
		return "find"
	case c.Cmd == CmdCard && c.Para == ParaSelect:
		return "select"
	case c.Cmd == CmdRead && c.Para == ParaRead:
		return "read"
	}
	return ""
}

// Answer is a reader's answer: the three status bytes and optional data. SW3 is the one
// that says what happened; SW1 and SW2 are 00 00 on every reader CARDS.md describes.
type Answer struct {
	SW1, SW2, SW3 byte
	Data          []byte
}

// ParseAnswer reads an answer from a frame body. Data aliases body.
func ParseAnswer(body []byte) (Answer, error) {
	if len(body) < 3 {
		return Answer{}, ErrBodyShort
	}
	return Answer{SW1: body[0], SW2: body[1], SW3: body[2], Data: body[3:len(body):len(body)]}, nil
}

// AppendBinary appends the answer's frame to b (encoding.BinaryAppender).
func (a Answer) AppendBinary(b []byte) ([]byte, error) {
	return appendBody(b, []byte{a.SW1, a.SW2, a.SW3}, a.Data)
}

// appendBody is AppendFrame for a body given as a head and data, without joining them
// first: a read answer is over a kilobyte.
func appendBody(b, head, data []byte) ([]byte, error) {
	n := len(head) + len(data) + 1
	if n < MinLen || n > MaxLen {
		return b, LengthError(n)
	}
	b = append(b, Preamble...)
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, head...)
	b = append(b, data...)
	return append(b, Checksum(b[start:])), nil
}
