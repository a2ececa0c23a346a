package ga467

import "testing"

// A read answer as a USB-serial bridge delivers it, in 64-byte pieces.
func BenchmarkDecoderReadAnswer(b *testing.B) {
	read, err := testCard().ReadAnswer()
	if err != nil {
		b.Fatal(err)
	}
	var d Decoder
	var evs []Event
	b.SetBytes(int64(len(read)))
	b.ReportAllocs()
	for b.Loop() {
		frames := 0
		for i := 0; i < len(read); i += 64 {
			evs = d.Feed(read[i:min(i+64, len(read))], evs[:0])
			frames += len(evs)
		}
		if frames != 1 {
			b.Fatalf("%d events", frames)
		}
	}
}

func BenchmarkParseCard(b *testing.B) {
	data, err := testCard().AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCard(data); err != nil {
			b.Fatal(err)
		}
	}
}
