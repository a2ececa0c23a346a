package codes_test

import (
	"fmt"
	"regexp"

	"github.com/ehc-agent/ehc-agent/protocol/codes"
)

func ExampleClassify() {
	opts := &codes.Options{Insurance: []*regexp.Regexp{regexp.MustCompile(`^YB[0-9A-Z]{30}$`)}}
	for _, scan := range []string{
		"ehc1:W50V50H",
		"e1d1c0ffee0123456789abcdef0123456789abcdef0123456789abcdeffbb180：1",
		"6212345678901234567",
		"hello\x00",
	} {
		r := codes.Classify([]byte(scan), opts)
		fmt.Printf("%s %q %q %q\n", r.Type, r.Scheme, r.Masked, r.Reason)
		if r.Type == codes.TypeEHCOnline {
			fmt.Println(r.Normalized)
		}
	}
	// Output:
	// ehc_offline "" "" ""
	// ehc_online "" "" ""
	// E1D1C0FFEE0123456789ABCDEF0123456789ABCDEF0123456789ABCDEFFBB180:1
	// payment "unionpay" "6212***********4567" ""
	// unknown "" "" "bad_bytes"
}
