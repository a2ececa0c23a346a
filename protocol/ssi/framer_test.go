package ssi

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// describe renders events so that a test can compare whole sequences.
func describe(ev []Event) []string {
	var s []string
	for _, e := range ev {
		switch e.Kind {
		case EventReply:
			name := map[string]string{Ack: "ACK", Nak: "NAK", MultipacketAck: "MULTIPACKET_ACK"}[string(e.Data)]
			if name == "" {
				name = fmt.Sprintf("% X", e.Data)
			}
			s = append(s, "reply "+name)
		case EventScan:
			d := string(e.Data)
			if len(d) > 40 {
				d = fmt.Sprintf("%s…(%d bytes)", d[:20], len(d))
			}
			s = append(s, fmt.Sprintf("scan %02X %s", e.Type, d))
		case EventDrop:
			s = append(s, fmt.Sprintf("drop %s %d", e.Reason, e.Dropped))
		default:
			s = append(s, fmt.Sprintf("kind %d?", e.Kind))
		}
	}
	return s
}

func expect(t *testing.T, ev []Event, want ...string) {
	t.Helper()
	if got := describe(ev); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

// feedChunks feeds b in pieces of at most size bytes.
func feedChunks(f *Framer, b []byte, size int) []Event {
	var ev []Event
	for len(b) > 0 {
		k := min(size, len(b))
		ev = f.Feed(b[:k], ev)
		b = b[k:]
	}
	return ev
}

// continued splits payload over DECODE_DATA packets with the continuation bit.
func continued(t testing.TB, typ byte, payload []byte, per int) []byte {
	var out []byte
	for first := true; first || len(payload) > 0; first = false {
		k := min(per, len(payload))
		status := byte(0)
		if k < len(payload) {
			status = StatusContinuation
		}
		out = append(out, mustPacket(t, OpDecodeData, status, append([]byte{typ}, payload[:k]...)...)...)
		payload = payload[k:]
	}
	return out
}

// segmented splits payload into multipacket segments the way SCANNERS.md describes them.
// The bytes of the embedded header the framer does not read are left zero.
func segmented(t testing.TB, typ byte, payload []byte) [][]byte {
	n := len(payload)
	k := min(MaxData-segFirstData, n)
	head := []byte{0, OpDecodeData, 0, 0, 0, 0, typ, 0, byte(n >> 8), byte(n)}
	segs := [][]byte{mustPacket(t, OpMultipacket, 0, append(head, payload[:k]...)...)}
	payload = payload[k:]
	for i := 1; len(payload) > 0; i++ {
		k := min(MaxData-segData, len(payload))
		segs = append(segs, mustPacket(t, OpMultipacket, 0, append([]byte{byte(i)}, payload[:k]...)...))
		payload = payload[k:]
	}
	return segs
}

func TestFramerSpecMultipacketVector(t *testing.T) {
	stream := cat(specSegments(t)...)
	want := []string{"reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK", "scan 1C ZZZZZZZZZZZZZZZZZZZZ…(500 bytes)"}
	check := func(t *testing.T, ev []Event) {
		t.Helper()
		expect(t, ev, want...)
		for _, e := range ev {
			if e.Kind == EventReply && string(e.Data) != MultipacketAck {
				t.Errorf("reply % X, want MULTIPACKET_ACK", e.Data)
			}
			if e.Kind == EventScan && (!bytes.Equal(e.Data, rep('Z', 500)) || TypeName(e.Type) != "qr") {
				t.Errorf("scan %q type %02X", e.Data, e.Type)
			}
		}
	}
	t.Run("whole", func(t *testing.T) { check(t, NewFramer(4096).Feed(stream, nil)) })
	t.Run("byte by byte", func(t *testing.T) { check(t, feedChunks(NewFramer(4096), stream, 1)) })
	t.Run("per segment", func(t *testing.T) {
		f := NewFramer(4096)
		var ev []Event
		for i, seg := range specSegments(t) {
			ev = f.Feed(seg, ev)
			if i < 2 && len(ev) != i+1 {
				t.Fatalf("after segment %d: %q", i, describe(ev))
			}
		}
		check(t, ev)
	})
	t.Run("split at every offset", func(t *testing.T) {
		for i := range len(stream) + 1 {
			f := NewFramer(4096)
			ev := f.Feed(stream[:i], nil)
			check(t, f.Feed(stream[i:], ev))
		}
	})
	t.Run("replies come before their scan", func(t *testing.T) {
		f := NewFramer(4096)
		segs := specSegments(t)
		f.Feed(cat(segs[0], segs[1]), nil)
		ev := f.Feed(segs[2], nil)
		expect(t, ev, "reply MULTIPACKET_ACK", "scan 1C ZZZZZZZZZZZZZZZZZZZZ…(500 bytes)")
	})
}

func TestFramerBadChecksumNAKThenResend(t *testing.T) {
	good := mustPacket(t, OpDecodeData, 0x20, TypeQR, 'H', 'E', 'L', 'L', 'O')
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x55
	resent := mustPacket(t, OpDecodeData, 0x20|StatusRetransmit, TypeQR, 'H', 'E', 'L', 'L', 'O')

	f := NewFramer(4096)
	ev := f.Feed(bad, nil)
	expect(t, ev, "reply NAK")
	if string(ev[0].Data) != "\x05\xD1\x04\x00\x01\xFF\x25" {
		t.Errorf("NAK bytes % X", ev[0].Data)
	}
	expect(t, f.Feed(resent, nil), fmt.Sprintf("drop bad_checksum %d", len(bad)), "reply ACK", "scan 1C HELLO")
	expect(t, f.Expire(nil))

	t.Run("byte by byte", func(t *testing.T) {
		f := NewFramer(4096)
		expect(t, feedChunks(f, cat(bad, resent), 1), "reply NAK", fmt.Sprintf("drop bad_checksum %d", len(bad)), "reply ACK", "scan 1C HELLO")
	})
}

func TestFramerACKsEachDecodeData(t *testing.T) {
	f := NewFramer(4096)
	a := mustPacket(t, OpDecodeData, 0x20, TypeQR, 'A')
	b := mustPacket(t, OpDecodeData, 0, TypeDataMatrix, 'B')
	ev := f.Feed(cat(a, b), nil)
	expect(t, ev, "reply ACK", "scan 1C A", "reply ACK", "scan 1B B")
	if string(ev[0].Data) != "\x04\xD0\x04\x00\xFF\x28" {
		t.Errorf("ACK bytes % X", ev[0].Data)
	}
}

func TestFramerRepliesFromScannerAreSilent(t *testing.T) {
	f := NewFramer(4096)
	stream := cat(
		mustPacket(t, OpAck, 0x80),                  // answer to START_SESSION
		mustPacket(t, OpNak, 0x80, CauseBadContext), // answer to something it did not like
		mustPacket(t, OpParamSend, 0x80, 0xFF, 0xF4, 0xF0, 0x3E, 0x04),
		mustPacket(t, 0xF6, 0, 0x01), // EVENT
	)
	expect(t, feedChunks(f, stream, 3))
	expect(t, f.Expire(nil))
	expect(t, f.Reset(nil))
}

func TestFramerContinuation(t *testing.T) {
	payload := []byte("continued data over three packets")
	stream := continued(t, TypePDF417, payload, 12)
	for _, size := range []int{1, 7, len(stream)} {
		ev := feedChunks(NewFramer(4096), stream, size)
		expect(t, ev, "reply ACK", "reply ACK", "reply ACK", "scan 11 "+string(payload))
	}
}

func TestFramerDuplicateRetransmit(t *testing.T) {
	f := NewFramer(4096)
	p := mustPacket(t, OpDecodeData, 0x20, TypeQR, 'X', 'Y')
	again := mustPacket(t, OpDecodeData, 0x20|StatusRetransmit, TypeQR, 'X', 'Y')
	expect(t, f.Feed(p, nil), "reply ACK", "scan 1C XY")
	// Our ACK was lost: the scanner resends; it must be ACKed again, not delivered again.
	expect(t, f.Feed(again, nil), "reply ACK", fmt.Sprintf("drop duplicate %d", len(again)))
	// A disconnect in between does not make it new either.
	f.Reset(nil)
	expect(t, f.Feed(again, nil), "reply ACK", fmt.Sprintf("drop duplicate %d", len(again)))
	// Scanning the same code again (no retransmit bit) is a new scan.
	expect(t, f.Feed(p, nil), "reply ACK", "scan 1C XY")
	// A retransmit of something else is delivered: we never had it.
	other := mustPacket(t, OpDecodeData, StatusRetransmit, TypeQR, 'Z')
	expect(t, f.Feed(other, nil), "reply ACK", "scan 1C Z")
}

// A repetitive scan cut into continuation packets is made of identical packets. When one
// is NAKed, its resend (retransmit bit set) carries the same bytes as the packet accepted
// before it, and must be delivered: the scan was once delivered 250 bytes short here.
func TestFramerResendAfterNAKEqualToLastPacket(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 100) // 1,000 bytes: four identical packets of 250
	stream := continued(t, TypeQR, payload, MaxData-1)
	var pk [][]byte
	for b := stream; len(b) > 0; b = b[int(b[0])+ckLen:] {
		pk = append(pk, b[:int(b[0])+ckLen])
	}
	if len(pk) != 4 || !bytes.Equal(pk[0], pk[1]) {
		t.Fatalf("want 4 packets, the first two identical: %d", len(pk))
	}
	retransmit := func(p []byte) []byte {
		p = bytes.Clone(p)
		p[3] |= StatusRetransmit
		binaryPutChecksum(p)
		return p
	}
	corrupt := bytes.Clone(pk[1])
	corrupt[len(corrupt)-1] ^= 0x01
	scan := func(ev []Event) []byte {
		t.Helper()
		var got []byte
		n := 0
		for _, e := range ev {
			if e.Kind == EventScan {
				got, n = e.Data, n+1
			}
		}
		if n != 1 {
			t.Fatalf("%d scans: %q", n, describe(ev))
		}
		return got
	}

	t.Run("NAK then resend", func(t *testing.T) {
		// The scanner's side of it: a packet waits for its answer, so the resend follows
		// the NAK; fed in one go and byte by byte, the events are the same.
		in := cat(pk[0], corrupt, retransmit(pk[1]), pk[2], pk[3])
		for _, size := range []int{1, 97, len(in)} {
			ev := feedChunks(NewFramer(4096), in, size)
			expect(t, ev, "reply ACK", "reply NAK", fmt.Sprintf("drop bad_checksum %d", len(corrupt)),
				"reply ACK", "reply ACK", "reply ACK", "scan 1C 01234567890123456789…(1000 bytes)")
			if got := scan(ev); !bytes.Equal(got, payload) {
				t.Fatalf("chunk %d: scan of %d bytes, want the %d sent", size, len(got), len(payload))
			}
		}
	})
	t.Run("resend after a packet cut short", func(t *testing.T) {
		// The second packet is lost half-way (no NAK: nothing complete arrived); the
		// scanner times out and resends it. The resend is new data, not a duplicate.
		f := NewFramer(4096)
		ev := f.Feed(cat(pk[0], pk[1][:100]), nil)
		ev = f.Expire(ev)
		ev = f.Feed(cat(retransmit(pk[1]), pk[2], pk[3]), ev)
		expect(t, ev, "reply ACK", "drop stale_partial 100", "reply ACK", "reply ACK", "reply ACK",
			"scan 1C 01234567890123456789…(1000 bytes)")
		if got := scan(ev); !bytes.Equal(got, payload) {
			t.Fatalf("scan of %d bytes", len(got))
		}
	})
	t.Run("resend after noise", func(t *testing.T) {
		// The second packet's length byte is garbled into a byte below 4: skipped as
		// noise along with the rest of it (no NAK), then resent after a time-out.
		f := NewFramer(4096)
		garbled := bytes.Clone(pk[1])
		garbled[0] = 0x02
		ev := f.Feed(cat(pk[0], garbled), nil)
		ev = f.Expire(ev)
		ev = f.Feed(cat(retransmit(pk[1]), pk[2], pk[3]), ev)
		if got := scan(ev); !bytes.Equal(got, payload) {
			t.Fatalf("scan of %d bytes: %q", len(got), describe(ev))
		}
	})
	t.Run("a lost ACK is still a duplicate", func(t *testing.T) {
		// Our ACK of the first packet is lost: its resend, with nothing in between, is the
		// duplicate; the second packet (no retransmit bit) equal to it is data.
		in := cat(pk[0], retransmit(pk[0]), pk[1], retransmit(pk[1]), pk[2], pk[3])
		ev := NewFramer(4096).Feed(in, nil)
		d := fmt.Sprintf("drop duplicate %d", len(pk[0]))
		expect(t, ev, "reply ACK", "reply ACK", d, "reply ACK", "reply ACK", d, "reply ACK", "reply ACK",
			"scan 1C 01234567890123456789…(1000 bytes)")
		if got := scan(ev); !bytes.Equal(got, payload) {
			t.Fatalf("scan of %d bytes", len(got))
		}
	})
	t.Run("not a retransmit, never a duplicate", func(t *testing.T) {
		// Identical packets without the retransmit bit are each data.
		ev := NewFramer(4096).Feed(cat(pk[0], pk[1], pk[1], pk[1], pk[3]), nil)
		if got := scan(ev); !bytes.Equal(got, bytes.Repeat([]byte("0123456789"), 125)) {
			t.Fatalf("scan of %d bytes: %q", len(got), describe(ev))
		}
	})
	t.Run("a disconnect mid-packet forgets it", func(t *testing.T) {
		// The port went away while the second packet was arriving: after the reconnect
		// the scanner resends that packet, not the first.
		f := NewFramer(4096)
		p := mustPacket(t, OpDecodeData, 0x20, TypeQR, 'X')
		f.Feed(cat(p, p[:3]), nil)
		f.Reset(nil)
		expect(t, f.Feed(retransmit(p), nil), "reply ACK", "scan 1C X")
	})
}

