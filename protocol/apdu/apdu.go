// Package apdu encodes ISO 7816-4 command and response APDUs and runs one command
// exchange with a card the way CARDS.md ("Card detection") asks: a `61xx` answer is
// followed by GET RESPONSE (`00 C0 00 00 xx`), and the command a `6Cxx` answers is
// re-sent once with Le = xx. It also parses the cards' tag-length-value records and
// decodes their GBK text and packed-BCD values (CARDS.md, "Record format").
//
// Only short APDUs exist here (Lc ≤ 255, Ne ≤ 256): the cards of CARDS.md use nothing
// else, and an extended APDU from a card or a fuzzer is refused, never guessed at.
//
// Everything is a function over byte slices, without globals or I/O; Exchange reaches a
// card only through the Transmitter it is given, and its work is bounded: at most
// MaxRoundTrips commands and MaxData bytes of answer per exchange, whatever the card
// sends.
package apdu

import (
	"errors"
	"fmt"
	"strconv"
)

// Bounds of one Exchange. A card that keeps answering 61xx, or claims more data than
// any file of CARDS.md holds, is broken or hostile; the bound turns it into an error.
const (
	MaxRoundTrips = 16   // commands sent by one Exchange, GET RESPONSEs and re-sends included
	MaxData       = 4096 // answer bytes collected by one Exchange (an RHC photo is ≤ 3,072 in all)
)

// Status words named by CARDS.md and the cards it describes.
const (
	SWOK                     uint16 = 0x9000
	SWWrongLength            uint16 = 0x6700
	SWSecurityNotSatisfied   uint16 = 0x6982
	SWAuthBlocked            uint16 = 0x6983
	SWConditionsNotSatisfied uint16 = 0x6985
	SWFileNotFound           uint16 = 0x6A82
	SWRecordNotFound         uint16 = 0x6A83
	SWWrongP1P2              uint16 = 0x6A86
	SWDataNotFound           uint16 = 0x6A88
	SWINSNotSupported        uint16 = 0x6D00
	SWCLANotSupported        uint16 = 0x6E00
)

// Command is a short C-APDU.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte // command data; its length is Lc (0..255), none when empty
	Ne               int    // bytes expected in the answer: 0 means no Le field; 256 is sent as Le = 00
}

// Errors of the codecs. Each is wrapped with where it happened; test with errors.Is.
var (
	ErrShortResponse = errors.New("apdu: answer shorter than a status word")
	ErrExtended      = errors.New("apdu: extended-length APDU")
	ErrMalformed     = errors.New("apdu: malformed command")
	ErrTooLong       = errors.New("apdu: answer beyond the bound of one exchange")
	ErrLoop          = errors.New("apdu: 6Cxx answered the re-send after 6Cxx")
)

// Append appends the encoded command to b.
func (c Command) Append(b []byte) ([]byte, error) {
	if len(c.Data) > 255 {
		return b, fmt.Errorf("%w: %d data bytes", ErrExtended, len(c.Data))
	}
	if c.Ne < 0 || c.Ne > 256 {
		return b, fmt.Errorf("%w: Ne %d", ErrExtended, c.Ne)
	}
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Ne > 0 {
		b = append(b, byte(c.Ne)) // 256 wraps to 00, as ISO 7816-4 codes it
	}
	return b, nil
}

// Bytes is Append to a new slice.
func (c Command) Bytes() ([]byte, error) { return c.Append(make([]byte, 0, 5+len(c.Data)+1)) }

// ParseCommand decodes a short C-APDU (cases 1 to 4). The Data of the result aliases b.
//
// A 5-byte command is read as case 2 (Le), which is how a T=0 card reads it too.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
	case len(body) == 1: // case 2
		c.Ne = ne(body[0])
	case body[0] == 0:
		return Command{}, ErrExtended
	case len(body) == 1+int(body[0]): // case 3
		c.Data = body[1:]
	case len(body) == 2+int(body[0]): // case 4
		c.Data = body[1 : len(body)-1]
		c.Ne = ne(body[len(body)-1])
	default:
		return Command{}, fmt.Errorf("%w: Lc %d with %d body bytes", ErrMalformed, body[0], len(body))
	}
	return c, nil
}

func ne(le byte) int {
	if le == 0 {
		return 256
	}
	return int(le)
}

// Response is an R-APDU.
type Response struct {
	Data []byte
	SW   uint16
}

// SW1 and SW2 are the two status bytes.
func (r Response) SW1() byte { return byte(r.SW >> 8) }
func (r Response) SW2() byte { return byte(r.SW) }

// ParseResponse splits an answer into data and status word. The Data aliases b. An
// answer shorter than 2 bytes is ErrShortResponse: with pcscd, that is what the
// command in flight returns when the card is pulled (CARDS.md, "Failure handling").
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: %d bytes", ErrShortResponse, len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// StatusError is a status word other than 9000 where 9000 was needed.
type StatusError struct {
	INS byte   // instruction of the command that failed
	SW  uint16 // its status word
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("apdu: INS %02X answered %04X", e.INS, e.SW)
	if m := swText(e.SW); m != "" {
		s += " (" + m + ")"
	}
	return s
}

