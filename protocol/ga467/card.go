package ga467

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Record sizes: the text is 256 bytes of fixed fields, the photo at most 1,024 bytes of WLT.
const (
	TextLen     = 256
	MaxPhotoLen = 1024
	lensLen     = 4 // text length, photo length: big-endian
)

// LongTerm is the valid-to date of a card that does not expire (长期), as the card
// writes it.
const LongTerm = "长期"

// IDCard is the record a reader returns for a second-generation resident ID card: every
// text field decoded to UTF-8 and trimmed, and the photo as the card stores it. All of
// it is personal data: never log it (protocol/mask has the helpers for a log line).
type IDCard struct {
	Name      string // at most 15 characters
	Gender    string // GB/T 2261.1: "1" male, "2" female ("0" unknown, "9" not stated)
	Ethnicity string // GB 3304 two-digit code, "01" Han
	BirthDate string // YYYYMMDD
	Address   string // at most 35 characters
	IDNumber  string // 18 characters: 17 digits and a digit or X
	Authority string // issuing authority (签发机关), at most 15 characters
	ValidFrom string // YYYYMMDD
	ValidTo   string // YYYYMMDD, or LongTerm
	Photo     []byte // WLT, opaque (a vendor library turns it into an image), at most 1,024 bytes
}

// field is one text field: byte offset and width in the 256-byte text.
type field struct {
	name     string
	off, len int
}

// The text's layout (CARDS.md). Bytes 220..255 are reserved on a resident ID card, except
// the card-type mark at 248.
var (
	fName      = field{"name", 0, 30}
	fGender    = field{"gender", 30, 2}
	fEthnicity = field{"ethnicity", 32, 4}
	fBirthDate = field{"birth_date", 36, 16}
	fAddress   = field{"address", 52, 70}
	fIDNumber  = field{"id_number", 122, 36}
	fAuthority = field{"authority", 158, 30}
	fValidFrom = field{"valid_from", 188, 16}
	fValidTo   = field{"valid_to", 204, 16}
	fCardType  = field{"card_type", 248, 2}
)

// DataError is a read answer's data that is not a well-formed ID card record. Field
// names the part ("length", "text_length", "photo_length", or a text field such as
// "birth_date"), never its content.
type DataError struct {
	Field string
}

func (e DataError) Error() string { return "ga467: malformed " + e.Field }

// UnsupportedError is a card the reader read, but not a resident ID card: its text
// carries a card-type mark ('I' a foreign permanent resident ID card, 'J' a Hong Kong,
// Macao or Taiwan residence card), and its fields are laid out otherwise.
type UnsupportedError struct {
	Type rune
}

func (e UnsupportedError) Error() string {
	return "ga467: unsupported card type " + strconv.QuoteRune(e.Type)
}

// ParseCard decodes the data of a successful read answer (Answer.Data after SW3 90):
// text length, photo length, text, photo. The photo is copied; nothing aliases data.
// Errors are DataError and UnsupportedError.
func ParseCard(data []byte) (IDCard, error) {
	if len(data) < lensLen {
		return IDCard{}, DataError{"length"}
	}
	tl, pl := int(binary.BigEndian.Uint16(data)), int(binary.BigEndian.Uint16(data[2:]))
	switch {
	case tl != TextLen:
		return IDCard{}, DataError{"text_length"}
	case pl > MaxPhotoLen:
		return IDCard{}, DataError{"photo_length"}
	case len(data) != lensLen+tl+pl:
		return IDCard{}, DataError{"length"}
	}
	text := data[lensLen : lensLen+tl]
	if t := textField(text, fCardType); len(t) == 2 && t[1] == 0 && t[0] >= 'A' && t[0] <= 'Z' {
		return IDCard{}, UnsupportedError{rune(t[0])}
	}
	var c IDCard
	for _, f := range []struct {
		f     field
		dst   *string
		check func(string) bool
	}{
		{fName, &c.Name, nonEmpty},
		{fGender, &c.Gender, isGender},
		{fEthnicity, &c.Ethnicity, isEthnicity},
		{fBirthDate, &c.BirthDate, isDate},
		{fAddress, &c.Address, func(string) bool { return true }},
		{fIDNumber, &c.IDNumber, isIDNumber},
		{fAuthority, &c.Authority, nonEmpty},
		{fValidFrom, &c.ValidFrom, isDate},
		{fValidTo, &c.ValidTo, func(s string) bool { return s == LongTerm || isDate(s) }},
	} {
		s, ok := decodeText(textField(text, f.f))
		if !ok || !f.check(s) {
			return IDCard{}, DataError{f.f.name}
		}
		*f.dst = s
	}
	// Lower-case x is how some readers write the check digit 10; GB 11643 says X.
	c.IDNumber = strings.ToUpper(c.IDNumber)
	c.Photo = bytes.Clone(data[lensLen+tl:])
	return c, nil
}

