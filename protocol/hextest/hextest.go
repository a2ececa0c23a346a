// Package hextest reads bytes written as the specs write them (SCANNERS.md, CARDS.md:
// hex pairs, spaced), for tests of the codecs and of the devices speaking them. Only
// tests import it.
package hextest

import (
	"encoding/hex"
	"strings"
	"testing"
)

// Decode turns spaced hex ("AA AA 96 69") into bytes; bad hex fails the test.
func Decode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}
