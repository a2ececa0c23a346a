package ssi

import (
	"bytes"
	"errors"
	"testing"
)

// specSeeds are the byte examples of SCANNERS.md, alone and in the situations the
// framer must handle.
func specSeeds(f *testing.F) [][]byte {
	segs := specSegments(f)
	bad := bytes.Clone(segs[2])
	bad[len(bad)-1] ^= 1
	again := bytes.Clone(segs[1])
	again[3] |= StatusRetransmit
	binaryPutChecksum(again)
	seeds := [][]byte{
		cat(segs...),
		cat(segs[0], segs[1], again, segs[2]),
		cat(bad, segs[2]),
		cat([]byte{0xC8, 0, 3}, segs[2]),
		continued(f, TypeQR, []byte("continued over packets"), 8),
	}
	seeds = append(seeds, segs...)
	for _, p := range []string{Ack, Nak, MultipacketAck, StartSession, StopSession} {
		seeds = append(seeds, []byte(p))
	}
	return seeds
}

func binaryPutChecksum(p []byte) {
	n := int(p[0])
	ck := Checksum(p[:n])
	p[n], p[n+1] = byte(ck>>8), byte(ck)
}

// fixChecksums walks b as a run of packets and makes every checksum right, so that a
// mutated stream still reaches reassembly instead of stopping at the checksum.
func fixChecksums(b []byte) []byte {
	b = bytes.Clone(b)
	for i := 0; i < len(b); {
		n := int(b[i])
		if n < MinLen {
			i++
			continue
		}
		if i+n+ckLen > len(b) {
			break
		}
		binaryPutChecksum(b[i:])
		i += n + ckLen
	}
	return b
}

// FuzzParse: Parse never panics, never reads past the packet, and what it accepts encodes
// back to the same bytes.
func FuzzParse(f *testing.F) {
	for _, b := range specSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := Parse(b)
		if err != nil {
			var le LengthError
			var ce ChecksumError
			if !errors.Is(err, ErrShort) && !errors.As(err, &le) && !errors.As(err, &ce) {
				t.Fatalf("unexpected error type %T", err)
			}
			return
		}
		if n < MinLen+2 || n > MaxPacket || n > len(b) {
			t.Fatalf("n = %d of %d", n, len(b))
		}
		again, err := p.AppendBinary(nil)
		if err != nil || !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded % X, %v; want % X", again, err, b[:n])
		}
	})
}

// FuzzFramer feeds anything, in chunks, and checks what the framer may say about it. With
// the top bit of mode set, checksums are repaired first (see fixChecksums).
func FuzzFramer(f *testing.F) {
	for _, b := range specSeeds(f) {
		for _, mode := range []uint8{0, 0x80, 0x86} {
			f.Add(b, mode)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		const max = 300
		if mode&0x80 != 0 {
			b = fixChecksums(b)
		}
		fr := NewFramer(max)
		ev := feedChunks(fr, b, int(mode&0x7F)+1)
		ev = fr.Expire(ev)
		if fr.n != 0 || fr.skipping {
			t.Fatalf("Expire left %d bytes, skipping=%v", fr.n, fr.skipping)
		}
		if cap(fr.scan) > max {
			t.Fatalf("scan buffer %d > %d", cap(fr.scan), max)
		}
		var naks, badRuns, dropped int
		for _, e := range ev {
			switch e.Kind {
			case EventReply:
				switch string(e.Data) {
				case Nak:
					naks++
				case Ack, MultipacketAck:
				default:
					t.Fatalf("reply % X", e.Data)
				}
			case EventScan:
				if len(e.Data) == 0 || len(e.Data) > max {
					t.Fatalf("scan of %d bytes", len(e.Data))
				}
			case EventDrop:
				if e.Dropped <= 0 {
					t.Fatalf("drop %s of %d bytes", e.Reason, e.Dropped)
				}
				switch e.Reason {
				case ReasonBadChecksum:
					badRuns++
				case ReasonNoise, ReasonStalePartial, ReasonBadSegment, ReasonTooLong, ReasonEmpty, ReasonDuplicate:
				default:
					t.Fatalf("drop reason %q", e.Reason)
				}
				dropped += e.Dropped
			default:
				t.Fatalf("event kind %d", e.Kind)
			}
		}
		// Each NAK starts a run of bad bytes that Expire has ended by now, and only a NAK
		// starts a bad_checksum run.
		if naks != badRuns {
			t.Fatalf("%d NAKs for %d bad_checksum drops", naks, badRuns)
		}
		if dropped > len(b) {
			t.Fatalf("dropped %d of %d bytes", dropped, len(b))
		}
	})
}

// FuzzRoundTrip encodes a payload the three ways a scanner may send it, after line noise,
// and checks that exactly that scan comes out, however the bytes are split.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("HELLO"), byte(TypeQR), uint8(0), []byte{}, uint8(0))
	f.Add(rep('Z', 500), byte(TypeQR), uint8(2), []byte{0, 3}, uint8(1))
	f.Add(rep('a', 251), byte(TypeDataMatrix), uint8(1), []byte{2}, uint8(250))
	f.Fuzz(func(t *testing.T, payload []byte, typ byte, how uint8, noise []byte, chunk uint8) {
		const max = 1000
		if len(payload) > 3000 {
			return
		}
		var packets [][]byte
		switch how % 3 {
		case 0:
			if len(payload) > MaxData-1 {
				return
			}
			packets = [][]byte{mustPacket(t, OpDecodeData, 0x20, append([]byte{typ}, payload...)...)}
		case 1:
			b := continued(t, typ, payload, int(how/3)%(MaxData-1)+1)
			for len(b) > 0 {
				packets = append(packets, b[:int(b[0])+2])
				b = b[int(b[0])+2:]
			}
		case 2:
			packets = segmented(t, typ, payload)
		}
		noise = bytes.Clone(noise) // the engine's arguments may share memory: never write to them
		for i := range noise {
			noise[i] %= MinLen // never a length byte: resynchronisation is then certain
		}
		fr := NewFramer(max)
		ev := feedChunks(fr, cat(noise, cat(packets...)), int(chunk)+1)
		ev = fr.Expire(ev)
		var replies, scans int
		for _, e := range ev {
			switch e.Kind {
			case EventReply:
				replies++
			case EventScan:
				scans++
				if !bytes.Equal(e.Data, payload) || e.Type != typ {
					t.Fatalf("scan %q type %02X, want %q type %02X", e.Data, e.Type, payload, typ)
				}
			case EventDrop:
				ok := false
				switch e.Reason {
				case ReasonNoise:
					ok = e.Dropped == len(noise)
				case ReasonEmpty:
					ok = len(payload) == 0
				case ReasonTooLong:
					ok = len(payload) > max
				}
				if !ok {
					t.Fatalf("drop %s %d (noise %d, payload %d)", e.Reason, e.Dropped, len(noise), len(payload))
				}
			}
		}
		if replies != len(packets) {
			t.Fatalf("%d replies for %d packets", replies, len(packets))
		}
		if wantScans := len(payload) > 0 && len(payload) <= max; (scans == 1) != wantScans {
			t.Fatalf("%d scans for a %d-byte payload", scans, len(payload))
		}
	})
}
