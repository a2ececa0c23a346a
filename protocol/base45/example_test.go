package base45_test

import (
	"fmt"

	"github.com/ehc-agent/ehc-agent/protocol/base45"
)

func ExampleEncode() {
	fmt.Println(base45.Encode([]byte("Hello!!")))
	// Output: %69 VD92EX0
}

func ExampleDecode() {
	// Lowercase letters decode too: a scanner with Caps Lock on inverts case.
	b, err := base45.Decode([]byte("ujclqe7w581"))
	fmt.Printf("%s %v\n", b, err)
	_, err = base45.Decode([]byte("GGW"))
	fmt.Println(err)
	// Output:
	// base-45 <nil>
	// illegal base45 data at input byte 0
}
