package ssi

import "testing"

// BenchmarkFramerMultipacket: the spec's 500-byte QR scan in three segments, fed as a
// serial port delivers it (64-byte reads).
func BenchmarkFramerMultipacket(b *testing.B) {
	stream := cat(specSegments(b)...)
	f := NewFramer(4096)
	ev := make([]Event, 0, 8)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		ev = ev[:0]
		for p := stream; len(p) > 0; {
			k := min(64, len(p))
			ev = f.Feed(p[:k], ev)
			p = p[k:]
		}
		if len(ev) != 4 {
			b.Fatalf("%d events", len(ev))
		}
	}
}

// BenchmarkFramerSingle: a typical 120-byte code in one DECODE_DATA packet.
func BenchmarkFramerSingle(b *testing.B) {
	pkt := mustPacket(b, OpDecodeData, 0x20, append([]byte{TypeQR}, rep('A', 120)...)...)
	f := NewFramer(4096)
	ev := make([]Event, 0, 4)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		ev = f.Feed(pkt, ev[:0])
	}
}
