package ga467

import (
	"bytes"
	"errors"
	"testing"
)

// specSeeds are the frames of CARDS.md, alone and in the situations a decoder must
// handle: junk between them, a wrong CHK, a LEN beyond the frame, an answer cut short.
func specSeeds(t testing.TB) [][]byte {
	read, err := testCard().ReadAnswer()
	if err != nil {
		t.Fatal(err)
	}
	found := unhex(t, "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
	noCard := unhex(t, "AA AA AA 96 69 00 04 00 00 80 84")
	selected := unhex(t, "AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C")
	selectFailed := unhex(t, "AA AA AA 96 69 00 04 00 00 81 85")
	readFailed := unhex(t, "AA AA AA 96 69 00 04 00 00 41 45")
	badCHK := bytes.Clone(found)
	badCHK[len(badCHK)-1] ^= 0x10
	seeds := [][]byte{
		[]byte(FindCard), []byte(SelectCard), []byte(ReadCard),
		found, noCard, selected, selectFailed, readFailed, read,
		cat(found, selected, read),
		cat([]byte("\x00\xAA\xAA"), found, []byte{0xAA, 0xAA, 0xAA, 0x96}, read),
		cat(badCHK, found),
		cat(unhex(t, "AA AA AA 96 69 00 10 00 00 80 84"), noCard),
		cat(read[:700], found),
		cat([]byte(Preamble+"\xFF\xFF"), readFailed),
	}
	for seed := uint64(0); len(seeds) < 20; seed++ {
		if s, _, ok := junkStream(t, seed); ok {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// FuzzDecoder: whatever the input and however it is cut, the decoder never panics, never
// holds a frame's worth of bytes between calls, accounts for every byte once, finds the
// same frames as when fed in one piece, and delivers only frames that are in the input
// with a good CHK.
func FuzzDecoder(f *testing.F) {
	for i, s := range specSeeds(f) {
		f.Add(s, uint16(i*37+1))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		step := 0
		whole := decodeChunks(t, in, func() int { return len(in) })
		cuts := decodeChunks(t, in, func() int {
			step++
			return 1 + int(cut)*step%509
		})
		if whole.total() != len(in) || cuts.total() != len(in) {
			t.Fatalf("accounted %d and %d of %d bytes", whole.total(), cuts.total(), len(in))
		}
		if !equalFrames(whole.frames, cuts.frames) {
			t.Fatalf("%d frames whole, %d cut", len(whole.frames), len(cuts.frames))
		}
		for _, b := range whole.frames {
			wire, err := AppendFrame(nil, b)
			if err != nil || !bytes.Contains(in, wire) {
				t.Fatalf("frame % X not in the input (%v)", b, err)
			}
		}
	})
}

func equalFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzParseFrame: ParseFrame never panics, never reads past the frame, and what it
// accepts encodes back to the same bytes.
func FuzzParseFrame(f *testing.F) {
	for _, s := range specSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		body, n, err := ParseFrame(b)
		if err != nil {
			var le LengthError
			var ce ChecksumError
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrNoPreamble) && !errors.As(err, &le) && !errors.As(err, &ce) {
				t.Fatalf("unexpected error type %T", err)
			}
			return
		}
		if n < HeaderLen+MinLen || n > MaxFrame || n > len(b) {
			t.Fatalf("n = %d of %d", n, len(b))
		}
		again, err := AppendFrame(nil, body)
		if err != nil || !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded % X, %v; want % X", again, err, b[:n])
		}
		if a, err := ParseAnswer(body); err == nil {
			if w, err := a.AppendBinary(nil); err != nil || !bytes.Equal(w, b[:n]) {
				t.Fatalf("answer re-encoded % X, %v", w, err)
			}
		}
		if c, err := ParseCommand(body); err == nil {
			if w, err := c.AppendBinary(nil); err != nil || !bytes.Equal(w, b[:n]) {
				t.Fatalf("command re-encoded % X, %v", w, err)
			}
		}
	})
}

// FuzzParseCard: ParseCard never panics; a record it accepts encodes to data it decodes
// to the same record (encoding is canonical: it pads with spaces where a reader may
// have used NUL).
func FuzzParseCard(f *testing.F) {
	for _, s := range specSeeds(f) {
		if body, _, err := ParseFrame(s); err == nil && len(body) > 3 {
			f.Add(body[3:])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCard(data)
		if err != nil {
			var de DataError
			var ue UnsupportedError
			if !errors.As(err, &de) && !errors.As(err, &ue) {
				t.Fatalf("unexpected error type %T", err)
			}
			return
		}
		enc, err := c.AppendBinary(nil)
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		again, err := ParseCard(enc)
		if err != nil || !equalCard(again, c) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
