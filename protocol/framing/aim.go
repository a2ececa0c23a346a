package framing

import (
	"encoding/hex"
	"strings"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

// AIMLen is the length of an AIM symbology identifier: "]", a code character, a modifier
// (ISO/IEC 15424).
const AIMLen = 3

// IsAIM reports whether s starts with an AIM identifier. The code character is a letter
// and the modifier a letter or digit; anything else after "]" is scan data.
func IsAIM(s []byte) bool {
	return len(s) >= AIMLen && s[0] == ']' && isLetter(s[1]) && (isLetter(s[2]) || '0' <= s[2] && s[2] <= '9')
}

func isLetter(c byte) bool { return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' }

// ssiAIMPrefix marks an Output.AIM that is an SSI barcode type, not an AIM identifier:
// SSI scanners report the symbology as a type byte, so an ssi scan without an AIM
// identifier in its data carries "ssi:" and the type in two upper-case hex digits.
const ssiAIMPrefix = "ssi:"

func ssiAIM(t byte) string {
	const digits = "0123456789ABCDEF"
	return ssiAIMPrefix + string([]byte{digits[t>>4], digits[t&0xF]})
}

// Symbology names the symbology of an Output.AIM: an AIM identifier ("]Q1" → "qr",
// "]d1" → "datamatrix", "]C0" → "code128", "]E0" → "ean", "]L0" → "pdf417") or an SSI
// barcode type ("ssi:1C" → "qr"). It returns "" for anything it does not know.
func Symbology(aim string) string {
	if t, ok := strings.CutPrefix(aim, ssiAIMPrefix); ok {
		b, err := hex.DecodeString(t)
		if err != nil || len(b) != 1 {
			return ""
		}
		return ssi.TypeName(b[0])
	}
	if len(aim) < 2 || aim[0] != ']' {
		return ""
	}
	switch aim[1] {
	case 'A':
		return "code39"
	case 'C':
		return "code128"
	case 'd':
		return "datamatrix"
	case 'E':
		return "ean" // EAN/UPC
	case 'e':
		return "gs1-databar"
	case 'F':
		return "codabar"
	case 'G':
		return "code93"
	case 'H':
		return "code11"
	case 'I':
		return "itf"
	case 'L':
		return "pdf417"
	case 'M':
		return "msi"
	case 'Q':
		return "qr"
	case 'z':
		return "aztec"
	}
	return ""
}
