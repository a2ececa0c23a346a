package ga467

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// decoded is what a Decoder made of a stream: frame bodies in order, bytes dropped by
// reason.
type decoded struct {
	frames  [][]byte
	dropped map[string]int
}

func (d *decoded) add(evs []Event) {
	for _, e := range evs {
		switch e.Kind {
		case EventFrame:
			d.frames = append(d.frames, e.Body)
		case EventDrop:
			if e.Dropped <= 0 {
				panic("empty drop")
			}
			d.dropped[e.Reason] += e.Dropped
		}
	}
}

func (d *decoded) total() int {
	n := 0
	for _, k := range d.dropped {
		n += k
	}
	for _, f := range d.frames {
		n += HeaderLen + len(f) + 1
	}
	return n
}

// decodeChunks feeds stream cut at the given sizes (cycled), then expires.
func decodeChunks(t testing.TB, stream []byte, sizes func() int) decoded {
	t.Helper()
	var d Decoder
	out := decoded{dropped: map[string]int{}}
	var evs []Event
	for rest := stream; len(rest) > 0; {
		n := min(max(1, sizes()), len(rest))
		evs = d.Feed(rest[:n], evs[:0])
		out.add(evs)
		rest = rest[n:]
		if d.Pending() >= MaxFrame {
			t.Fatalf("%d bytes pending after a Feed", d.Pending())
		}
	}
	out.add(d.Expire(nil))
	if d.Pending() != 0 {
		t.Fatalf("%d bytes pending after Expire", d.Pending())
	}
	return out
}