// textField returns the bytes of f (UCS-2 little-endian), trailing space and NUL
// padding removed.
func textField(text []byte, f field) []byte {
	b := text[f.off : f.off+f.len]
	for len(b) >= 2 && b[len(b)-1] == 0 && (b[len(b)-2] == ' ' || b[len(b)-2] == 0) {
		b = b[:len(b)-2]
	}
	return b
}

// decodeText turns UCS-2 into UTF-8, leading spaces removed. Cards hold no surrogates; a
// pair is decoded as UTF-16 would, but a lone one, or a control character, means the
// bytes are not text.
func decodeText(b []byte) (string, bool) {
	var sb strings.Builder
	sb.Grow(len(b) * 3 / 2)
	for i := 0; i < len(b); i += 2 {
		r := rune(binary.LittleEndian.Uint16(b[i:]))
		if utf16.IsSurrogate(r) {
			if i+4 > len(b) {
				return "", false
			}
			r = utf16.DecodeRune(r, rune(binary.LittleEndian.Uint16(b[i+2:])))
			if r == unicode.ReplacementChar {
				return "", false
			}
			i += 2
		}
		if unicode.IsControl(r) {
			return "", false
		}
		sb.WriteRune(r)
	}
	return strings.TrimLeft(sb.String(), " "), true
}

func nonEmpty(s string) bool { return s != "" }

func isGender(s string) bool { return s == "0" || s == "1" || s == "2" || s == "9" }

func isEthnicity(s string) bool { return len(s) == 2 && digits(s) }

// isDate checks the form of YYYYMMDD, not the calendar: a card's dates are the card's.
func isDate(s string) bool {
	if len(s) != 8 || !digits(s) {
		return false
	}
	m, d := (s[4]-'0')*10+s[5]-'0', (s[6]-'0')*10+s[7]-'0'
	return m >= 1 && m <= 12 && d >= 1 && d <= 31
}

// isIDNumber checks the form of a GB 11643 citizen identity number. The check digit is
// the card's business: a card holds whatever number was issued.
func isIDNumber(s string) bool {
	if len(s) != 18 || !digits(s[:17]) {
		return false
	}
	c := s[17]
	return c >= '0' && c <= '9' || c == 'X' || c == 'x'
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// AppendBinary appends the data of a read answer for c to b: the two lengths, the text
// with every field space-padded, and the photo. It is what a reader sends, for virtual
// readers and tests. A field too long for its width, or not valid UTF-8, is a DataError
// naming the field. A character outside the Basic Multilingual Plane, which UCS-2 cannot
// carry, is written as a UTF-16 surrogate pair, as ParseCard reads it.
func (c IDCard) AppendBinary(b []byte) ([]byte, error) {
	if len(c.Photo) > MaxPhotoLen {
		return b, DataError{"photo_length"}
	}
	var text [TextLen]byte
	for i := 0; i < TextLen; i += 2 {
		text[i] = ' '
	}
	for _, f := range []struct {
		f field
		s string
	}{
		{fName, c.Name}, {fGender, c.Gender}, {fEthnicity, c.Ethnicity}, {fBirthDate, c.BirthDate},
		{fAddress, c.Address}, {fIDNumber, c.IDNumber}, {fAuthority, c.Authority},
		{fValidFrom, c.ValidFrom}, {fValidTo, c.ValidTo},
	} {
		units := utf16.Encode([]rune(f.s))
		if 2*len(units) > f.f.len || strings.ContainsRune(f.s, utf8.RuneError) {
			return b, DataError{f.f.name}
		}
		for i, u := range units {
			binary.LittleEndian.PutUint16(text[f.f.off+2*i:], u)
		}
	}
	b = binary.BigEndian.AppendUint16(b, TextLen)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Photo)))
	b = append(b, text[:]...)
	return append(b, c.Photo...), nil
}

// ReadAnswer is the reader's answer frame to ReadCard for c: what a reader puts on the
// wire, 1,295 bytes with a full photo.
func (c IDCard) ReadAnswer() ([]byte, error) {
	data, err := c.AppendBinary(make([]byte, 0, lensLen+TextLen+len(c.Photo)))
	if err != nil {
		return nil, err
	}
	return Answer{SW3: StatusOK, Data: data}.AppendBinary(make([]byte, 0, MaxFrame))
}
