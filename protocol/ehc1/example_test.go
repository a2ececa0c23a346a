package ehc1_test

import (
	"fmt"

	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
)

func Example() {
	// Build a code (signatures left zero here), print its text form, and read it back
	// as a scanner with Caps Lock on would deliver it.
	c := &ehc1.Code{Version: 1, Type: 1, RootIndex: 1, IssuerID: 4401, CertSerial: 17,
		Validity: 60, GeneratedAt: 1793491200, Sequence: 42, Extension: []byte{0xca, 0xfe}}
	c.EHCID[0] = 0xe1
	text := c.Text()
	fmt.Println(len(c.Raw), len(text), text[:12])

	got, err := ehc1.ParseText([]byte("ehc1:" + text[5:]))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.IssuerID, got.Sequence, got.ExpiresAt(), got.EHCIDHex()[:4])
	fmt.Println(len(got.CertSigned()), len(got.CredSigned()), len(got.CodeSigned()))

	// A version-1-shaped code with another version byte is unsupported, not malformed.
	raw := got.Marshal()
	raw[0] = 2
	_, err = ehc1.Parse(raw)
	fmt.Println(err)
	// Output:
	// 323 490 EHC1:W50V50H
	// 4401 42 1793491260 E100
	// 46 75 259
	// ehc1: unsupported_version at offset 0: version 2
}
