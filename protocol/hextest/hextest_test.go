package hextest

import (
	"bytes"
	"testing"
)

func TestDecodeSpacedHex(t *testing.T) {
	if got := Decode(t, "AA aa 96 69 00"); !bytes.Equal(got, []byte{0xAA, 0xAA, 0x96, 0x69, 0x00}) {
		t.Fatalf("% X", got)
	}
	if got := Decode(t, ""); len(got) != 0 {
		t.Fatalf("% X", got)
	}
}
