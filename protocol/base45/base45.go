// Package base45 implements Base45 as specified by RFC 9285, the text encoding of
// EHC1 codes (CODES.md, EHC1 offline dynamic code, "Text form").
//
// Every two input bytes become three characters of a 45-character alphabet that a
// QR code's alphanumeric mode stores efficiently; a trailing odd byte becomes two.
// The encoding is canonical: each valid encoded string decodes to exactly one byte
// string, and encoding that byte string gives the same text back (up to letter case).
//
// The decoder accepts lowercase letters as their uppercase equivalents, because a
// keyboard-wedge scanner with Caps Lock on inverts case, and rejects every character
// outside the alphabet, a length of 1 modulo 3, and groups whose value is out of
// range. Work is linear in the input and the output is at most 2/3 of its length;
// the functions are pure and safe for concurrent use.
package base45

import (
	"slices"
	"strconv"
)

// alphabet is RFC 9285 section 4, Table 1, in value order.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

const invalid = 0xff

// decodeMap maps a character to its value, or invalid. It is built once and never
// written afterwards.
var decodeMap = func() (m [256]byte) {
	for i := range m {
		m[i] = invalid
	}
	for i := 0; i < len(alphabet); i++ {
		m[alphabet[i]] = byte(i)
		if c := alphabet[i]; 'A' <= c && c <= 'Z' {
			m[c+'a'-'A'] = byte(i)
		}
	}
	return m
}()

// CorruptInputError is the offset in the encoded input of the first character that
// makes it invalid: a character outside the alphabet, the start of a group whose
// value is out of range (a triple above 65535, a trailing pair above 255), or the
// lone last character of an input whose length is 1 modulo 3.
type CorruptInputError int64

func (e CorruptInputError) Error() string {
	return "illegal base45 data at input byte " + strconv.FormatInt(int64(e), 10)
}

// EncodedLen returns the length of the Base45 encoding of n bytes.
func EncodedLen(n int) int { return n/2*3 + n%2*2 }

// DecodedLen returns the length of the bytes an encoding of n characters decodes to.
// For n%3 == 1, which is never a valid length, it counts only the complete groups.
func DecodedLen(n int) int { return n/3*2 + n%3/2 }

// Encode returns the Base45 encoding of src.
func Encode(src []byte) string {
	buf := make([]byte, EncodedLen(len(src)))
	encode(buf, src)
	return string(buf)
}

// AppendEncode appends the Base45 encoding of src to dst and returns the extended slice.
func AppendEncode(dst, src []byte) []byte {
	n := EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}

// encode writes the encoding of src to dst, which is exactly EncodedLen(len(src)) long.
func encode(dst, src []byte) {
	for len(src) >= 2 && len(dst) >= 3 {
		v := uint(src[0])<<8 | uint(src[1])
		dst[0], dst[1], dst[2] = alphabet[v%45], alphabet[v/45%45], alphabet[v/2025]
		src, dst = src[2:], dst[3:]
	}
	if len(src) == 1 && len(dst) >= 2 {
		v := uint(src[0])
		dst[0], dst[1] = alphabet[v%45], alphabet[v/45]
	}
}

// Decode returns the bytes that the Base45 text s represents. On corrupt input it
// returns the bytes decoded before the corrupt group and a CorruptInputError.
func Decode(s []byte) ([]byte, error) {
	return AppendDecode(make([]byte, 0, DecodedLen(len(s))), s)
}

// AppendDecode appends the bytes that the Base45 text src represents to dst and returns
// the extended slice. On corrupt input it returns dst extended by the bytes decoded
// before the corrupt group, and a CorruptInputError.
func AppendDecode(dst, src []byte) ([]byte, error) {
	dst = slices.Grow(dst, DecodedLen(len(src)))
	i := 0
	for ; len(src)-i >= 3; i += 3 {
		c, d, e := decodeMap[src[i]], decodeMap[src[i+1]], decodeMap[src[i+2]]
		switch {
		case c == invalid:
			return dst, CorruptInputError(i)
		case d == invalid:
			return dst, CorruptInputError(i + 1)
		case e == invalid:
			return dst, CorruptInputError(i + 2)
		}
		v := uint(c) + uint(d)*45 + uint(e)*2025
		if v > 0xffff {
			return dst, CorruptInputError(i)
		}
		dst = append(dst, byte(v>>8), byte(v))
	}
	switch len(src) - i {
	case 1:
		// Whether or not the character is in the alphabet, it is the first
		// place the input goes wrong: no group has one character.
		return dst, CorruptInputError(i)
	case 2:
		c, d := decodeMap[src[i]], decodeMap[src[i+1]]
		switch {
		case c == invalid:
			return dst, CorruptInputError(i)
		case d == invalid:
			return dst, CorruptInputError(i + 1)
		}
		v := uint(c) + uint(d)*45
		if v > 0xff {
			return dst, CorruptInputError(i)
		}
		dst = append(dst, byte(v))
	}
	return dst, nil
}