// Is makes errors.Is(err, &StatusError{SW: x}) match any instruction with status x.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.SW == e.SW && (t.INS == 0 || t.INS == e.INS)
}

// NotFound reports a "file, record or data not found" status: an optional item the card
// does not have, as opposed to a card that refuses.
func (e *StatusError) NotFound() bool {
	switch e.SW {
	case SWFileNotFound, SWRecordNotFound, SWDataNotFound:
		return true
	}
	return false
}

// Check returns nil for 9000 and a *StatusError for anything else.
func (r Response) Check(ins byte) error {
	if r.SW == SWOK {
		return nil
	}
	return &StatusError{INS: ins, SW: r.SW}
}

func swText(sw uint16) string {
	switch {
	case sw&0xFFF0 == 0x63C0:
		return strconv.Itoa(int(sw&0xF)) + " tries left"
	case sw&0xFF00 == 0x6100:
		return "more data"
	case sw&0xFF00 == 0x6C00:
		return "wrong Le"
	}
	switch sw {
	case 0x6281, 0x6282:
		return "warning, data may be incomplete"
	case 0x6300:
		return "authentication failed"
	case SWWrongLength:
		return "wrong length"
	case SWSecurityNotSatisfied:
		return "security status not satisfied"
	case SWAuthBlocked:
		return "authentication method blocked"
	case SWConditionsNotSatisfied:
		return "conditions of use not satisfied"
	case 0x6988:
		return "incorrect secure messaging data"
	case 0x6A81:
		return "function not supported"
	case SWFileNotFound:
		return "file not found"
	case SWRecordNotFound:
		return "record not found"
	case SWWrongP1P2:
		return "wrong P1-P2"
	case SWDataNotFound:
		return "referenced data not found"
	case 0x6B00:
		return "wrong parameters"
	case SWINSNotSupported:
		return "instruction not supported"
	case SWCLANotSupported:
		return "class not supported"
	case 0x6F00:
		return "no precise diagnosis"
	}
	return ""
}

// Transmitter sends one encoded C-APDU and returns the raw answer. A *scard.Card is one.
type Transmitter interface {
	Transmit(cmd []byte) ([]byte, error)
}

// Exchange sends c and returns the card's final answer: after `61xx` the data of as many
// GET RESPONSEs as the card announces is appended; after `6Cxx` the command that got it
// is re-sent with Le = xx — c itself, or the GET RESPONSE that the 6C answered, so that
// the data collected so far is kept and c is never sent twice once it has answered 61xx
// (the PSAM's 80 FA would encrypt again). The status word is returned as it is, 9000 or
// not: Do is Exchange that wants 9000. The error is a transport error of t (wrapped, so
// errors.As finds the reader's own error), ErrShortResponse, ErrLoop (a 6Cxx answering
// the re-sent command) or ErrTooLong (MaxRoundTrips or MaxData passed: a card that
// keeps alternating 61xx and 6Cxx ends here).
func Exchange(t Transmitter, c Command) (Response, error) {
	raw, err := c.Bytes()
	if err != nil {
		return Response{}, err
	}
	cur := c // the command raw encodes: c, or a GET RESPONSE
	var data []byte
	resent := false // raw is a re-send after 6Cxx
	for trips := 0; ; trips++ {
		if trips == MaxRoundTrips {
			return Response{}, fmt.Errorf("%w: INS %02X after %d commands", ErrTooLong, c.INS, trips)
		}
		ans, err := t.Transmit(raw)
		if err != nil {
			return Response{}, fmt.Errorf("apdu: INS %02X: %w", c.INS, err)
		}
		if len(ans) < 2 {
			return Response{}, fmt.Errorf("%w: INS %02X got %d bytes", ErrShortResponse, c.INS, len(ans))
		}
		r, _ := ParseResponse(ans)
		if r.SW1() == 0x6C {
			// What came with a 6Cxx is not part of the answer: the same command
			// with the right Le brings it again. A second 6Cxx in a row is a card
			// going in circles.
			if resent {
				return Response{}, fmt.Errorf("%w: INS %02X", ErrLoop, c.INS)
			}
			resent = true
			cur.Ne = ne(r.SW2())
			if raw, err = cur.Bytes(); err != nil {
				return Response{}, err
			}
			continue
		}
		resent = false
		if len(data)+len(r.Data) > MaxData {
			return Response{}, fmt.Errorf("%w: INS %02X, over %d bytes", ErrTooLong, c.INS, MaxData)
		}
		data = append(data, r.Data...)
		if r.SW1() != 0x61 {
			return Response{Data: data, SW: r.SW}, nil
		}
		cur = Command{CLA: 0x00, INS: 0xC0, Ne: ne(r.SW2())} // SW2 00 asks for 256, as Le 00 does
		if raw, err = cur.Bytes(); err != nil {
			return Response{}, err
		}
	}
}

// Do is Exchange that needs 9000: any other status word is a *StatusError.
func Do(t Transmitter, c Command) ([]byte, error) {
	r, err := Exchange(t, c)
	if err != nil {
		return nil, err
	}
	if err := r.Check(c.INS); err != nil {
		return nil, err
	}
	return r.Data, nil
}
