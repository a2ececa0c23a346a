//go:build !linux

// Command guestinit is /init of the Linux QEMU guest of the USB tests; it does nothing
// elsewhere.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "guestinit: the USB test guest runs Linux only")
	os.Exit(2)
}