func TestFramerSegmentRetransmitMidScan(t *testing.T) {
	segs := specSegments(t)
	again := mustPacket(t, OpMultipacket, StatusRetransmit, append([]byte{1}, rep('Z', 250)...)...)
	f := NewFramer(4096)
	ev := f.Feed(cat(segs[0], segs[1], again, segs[2]), nil)
	expect(t, ev, "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK",
		fmt.Sprintf("drop duplicate %d", len(again)), "reply MULTIPACKET_ACK", "scan 1C ZZZZZZZZZZZZZZZZZZZZ…(500 bytes)")
}

func TestFramerSegmentErrors(t *testing.T) {
	segs := specSegments(t)
	t.Run("out of sequence", func(t *testing.T) {
		f := NewFramer(4096)
		expect(t, f.Feed(cat(segs[0], segs[2]), nil), "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK",
			fmt.Sprintf("drop bad_segment %d", len(segs[0])+len(segs[2])))
		expect(t, f.Feed(segs[1], nil), "reply MULTIPACKET_ACK", fmt.Sprintf("drop bad_segment %d", len(segs[1])))
		expect(t, f.Feed(cat(segs...), nil), "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK",
			"scan 1C ZZZZZZZZZZZZZZZZZZZZ…(500 bytes)")
	})
	t.Run("first segment without decode data", func(t *testing.T) {
		p := mustPacket(t, OpMultipacket, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 'A')
		expect(t, NewFramer(4096).Feed(p, nil), "reply MULTIPACKET_ACK", fmt.Sprintf("drop bad_segment %d", len(p)))
		short := mustPacket(t, OpMultipacket, 0, 0, OpDecodeData)
		expect(t, NewFramer(4096).Feed(short, nil), "reply MULTIPACKET_ACK", fmt.Sprintf("drop bad_segment %d", len(short)))
		none := mustPacket(t, OpMultipacket, 0)
		expect(t, NewFramer(4096).Feed(none, nil), "reply MULTIPACKET_ACK", fmt.Sprintf("drop bad_segment %d", len(none)))
	})
	t.Run("more data than announced", func(t *testing.T) {
		s := segmented(t, TypeQR, []byte("ABCDEF"))[0]
		// Announce 5 bytes but carry 6 (checksum recomputed: the packet itself is sound).
		p, _, _ := Parse(s)
		d := bytes.Clone(p.Data)
		d[segTotal+1] = 5
		over := mustPacket(t, OpMultipacket, 0, d...)
		expect(t, NewFramer(4096).Feed(over, nil), "reply MULTIPACKET_ACK", fmt.Sprintf("drop bad_segment %d", len(over)))
	})
	t.Run("a new scan abandons a half-assembled one", func(t *testing.T) {
		f := NewFramer(4096)
		one := mustPacket(t, OpDecodeData, 0, TypeQR, '1')
		expect(t, f.Feed(cat(segs[0], one), nil), "reply MULTIPACKET_ACK", "reply ACK",
			fmt.Sprintf("drop stale_partial %d", len(segs[0])), "scan 1C 1")
		expect(t, f.Feed(cat(segs[0], segs[0]), nil), "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK",
			fmt.Sprintf("drop stale_partial %d", len(segs[0])))
		cont := mustPacket(t, OpDecodeData, StatusContinuation, TypeQR, 'C')
		// The second first segment above is still half-assembled: the continued DECODE_DATA
		// abandons it, and a later segment cannot continue a continued DECODE_DATA.
		expect(t, f.Feed(cat(cont, segs[1]), nil), "reply ACK", fmt.Sprintf("drop stale_partial %d", len(segs[0])),
			"reply MULTIPACKET_ACK", fmt.Sprintf("drop bad_segment %d", len(cont)+len(segs[1])))
	})
	t.Run("announced zero", func(t *testing.T) {
		s := segmented(t, TypeQR, nil)
		expect(t, NewFramer(4096).Feed(s[0], nil), "reply MULTIPACKET_ACK", fmt.Sprintf("drop empty %d", len(s[0])))
	})
}

