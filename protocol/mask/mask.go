// Package mask hides personal data for logs, metrics and the platform (PLATFORM.md,
// Identity event: "masked in logs (`1101**********1234`, `张*`)"). Every log line that
// carries an identity goes through these functions; none of them ever returns its input
// unchanged unless the input is too short to carry anything.
package mask

import "unicode/utf8"

// Number keeps the first 4 and last 4 characters of an identifying number (ID number,
// card number, payment code, phone) and stars the rest: "110101198001011234" becomes
// "1101**********1234". Inputs of 8 characters or fewer keep only their last 2 (or none).
func Number(s string) string {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return ""
	case n <= 4:
		return stars(n)
	case n <= 8:
		r := []rune(s)
		return stars(n-2) + string(r[n-2:])
	}
	r := []rune(s)
	return string(r[:4]) + stars(n-8) + string(r[n-4:])
}

// Name keeps the first character of a name and stars the rest: "张三丰" becomes "张**".
func Name(s string) string {
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return ""
	}
	_, size := utf8.DecodeRuneInString(s)
	if n == 1 {
		return "*"
	}
	return s[:size] + stars(n-1)
}

// Text hides free text (an address) entirely but its length class.
func Text(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}

func stars(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '*'
	}
	return string(b)
}

// Token shortens a long opaque identifier (an EHC ID, a card serial) to its first and
// last 4 characters: "AEBE…1279". Shorter inputs are starred like Number.
func Token(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= 12 {
		return Number(s)
	}
	r := []rune(s)
	return string(r[:4]) + "…" + string(r[n-4:])
}