func frame(t testing.TB, a Answer) []byte {
	t.Helper()
	b, err := a.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// junkStream is the test stream: the answers of a reader (find, select, the
// 1,295-byte read answer, failures) with junk between every two of them: random bytes,
// partial preambles, false preambles with a LEN out of bounds, with a wrong CHK, with a
// LEN that swallows the next frame, and real frames cut short. It returns the stream and
// the bodies of the good frames in it, or ok false when the junk happens to contain a
// frame with a good CHK (the 8-bit CHK lets one in 256 through), which no decoder can
// tell from a real one.
func junkStream(t testing.TB, seed uint64) (stream []byte, want [][]byte, ok bool) {
	r := rand.New(rand.NewPCG(seed, 467))
	card := testCard()
	card.Photo = testPhoto(seed)
	read, err := card.ReadAnswer()
	if err != nil {
		t.Fatal(err)
	}
	answers := [][]byte{
		frame(t, Answer{SW3: StatusCardFound, Data: make([]byte, 4)}),
		frame(t, Answer{SW3: StatusOK, Data: make([]byte, 8)}),
		read,
		frame(t, Answer{SW3: StatusFindFailed}),
		frame(t, Answer{SW3: StatusReadFailed}),
	}
	var goodAt []int // where the good frames start
	junk := func() {
		switch r.IntN(8) {
		case 0: // nothing: frames back to back
		case 1: // random bytes
			for range r.IntN(40) {
				stream = append(stream, byte(r.Uint32()))
			}
		case 2: // a partial preamble
			stream = append(stream, Preamble[:1+r.IntN(PreambleLen-1)]...)
		case 3: // a false preamble with a LEN out of bounds
			stream = append(stream, Preamble...)
			if r.IntN(2) == 0 {
				stream = append(stream, 0x00, byte(r.IntN(MinLen)))
			} else {
				stream = append(stream, 0x05, 0x09+byte(r.IntN(0xF0)))
			}
		case 4: // a whole frame with a wrong CHK
			b := bytes.Clone(answers[r.IntN(len(answers))])
			b[len(b)-1] ^= byte(1 + r.IntN(255))
			stream = append(stream, b...)
		case 5: // a LEN beyond the frame: swallows what follows
			stream = append(stream, Preamble...)
			stream = append(stream, 0x00, byte(MinLen+r.IntN(60)))
		case 6: // a real frame cut short
			b := answers[r.IntN(len(answers))]
			stream = append(stream, b[:1+r.IntN(len(b)-1)]...)
		case 7: // a preamble cut in the middle of LEN
			stream = append(stream, Preamble+"\x05"...)
		}
	}
	for range 12 {
		junk()
		a := answers[r.IntN(len(answers))]
		if r.IntN(3) == 0 {
			a = read // the read answer in most streams, several times
		}
		goodAt = append(goodAt, len(stream))
		stream = append(stream, a...)
		want = append(want, a[HeaderLen:len(a)-1])
	}
	junk()
	// A preamble outside the good frames must not start a frame with a good CHK. Those
	// inside a good frame are never looked at: resynchronisation goes to the next
	// preamble after a bad start, and a good frame's own comes first.
	inGood := func(p int) bool {
		for i, at := range goodAt {
			if p >= at && p < at+HeaderLen+len(want[i])+1 {
				return true
			}
		}
		return false
	}
	for p := 0; ; p++ {
		k := bytes.Index(stream[p:], preamble)
		if k < 0 {
			break
		}
		p += k
		if inGood(p) {
			continue
		}
		if _, _, err := ParseFrame(stream[p:]); err == nil {
			return nil, nil, false
		}
	}
	return stream, want, true
}

// The test: a 1,295-byte answer (among others) split into random chunks, with
// junk between frames, decodes exactly; every byte is either in a frame or dropped once.
func TestDecoderRandomChunksWithJunk(t *testing.T) {
	streams, skipped := 0, 0
	drops := map[string]int{}
	for seed := uint64(0); streams < 300; seed++ {
		stream, want, ok := junkStream(t, seed)
		if !ok {
			skipped++
			continue
		}
		streams++
		r := rand.New(rand.NewPCG(seed, 99))
		maxChunk := []int{1, 7, 64, 300, 1400, 4000}[seed%6]
		got := decodeChunks(t, stream, func() int { return 1 + r.IntN(maxChunk) })
		if len(got.frames) != len(want) {
			t.Fatalf("seed %d: %d frames, want %d (dropped %v)", seed, len(got.frames), len(want), got.dropped)
		}
		for i := range want {
			if !bytes.Equal(got.frames[i], want[i]) {
				t.Fatalf("seed %d: frame %d differs", seed, i)
			}
		}
		if got.total() != len(stream) {
			t.Fatalf("seed %d: %d bytes accounted for, stream is %d", seed, got.total(), len(stream))
		}
		for k, v := range got.dropped {
			drops[k] += v
		}
		// The read answer is the card, exactly.
		for _, f := range got.frames {
			a, err := ParseAnswer(f)
			if err != nil || a.SW3 != StatusOK || len(a.Data) == 8 {
				continue
			}
			c, err := ParseCard(a.Data)
			want := testCard()
			want.Photo = testPhoto(seed)
			if err != nil || !equalCard(c, want) {
				t.Fatalf("seed %d: card %v", seed, err)
			}
		}
	}
	t.Logf("%d streams (%d skipped); bytes dropped: %v", streams, skipped, drops)
	for _, r := range []string{ReasonNoise, ReasonBadLength, ReasonBadChecksum, ReasonTruncated} {
		if drops[r] == 0 {
			t.Errorf("no stream exercised %s", r)
		}
	}
	if skipped > streams/10 {
		t.Fatalf("%d streams skipped for an accidental good CHK, of %d", skipped, streams)
	}
}

// How the input is cut never changes which frames come out, nor how many bytes are
// dropped.
func TestDecoderChunkingInvariance(t *testing.T) {
	for seed := uint64(1000); seed < 1040; seed++ {
		stream, _, ok := junkStream(t, seed)
		if !ok {
			continue
		}
		whole := decodeChunks(t, stream, func() int { return len(stream) })
		bytewise := decodeChunks(t, stream, func() int { return 1 })
		if !slices.EqualFunc(whole.frames, bytewise.frames, bytes.Equal) || whole.total() != bytewise.total() {
			t.Fatalf("seed %d: whole %d frames, byte by byte %d", seed, len(whole.frames), len(bytewise.frames))
		}
	}
}

func TestDecoderDrops(t *testing.T) {
	find := []byte(FindCard)
	badCHK := bytes.Clone(find)
	badCHK[len(badCHK)-1] ^= 1
	for _, tc := range []struct {
		name    string
		in      []byte
		frames  int
		dropped map[string]int
	}{
		{"noise before", cat([]byte("xyz"), find), 1, map[string]int{ReasonNoise: 3}},
		{"partial preamble before", cat([]byte(Preamble[:4]), find), 1, map[string]int{ReasonNoise: 4}},
		{"bad CHK", cat(badCHK, find), 1, map[string]int{ReasonBadChecksum: len(badCHK)}},
		{"LEN too big", cat([]byte(Preamble+"\xFF\xFF"), find), 1, map[string]int{ReasonBadLength: 7}},
		{"LEN too small", cat([]byte(Preamble+"\x00\x02"), find), 1, map[string]int{ReasonBadLength: 7}},
		// LEN 0x10 takes in the next frame's first 12 bytes; its CHK fails, and the
		// next frame is found from the false preamble's second byte on.
		{"LEN beyond the frame", cat(unhex(t, "AA AA AA 96 69 00 10 00 00 80 84"), find, find), 2, map[string]int{ReasonBadChecksum: 11}},
		{"cut short at the end", cat(find, find[:8]), 1, map[string]int{ReasonTruncated: 8}},
		{"cut short, then a frame", cat(find[:8], find), 1, map[string]int{ReasonBadChecksum: 8}},
		{"partial preamble at the end", cat(find, []byte{0xAA, 0xAA}), 1, map[string]int{ReasonNoise: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{1, 3, len(tc.in)} {
				got := decodeChunks(t, tc.in, func() int { return size })
				if len(got.frames) != tc.frames || !mapsEqual(got.dropped, tc.dropped) {
					t.Fatalf("chunks of %d: %d frames, dropped %v; want %d, %v", size, len(got.frames), got.dropped, tc.frames, tc.dropped)
				}
				for _, f := range got.frames {
					if !bytes.Equal(f, find[HeaderLen:len(find)-1]) {
						t.Fatalf("frame % X", f)
					}
				}
			}
		})
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A frame waits for its last byte, however slowly it comes, and is delivered with it.
func TestDecoderWaitsForTheRest(t *testing.T) {
	read, err := testCard().ReadAnswer()
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	for i := range len(read) - 1 {
		if evs := d.Feed(read[i:i+1], nil); len(evs) != 0 {
			t.Fatalf("byte %d: %+v", i, evs[0])
		}
	}
	evs := d.Feed(read[len(read)-1:], nil)
	if len(evs) != 1 || evs[0].Kind != EventFrame || len(evs[0].Body) != MaxLen-1 {
		t.Fatalf("%+v", evs)
	}
}

func TestDecoderReset(t *testing.T) {
	var d Decoder
	d.Feed([]byte(FindCard)[:6], nil)
	evs := d.Reset(nil)
	if len(evs) != 1 || evs[0].Reason != ReasonDisconnected || evs[0].Dropped != 6 || d.Pending() != 0 {
		t.Fatalf("%+v, pending %d", evs, d.Pending())
	}
	if evs := d.Reset(nil); len(evs) != 0 {
		t.Fatalf("second reset: %+v", evs)
	}
	evs = d.Feed([]byte(FindCard), nil)
	if len(evs) != 1 || evs[0].Kind != EventFrame {
		t.Fatalf("after reset: %+v", evs)
	}
}

// Memory stays bounded whatever comes: endless noise, endless false preambles, a
// megabyte in one Feed.
func TestDecoderBounded(t *testing.T) {
	var d Decoder
	noise := bytes.Repeat([]byte{0xAA, 0xAA, 0xAA, 0x96}, 1<<18)
	got := decoded{dropped: map[string]int{}}
	got.add(d.Feed(noise, nil))
	if d.Pending() > PreambleLen-1 {
		t.Fatalf("%d pending after noise", d.Pending())
	}
	fakes := bytes.Repeat([]byte(Preamble+"\x05\x08"), 1<<15)
	got.add(d.Feed(fakes, nil))
	if d.Pending() >= MaxFrame {
		t.Fatalf("%d pending after false preambles", d.Pending())
	}
	got.add(d.Expire(nil))
	if got.total() != len(noise)+len(fakes) || len(got.frames) != 0 {
		t.Fatalf("accounted %d of %d, %d frames", got.total(), len(noise)+len(fakes), len(got.frames))
	}
}