func TestFramerEmptyDecodeData(t *testing.T) {
	for _, data := range [][]byte{{TypeQR}, nil} {
		p := mustPacket(t, OpDecodeData, 0, data...)
		expect(t, NewFramer(4096).Feed(p, nil), "reply ACK", fmt.Sprintf("drop empty %d", len(p)))
	}
}

func TestFramerTooLong(t *testing.T) {
	segs := specSegments(t)
	f := NewFramer(499)
	expect(t, f.Feed(cat(segs...), nil), "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK",
		fmt.Sprintf("drop too_long %d", len(segs[0])+len(segs[1])+len(segs[2])))
	// Exactly at the limit is fine, and the framer is usable after a drop.
	f = NewFramer(500)
	expect(t, f.Feed(cat(segs...), nil), "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK",
		"scan 1C ZZZZZZZZZZZZZZZZZZZZ…(500 bytes)")

	stream := continued(t, TypeQR, rep('q', 30), 10)
	f = NewFramer(29)
	expect(t, f.Feed(stream, nil), "reply ACK", "reply ACK", "reply ACK", fmt.Sprintf("drop too_long %d", len(stream)))
	expect(t, f.Feed(mustPacket(t, OpDecodeData, 0, TypeQR, 'k'), nil), "reply ACK", "scan 1C k")
	if cap(f.scan) > 29 {
		t.Errorf("scan buffer grew to %d bytes, past the maximum 29", cap(f.scan))
	}
}

