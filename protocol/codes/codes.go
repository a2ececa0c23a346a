// Package codes classifies a scanned payload (CODES.md, the first table: "Codes a
// terminal reads"), after the scanner's framing is stripped and before any decoding.
//
// Classify is pure and bounded: it reads at most MaxPayload bytes of input (a longer
// payload is rejected before it is looked at), the built-in rules are hand-written
// scans with no regular expression, and only the configured insurance patterns run a
// regexp. It never panics on any input.
package codes

import (
	"encoding/binary"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

// MaxPayload is the largest payload classified (CODES.md: "a scan over 4 KiB is
// rejected, reason too_long").
const MaxPayload = 4096

// Types, in the order Classify tries them.
const (
	TypeEHCOffline = "ehc_offline"
	TypeEHCOnline  = "ehc_online"
	TypePayment    = "payment"
	TypeInsurance  = "insurance"
	TypeUnknown    = "unknown"
)

// Payment schemes.
const (
	SchemeWeChat   = "wechat"
	SchemeAlipay   = "alipay"
	SchemeUnionPay = "unionpay"
)

// Reasons a payload is of TypeUnknown.
const (
	ReasonTooLong      = "too_long"     // over MaxPayload bytes
	ReasonBadBytes     = "bad_bytes"    // not UTF-8, or a control byte (< 0x20 or 0x7f)
	ReasonUnrecognised = "unrecognised" // well-formed text matching no rule
)

// Options configure Classify.
type Options struct {
	// Insurance are the configured medical-insurance e-voucher patterns. A payload is
	// insurance if any of them matches it with regexp's usual (unanchored) search, so a
	// pattern meant to cover the whole payload must say so with ^ and $. Nil entries
	// are skipped.
	Insurance []*regexp.Regexp
}

// Result is the classification of one payload.
type Result struct {
	Type   string // one of the Type constants
	Scheme string // payment only: one of the Scheme constants

	// Normalized is, for ehc_online, the uppercase hex, ":" and the digits (a
	// full-width colon becomes ":"), the form the platform resolves. It is empty for
	// every other type: there the payload itself is the code, and a copy of it (up to
	// MaxPayload bytes, per scan) would be the costliest part of classifying.
	Normalized string

	// Masked is, for payment and insurance, the payload as mask.Number shows it; it is
	// the only form of those payloads that may be logged or stored. Empty otherwise.
	Masked string

	// Reason is empty when the payload is recognised, otherwise one of the Reason
	// constants.
	Reason string
}

// Classify returns what payload is, trying the rules of CODES.md in order; the first
// that matches wins. The length and byte checks come before every rule. opts may be
// nil.
func Classify(payload []byte, opts *Options) Result {
	if len(payload) > MaxPayload {
		return Result{Type: TypeUnknown, Reason: ReasonTooLong}
	}
	if !isText(payload) {
		return Result{Type: TypeUnknown, Reason: ReasonBadBytes}
	}
	if ehc1.HasPrefix(payload) {
		return Result{Type: TypeEHCOffline}
	}
	if n, ok := ehcOnline(payload); ok {
		return Result{Type: TypeEHCOnline, Normalized: n}
	}
	if scheme := paymentScheme(payload); scheme != "" {
		return Result{Type: TypePayment, Scheme: scheme, Masked: mask.Number(string(payload))}
	}
	if opts != nil {
		for _, re := range opts.Insurance {
			if re != nil && re.Match(payload) {
				return Result{Type: TypeInsurance, Masked: mask.Number(string(payload))}
			}
		}
	}
	return Result{Type: TypeUnknown, Reason: ReasonUnrecognised}
}

// isText reports whether p is UTF-8 with no C0 control byte and no DEL, in one pass.
// Those bytes are ASCII and never part of a multi-byte UTF-8 sequence, so a multi-byte
// rune needs only the UTF-8 checks. The scan is the worst case of Classify (every
// payload is scanned whole: a bad byte anywhere makes it bad_bytes), so its two common
// shapes have fast paths: ASCII eight bytes at a time, and two 3-byte runes (CJK text)
// per 64-bit load; anything else goes a rune at a time through utf8.DecodeRune.
func isText(p []byte) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
		// Two 3-byte sequences in the low six bytes of a little-endian word: a lead
		// 1110xxxx then two 10xxxxxx, twice.
		mask3 = 0x0000C0C0F0C0C0F0
		want3 = 0x00008080E08080E0
	)
	i := 0
	for i < len(p) {
		if len(p)-i >= 8 {
			w := binary.LittleEndian.Uint64(p[i:])
			if w&highs == 0 {
				// Eight ASCII bytes; any below 0x20, or equal to 0x7f (zero after the
				// xor): "Bit Twiddling Hacks", hasless and haszero; exact as a yes/no
				// for thresholds up to 0x80.
				d := w ^ (ones * 0x7f)
				if ((w-ones*0x20)&^w|(d-ones)&^d)&highs != 0 {
					return false
				}
				i += 8
				continue
			}
			if w&mask3 == want3 {
				// A run of 3-byte runes, two per load, until its shape ends.
				for {
					if !pair3(w) {
						return false
					}
					i += 6
					if len(p)-i < 8 {
						break
					}
					if w = binary.LittleEndian.Uint64(p[i:]); w&mask3 != want3 {
						break
					}
				}
				continue
			}
		}
		c := p[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}

// pair3 checks the two 3-byte sequences in the low six bytes of w, whose shape (lead
// 1110xxxx, two continuation bytes) is known to be right: what is left is the range of
// the second byte after E0 (no overlong form) and ED (no surrogate). Most leads are
// neither, which one table test tells without a branch per rune.
func pair3(w uint64) bool {
	const special = 1<<0x0 | 1<<0xD // low nibbles of E0 and ED
	if (special>>(w&0xF)|special>>(w>>24&0xF))&1 == 0 {
		return true
	}
	return second3(byte(w), byte(w>>8)) && second3(byte(w>>24), byte(w>>32))
}

// second3 reports whether b1 may follow the lead b0 (0xE0..0xEF) of a 3-byte sequence,
// b1 already known to be a continuation byte (RFC 3629's table).
func second3(b0, b1 byte) bool {
	switch b0 {
	case 0xE0:
		return b1 >= 0xA0
	case 0xED:
		return b1 < 0xA0
	}
	return true
}

const (
	onlineHex       = 64
	fullWidthColon  = "\uff1a" // ：, emitted by some apps
	normalisedColon = ':'
)

// ehcOnline returns the normalised form of p if p is 64 hex digits, ':' or '：', and
// one or more ASCII digits, nothing else.
func ehcOnline(p []byte) (string, bool) {
	if len(p) < onlineHex+2 {
		return "", false
	}
	rest := p[onlineHex:]
	switch {
	case rest[0] == normalisedColon:
		rest = rest[1:]
	case len(rest) > len(fullWidthColon) && string(rest[:len(fullWidthColon)]) == fullWidthColon:
		rest = rest[len(fullWidthColon):]
	default:
		return "", false
	}
	if len(rest) == 0 || !allDigits(rest) {
		return "", false
	}
	for _, c := range p[:onlineHex] {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	var out strings.Builder
	out.Grow(onlineHex + 1 + len(rest))
	for _, c := range p[:onlineHex] {
		if 'a' <= c {
			c -= 'a' - 'A'
		}
		out.WriteByte(c)
	}
	out.WriteByte(normalisedColon)
	out.Write(rest)
	return out.String(), true
}

// paymentScheme returns the scheme of a payment code, or "" if p is not one. The
// rules are tried in CODES.md's order; they do not overlap.
func paymentScheme(p []byte) string {
	n := len(p)
	if n < 16 || n > 24 || !allDigits(p) {
		return ""
	}
	lead := int(p[0]-'0')*10 + int(p[1]-'0')
	switch {
	case n == 18 && 10 <= lead && lead <= 15:
		return SchemeWeChat
	case 25 <= lead && lead <= 30: // 16..24 digits, checked above
		return SchemeAlipay
	case n == 19 && lead == 62:
		return SchemeUnionPay
	}
	return ""
}

func allDigits(p []byte) bool {
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
