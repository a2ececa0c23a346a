package apdu

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// RecordError says what is wrong with a record or a value, and where. It never carries
// the value itself: records hold personal data.
type RecordError struct {
	Tag     byte   // tag of the record (the expected one when the card sent another)
	Offset  int    // offset in the answer or value where the problem is
	Problem string // "truncated", "trailing bytes", "tag 0C", "length 40 over 30", "bad text", "bad BCD"
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("apdu: record %02X: %s at byte %d", e.Tag, e.Problem, e.Offset)
}

// ParseRecord checks that b, the answer to a READ RECORD, is exactly one record
// `tag(1) | length(1) | value` with the expected tag and a length of at most max, and
// returns the value (aliasing b). A record longer than the item it should hold, one
// cut short, or one followed by anything, is an error: CARDS.md reads every item by its
// own record and parses only that record.
func ParseRecord(b []byte, tag byte, max int) ([]byte, error) {
	switch {
	case len(b) < 2:
		return nil, &RecordError{Tag: tag, Offset: len(b), Problem: "truncated"}
	case b[0] != tag:
		return nil, &RecordError{Tag: tag, Problem: fmt.Sprintf("tag %02X", b[0])}
	case int(b[1]) > max:
		return nil, &RecordError{Tag: tag, Offset: 1, Problem: fmt.Sprintf("length %d over %d", b[1], max)}
	case len(b) < 2+int(b[1]):
		return nil, &RecordError{Tag: tag, Offset: len(b), Problem: "truncated"}
	case len(b) > 2+int(b[1]):
		return nil, &RecordError{Tag: tag, Offset: 2 + int(b[1]), Problem: "trailing bytes"}
	}
	return b[2:], nil
}

// unwritten reports a value a card never wrote: all 00 or all FF.
func unwritten(b []byte) bool { return all(b, 0x00) || all(b, 0xFF) }

func all(b []byte, c byte) bool {
	for _, x := range b {
		if x != c {
			return false
		}
	}
	return true
}

// Text decodes an AN value: GBK (GB 2312 is a subset), right-padded with 00 (RHC) or 20
// (SSC). The padding is trimmed, then surrounding spaces. A field the card never wrote
// (all 00 or all FF) is "". A byte sequence that is not GBK, or a control character, is
// a *RecordError (with tag 0: the caller knows which record it decoded).
func Text(b []byte) (string, error) {
	if unwritten(b) {
		return "", nil
	}
	// 00, 20 and FF are never the second byte of a GBK character, so trimming them
	// cannot cut one in half. (bytes.TrimRight would read b as UTF-8: GBK is not.)
	for len(b) > 0 && (b[len(b)-1] == 0x00 || b[len(b)-1] == 0x20 || b[len(b)-1] == 0xFF) {
		b = b[:len(b)-1]
	}
	for i, c := range b {
		if c < 0x20 || c == 0x7F {
			return "", &RecordError{Offset: i, Problem: "bad text"}
		}
	}
	out, err := simplifiedchinese.GBK.NewDecoder().Bytes(b)
	if err != nil {
		return "", &RecordError{Problem: "bad text"}
	}
	// The decoder replaces what is not GBK with U+FFFD rather than failing; GBK has no
	// U+FFFD of its own, so one in the output is an invalid sequence.
	if i := bytes.IndexRune(out, utf8.RuneError); i >= 0 {
		return "", &RecordError{Offset: i, Problem: "bad text"}
	}
	return string(bytes.TrimSpace(out)), nil
}

// EncodeText is the inverse of Text for the virtual cards: GBK, right-padded to n bytes
// with pad. It fails when s has a character GBK lacks or does not fit.
func EncodeText(s string, n int, pad byte) ([]byte, error) {
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("apdu: %q is not GBK text", s)
	}
	if len(b) > n {
		return nil, fmt.Errorf("apdu: text of %d GBK bytes does not fit in %d", len(b), n)
	}
	return append(b, bytes.Repeat([]byte{pad}, n-len(b))...), nil
}

// BCD decodes a CN value: packed BCD, left-aligned, padded with F nibbles at the end
// ("19800101" is 19 80 01 01; "440100" in CN4 is 44 01 00 FF). A value the card never
// wrote (all 00 or all FF) is "". A nibble A to E, or a digit after an F, is a
// *RecordError.
func BCD(b []byte) (string, error) {
	if unwritten(b) {
		return "", nil
	}
	out := make([]byte, 0, 2*len(b))
	padded := false
	for i := 0; i < 2*len(b); i++ {
		n := b[i/2] >> 4
		if i%2 == 1 {
			n = b[i/2] & 0x0F
		}
		switch {
		case n == 0xF:
			padded = true
		case n > 9 || padded:
			return "", &RecordError{Offset: i / 2, Problem: "bad BCD"}
		default:
			out = append(out, '0'+n)
		}
	}
	return string(out), nil
}

// EncodeBCD is the inverse of BCD: digits packed into n bytes, padded with F nibbles.
func EncodeBCD(digits string, n int) ([]byte, error) {
	if len(digits) > 2*n {
		return nil, fmt.Errorf("apdu: %d digits do not fit in %d BCD bytes", len(digits), n)
	}
	b := bytes.Repeat([]byte{0xFF}, n)
	for i := 0; i < len(digits); i++ {
		d := digits[i]
		if d < '0' || d > '9' {
			return nil, fmt.Errorf("apdu: %q is not digits", digits)
		}
		if i%2 == 0 {
			b[i/2] = (d-'0')<<4 | 0x0F
		} else {
			b[i/2] = b[i/2]&0xF0 | (d - '0')
		}
	}
	return b, nil
}