func TestFramerNoise(t *testing.T) {
	p := mustPacket(t, OpDecodeData, 0, TypeQR, 'o', 'k')
	f := NewFramer(4096)
	// Bytes that cannot be a length byte are skipped without a NAK.
	expect(t, f.Feed(cat([]byte{0, 1, 2, 3, 0}, p), nil), "drop noise 5", "reply ACK", "scan 1C ok")
}

func TestFramerExpire(t *testing.T) {
	p := mustPacket(t, OpDecodeData, 0, TypeQR, 'o', 'k')
	t.Run("a packet cut short", func(t *testing.T) {
		f := NewFramer(4096)
		expect(t, f.Feed(p[:5], nil))
		expect(t, f.Expire(nil), "drop stale_partial 5")
		expect(t, f.Expire(nil))
		expect(t, f.Feed(p, nil), "reply ACK", "scan 1C ok")
	})
	t.Run("a lone byte is reported, not forgotten", func(t *testing.T) {
		// Found by FuzzFramer: a run that emptied the buffer was never closed.
		f := NewFramer(4096)
		expect(t, f.Feed([]byte{'0'}, nil))
		expect(t, f.Expire(nil), "drop stale_partial 1")
		expect(t, f.Feed([]byte{0}, nil))
		expect(t, f.Expire(nil), "drop noise 1")
		expect(t, f.Reset(nil))
	})
	t.Run("a stray length byte hides the packet behind it", func(t *testing.T) {
		// 0xC8 announces 200 bytes; the scanner sends its packet and waits for an ACK.
		f := NewFramer(4096)
		expect(t, f.Feed(cat([]byte{0xC8}, p), nil))
		expect(t, f.Expire(nil), "drop stale_partial 1", "reply ACK", "scan 1C ok")
	})
	t.Run("a half-assembled scan survives, the segment resent after a lost ACK completes it", func(t *testing.T) {
		segs := specSegments(t)
		f := NewFramer(4096)
		f.Feed(cat(segs[0], segs[1]), nil)
		expect(t, f.Expire(nil))
		again := mustPacket(t, OpMultipacket, StatusRetransmit, append([]byte{1}, rep('Z', 250)...)...)
		expect(t, f.Feed(cat(again, segs[2]), nil), "reply MULTIPACKET_ACK", fmt.Sprintf("drop duplicate %d", len(again)),
			"reply MULTIPACKET_ACK", "scan 1C ZZZZZZZZZZZZZZZZZZZZ…(500 bytes)")
	})
}

