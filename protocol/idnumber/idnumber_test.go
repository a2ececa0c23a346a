package idnumber

import (
	"errors"
	"testing"
)

// Numbers whose check digits were worked out by hand from GB 11643's weights; the
// first is the standard's own example (11010519491231002X).
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		in     string
		reason string
	}{
		{"11010519491231002X", ""},
		{"110108199003071238", ""}, // configs/profiles/idcard-wang-zhe.yaml
		{"110101199001011237", ""}, // the demo's resident
		{"440524188001010014", ""},
		{"110108199003071239", ReasonCheckDigit},
		{"11010519491231002x", ReasonNotDigits}, // Normalize first
		{"11010519491231002", ReasonLength},
		{"1101051949123100211", ReasonLength},
		{"1101051949A231002X", ReasonNotDigits},
		{"110105194913310020", ReasonBirthDate},
		{"110105194912320020", ReasonBirthDate},
		{"110105179912310020", ReasonBirthDate},
		{"", ReasonLength},
	} {
		err := Check(tc.in)
		var e *Error
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("Check(%q) = %v, want valid", tc.in, err)
		case tc.reason != "" && (!errors.As(err, &e) || e.Reason != tc.reason):
			t.Errorf("Check(%q) = %v, want %s", tc.in, err, tc.reason)
		}
	}
	if !Valid(Normalize(" 11010519491231002x ")) {
		t.Error("Normalize does not accept a typed lower-case x with spaces")
	}
}

// Exactly one check character makes a 17-digit prefix valid.
func TestOneCheckDigit(t *testing.T) {
	prefix := "44052418800101001"
	n := 0
	for _, c := range "0123456789X" {
		if Valid(prefix + string(c)) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d check characters accepted, want 1", n)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "110108199003071238", "", "x", "11010519491231002x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Check(s)
		if err == nil {
			c, ok := CheckDigit(s)
			if len(s) != Len || !ok || s[17] != c {
				t.Fatalf("accepted %q", s)
			}
			// Changing any one of the 17 digits breaks the check.
			b := []byte(s)
			b[16] = '0' + (b[16]-'0'+1)%10
			if Valid(string(b)) {
				t.Fatalf("%q and %q both valid", s, b)
			}
		}
		if n := Normalize(s); len(n) > len(s) {
			t.Fatalf("Normalize grew %q", s)
		}
	})
}
