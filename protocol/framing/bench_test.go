package framing

import (
	"strings"
	"testing"
)

// BenchmarkLine: one 300-byte scan with an AIM identifier and CR, fed in 64-byte reads
// the way a serial port delivers it. One op is one scan.
func BenchmarkLine(b *testing.B) {
	in := []byte("]Q1" + strings.Repeat("EHC1:ABCDEFGHIJ", 20) + "\r")
	f := mustNew(b, Config{AIM: true})
	out := make([]Output, 0, 4)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		out = out[:0]
		for p := in; len(p) > 0; {
			k := min(64, len(p))
			out = f.Feed(p[:k], out)
			p = p[k:]
		}
		if len(out) != 1 || out[0].Kind != KindScan {
			b.Fatalf("%q", describe(out))
		}
	}
}

// BenchmarkLineJunk: 64 KiB without a terminator, then a scan: the cost of discarding.
func BenchmarkLineJunk(b *testing.B) {
	junk := []byte(strings.Repeat("J", 64<<10) + "\rok\r")
	f := mustNew(b, Config{})
	out := make([]Output, 0, 4)
	b.SetBytes(int64(len(junk)))
	b.ReportAllocs()
	for b.Loop() {
		out = f.Feed(junk, out[:0])
	}
}

// BenchmarkSSI: the spec's 500-byte multipacket QR scan through framing.New, 64-byte reads.
func BenchmarkSSI(b *testing.B) {
	in := specSSI(b)
	f := mustNew(b, Config{Type: "ssi", AIM: true})
	out := make([]Output, 0, 8)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		out = out[:0]
		for p := in; len(p) > 0; {
			k := min(64, len(p))
			out = f.Feed(p[:k], out)
			p = p[k:]
		}
		if len(out) != 4 {
			b.Fatalf("%q", describe(out))
		}
	}
}