func TestFramerReset(t *testing.T) {
	segs := specSegments(t)
	f := NewFramer(4096)
	f.Feed(cat(segs[0], segs[1][:10]), nil)
	expect(t, f.Reset(nil), fmt.Sprintf("drop disconnected %d", len(segs[0])+10))
	expect(t, f.Reset(nil))
	expect(t, f.Feed(cat(segs...), nil), "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK", "reply MULTIPACKET_ACK",
		"scan 1C ZZZZZZZZZZZZZZZZZZZZ…(500 bytes)")
}

// TestFramerJunk: 10 KB of junk, then good packets, whole and byte by byte. The good packets
// must arrive, the junk must cost at most one NAK, and every junk byte must be counted.
func TestFramerJunk(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 10<<10)
	for i := range junk {
		junk[i] = byte(r.UintN(256))
	}
	p := mustPacket(t, OpDecodeData, 0, TypeQR, 'g', 'o', 'o', 'd')
	stream := cat(junk, p, p)
	for _, size := range []int{1, 13, 512, len(stream)} {
		f := NewFramer(4096)
		ev := feedChunks(f, stream, size)
		ev = f.Expire(ev)
		var naks, dropped, scans int
		for _, e := range ev {
			switch {
			case e.Kind == EventReply && string(e.Data) == Nak:
				naks++
			case e.Kind == EventDrop:
				dropped += e.Dropped
			case e.Kind == EventScan:
				scans++
				if string(e.Data) != "good" {
					t.Errorf("chunk %d: scan %q from junk", size, e.Data)
				}
			}
		}
		if scans != 2 || naks > 1 || dropped != len(junk) {
			t.Errorf("chunk %d: %d scans, %d NAKs, %d bytes dropped of %d junk", size, scans, naks, dropped, len(junk))
		}
	}
}

func TestFramerScanDataIsFresh(t *testing.T) {
	f := NewFramer(4096)
	in := mustPacket(t, OpDecodeData, 0, TypeQR, 'k', 'e', 'e', 'p')
	ev := f.Feed(in, nil)
	kept := ev[1].Data
	in[5] = 'X' // the caller reuses its read buffer
	f.Feed(mustPacket(t, OpDecodeData, 0, TypeQR, 'n', 'e', 'x', 't'), nil)
	if string(kept) != "keep" {
		t.Errorf("kept scan changed to %q", kept)
	}
}

func TestNewFramerPanicsOnBadMax(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewFramer(0) did not panic")
		}
	}()
	NewFramer(0)
}
