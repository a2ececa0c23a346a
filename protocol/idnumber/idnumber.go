// Package idnumber checks citizen identity numbers (公民身份号码) as GB 11643-1999
// defines them: 17 digits (6 of region, 8 of birth date, 3 of sequence) and a check
// digit, ISO 7064 MOD 11-2, written X for 10.
//
// It is used where a number is typed by hand (the card application's manual entry,
// PLATFORM.md "Card application") and where the platform emulator refuses a bad one.
// A number read from a card is not checked: a card holds whatever number was issued.
package idnumber

// Len is the length of a citizen identity number.
const Len = 18

// weights of the 17 digits, 2^(18-i) mod 11 for position i = 1…17.
var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// checkChars maps (sum of weighted digits) mod 11 to the check character.
const checkChars = "10X98765432"

// Error says why a number is not valid; Reason is a stable code for the kiosk.
type Error struct {
	Reason string // "length", "not_digits", "birth_date", "check_digit"
}

func (e *Error) Error() string { return "idnumber: " + e.Reason }

// Reasons of Error.
const (
	ReasonLength     = "length"
	ReasonNotDigits  = "not_digits"
	ReasonBirthDate  = "birth_date"
	ReasonCheckDigit = "check_digit"
)

// CheckDigit returns the check character of the first 17 digits of s, and false when
// s does not start with 17 ASCII digits.
func CheckDigit(s string) (byte, bool) {
	if len(s) < 17 {
		return 0, false
	}
	sum := 0
	for i := range 17 {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		sum += int(c-'0') * weights[i]
	}
	return checkChars[sum%11], true
}

// Check returns nil for a valid number: 18 characters, 17 digits, a plausible birth
// date (month 01–12, day 01–31, year 1800–2099) and the right check character (X in
// upper case; Normalize first to accept a lower-case x).
func Check(s string) error {
	if len(s) != Len {
		return &Error{ReasonLength}
	}
	want, ok := CheckDigit(s)
	if !ok {
		return &Error{ReasonNotDigits}
	}
	y := int(s[6]-'0')*1000 + int(s[7]-'0')*100 + int(s[8]-'0')*10 + int(s[9]-'0')
	m := int(s[10]-'0')*10 + int(s[11]-'0')
	d := int(s[12]-'0')*10 + int(s[13]-'0')
	if y < 1800 || y > 2099 || m < 1 || m > 12 || d < 1 || d > 31 {
		return &Error{ReasonBirthDate}
	}
	if s[17] != want {
		if (s[17] < '0' || s[17] > '9') && s[17] != 'X' {
			return &Error{ReasonNotDigits}
		}
		return &Error{ReasonCheckDigit}
	}
	return nil
}

// Valid reports whether Check accepts s.
func Valid(s string) bool { return Check(s) == nil }

// Normalize trims surrounding spaces and upper-cases a trailing x, as people type it.
func Normalize(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) == Len && s[Len-1] == 'x' {
		s = s[:Len-1] + "X"
	}
	return s
}
