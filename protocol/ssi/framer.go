package ssi

import (
	"bytes"
	"encoding/binary"
)

// Reasons a Framer drops input. They are stable codes (metrics and logs count them) and
// protocol/framing reports them unchanged.
const (
	ReasonBadChecksum  = "bad_checksum"  // a packet failed its checksum (a NAK was sent), and the bytes skipped after it
	ReasonNoise        = "noise"         // bytes that cannot start a packet (length byte below 4), skipped to resynchronise
	ReasonStalePartial = "stale_partial" // a packet cut short (Expire), or a scan left half-way when the next one began
	ReasonBadSegment   = "bad_segment"   // a multipacket segment out of sequence, without decode data, or past the announced length
	ReasonTooLong      = "too_long"      // a scan longer than the Framer's maximum
	ReasonEmpty        = "empty"         // a scan with no data
	ReasonDuplicate    = "duplicate"     // a retransmit of the packet accepted last: our ACK was lost; it is ACKed again
	ReasonDisconnected = "disconnected"  // input pending when Reset was called
)

// EventKind says what an Event carries.
type EventKind uint8

const (
	EventScan  EventKind = iota + 1 // Data and Type are a complete scan
	EventReply                      // Data must be written to the scanner
	EventDrop                       // Reason and Dropped describe input thrown away
)

// Event is one result of feeding a Framer.
type Event struct {
	Kind    EventKind
	Data    []byte // scan payload (a fresh slice the caller owns), or a reply packet (shared: do not modify)
	Type    byte   // scan: barcode type, see TypeName
	Reason  string // drop: one of the Reason constants
	Dropped int    // drop: bytes thrown away, packet headers and checksums included
}

// Byte offsets inside a multipacket segment (SCANNERS.md counts from the length byte),
// made relative to Packet.Data.
const (
	segIndex     = 4 - headerLen  // segment number, from 0
	segOpcode    = 5 - headerLen  // first segment: embedded DECODE_DATA header starts here
	segType      = 10 - headerLen // first segment: barcode type
	segTotal     = 12 - headerLen // first segment: total data length, big-endian, 2 bytes
	segFirstData = 14 - headerLen // first segment: data
	segData      = 5 - headerLen  // later segments: data
)

// bufLen holds one packet being completed plus room to read the next.
const bufLen = 2 * MaxPacket

// Reassembly modes.
const (
	modeNone      = iota
	modeContinued // DECODE_DATA packets with the continuation bit
	modeSegments  // multipacket segments
)

// Framer turns the bytes a scanner sends in SSI mode into scans, and says which ACK or NAK
// to send back. It is pure: the caller reads and writes the port, and calls Expire when
// no byte has arrived for a while (a gap a scanner never leaves inside a packet).
//
// Rules, where SCANNERS.md leaves room:
//   - Every DECODE_DATA is ACKed and every multipacket segment is MULTIPACKET_ACKed once its
//     checksum is right, even when the scan it belongs to is then dropped (too long, out of
//     sequence): the scanner must not be left waiting. Other packets (ACK, NAK, parameter
//     replies, events) are consumed without a reply or an event.
//   - A packet whose checksum fails gets one NAK (cause resend). Then bytes are skipped one
//     at a time until a complete packet with a good checksum is found, looking past bytes
//     that could still be the start of an incomplete packet; no further NAK is sent for
//     that run of bad bytes, which is reported as one drop when it ends. A length byte
//     below 4 starts such a run too, as "noise", without a NAK: nothing shows a packet was
//     lost, and a NAK would only make the scanner resend one already delivered.
//   - A retransmit (status bit 0) identical, status aside, to the packet accepted last is
//     ACKed again and dropped as "duplicate": our ACK was lost, and the scanner, having
//     sent nothing since, resends what we already have. Only that case: a packet without
//     the retransmit bit is never a duplicate, and the memory is forgotten as soon as any
//     byte arrives that is not a good packet (a NAKed packet, noise, a packet cut short,
//     bytes pending at Reset). Such bytes show the scanner sent something after the
//     packet we ACKed, so its next retransmit is of that, and may carry the very same
//     bytes: a long repetitive scan cut into continuation packets is made of identical
//     ones. Mistaking that resend for a duplicate would deliver the scan a packet short,
//     silently. The cost is the rare double fault (our ACK lost and the resend garbled):
//     the packet is then delivered twice, which a repeated scan survives as well as a
//     short one would. The memory survives a Reset with nothing pending, so a scan is not
//     delivered twice across a short disconnect.
//   - Expire drops the bytes of a packet cut short, and delivers any complete packet found
//     after them. A scan half-reassembled from complete packets is kept: if our ACK was lost,
//     the scanner resends the segment after its own time-out, which may be longer than ours.
//     It is dropped ("stale_partial") when another scan begins, or at Reset.
//
// Memory: two packets of input and one scan of at most the maximum given to NewFramer.
type Framer struct {
	max int

	buf [bufLen]byte // bytes not yet parsed; after each step fewer than MaxPacket remain
	n   int

	skipping bool   // resynchronising after a bad packet
	skipped  int    // bytes skipped in this run
	why      string // reason of this run

	mode  int
	typ   byte
	scan  []byte // data so far, at most max bytes
	got   int    // data bytes received for the scan, kept or not
	raw   int    // wire bytes of the packets of the scan
	over  bool   // the scan is longer than max: its bytes are counted, not kept
	total int    // modeSegments: announced data length
	next  int    // modeSegments: index of the segment expected next

	last  [MaxLen]byte // header and data of the packet accepted last, retransmit bit cleared
	lastN int          // 0: no packet a retransmit could duplicate

	ack, mack, nak []byte
}

// NewFramer returns a Framer that delivers scans of at most maxScan data bytes and drops
// longer ones as "too_long". It panics if maxScan is not positive.
func NewFramer(maxScan int) *Framer {
	if maxScan <= 0 {
		panic("ssi: NewFramer: maxScan must be positive")
	}
	return &Framer{max: maxScan, ack: []byte(Ack), mack: []byte(MultipacketAck), nak: []byte(Nak)}
}

// Feed consumes bytes read from the scanner and appends the events they complete to ev.
func (f *Framer) Feed(p []byte, ev []Event) []Event {
	for len(p) > 0 {
		k := copy(f.buf[f.n:], p)
		f.n += k
		p = p[k:]
		ev = f.drain(ev, false)
	}
	return ev
}

// Expire is called when no byte has arrived for the caller's time-out: bytes of a packet
// that cannot be completed any more are dropped. Without pending bytes it does nothing.
func (f *Framer) Expire(ev []Event) []Event {
	return f.drain(ev, true)
}

// Reset forgets pending bytes and any half-reassembled scan (the port went away) and
// reports them as one "disconnected" drop.
func (f *Framer) Reset(ev []Event) []Event {
	lost := f.n + f.skipped
	if f.n > 0 {
		f.lastN = 0 // part of a packet sent after the one accepted last (see skip)
	}
	if f.mode != modeNone {
		lost += f.raw
	}
	f.n, f.skipping, f.skipped = 0, false, 0
	f.end()
	if lost > 0 {
		ev = append(ev, Event{Kind: EventDrop, Reason: ReasonDisconnected, Dropped: lost})
	}
	return ev
}

// drain handles every packet in buf. Unless final, it keeps the bytes that may still
// become a packet; final (Expire) empties buf.
func (f *Framer) drain(ev []Event, final bool) []Event {
	for f.n > 0 {
		if f.skipping {
			var found bool
			if ev, found = f.resync(ev, final); !found {
				return ev
			}
			continue
		}
		pk, size, err := Parse(f.buf[:f.n])
		switch err.(type) {
		case nil:
			ev = f.packet(pk, f.buf[:size], ev)
			f.shift(size)
		case ChecksumError:
			ev = append(ev, Event{Kind: EventReply, Data: f.nak})
			f.skip(ReasonBadChecksum)
		case LengthError:
			f.skip(ReasonNoise)
		default: // ErrShort
			if !final {
				return ev
			}
			f.skip(ReasonStalePartial)
		}
	}
	if final && f.skipping {
		ev = f.endRun(ev) // the run emptied buf: nothing more can end it
	}
	return ev
}

// skip starts a run of bad bytes with the byte at the head of buf. Those bytes are the
// scanner's (or the line's) after the packet accepted last, so that packet is forgotten:
// the next retransmit is of whatever they were, not a duplicate (see Framer).
func (f *Framer) skip(why string) {
	f.skipping, f.why, f.skipped = true, why, 1
	f.lastN = 0
	f.shift(1)
}

// resync looks for the earliest complete packet with a good checksum in buf. Found, the
// bytes before it end the run (reported as one drop) and it is left at the head of buf.
// Not found, the bytes before the first that may still start a packet are skipped (all of
// them if final). Prefix sums keep this linear in len(buf) however often it runs.
func (f *Framer) resync(ev []Event, final bool) ([]Event, bool) {
	var sum [bufLen + 1]uint16
	for i, b := range f.buf[:f.n] {
		sum[i+1] = sum[i] + uint16(b)
	}
	keep := f.n
	for i := 0; i < f.n; i++ {
		l := int(f.buf[i])
		switch {
		case l < MinLen: // cannot start a packet
		case i+l+ckLen > f.n:
			keep = min(keep, i)
		case binary.BigEndian.Uint16(f.buf[i+l:]) == -(sum[i+l] - sum[i]):
			f.skipped += i
			f.shift(i)
			return f.endRun(ev), true
		}
	}
	if final {
		keep = f.n
	}
	f.skipped += keep
	f.shift(keep)
	if final {
		ev = f.endRun(ev)
	}
	return ev, false
}

func (f *Framer) endRun(ev []Event) []Event {
	ev = append(ev, Event{Kind: EventDrop, Reason: f.why, Dropped: f.skipped})
	f.skipping, f.skipped = false, 0
	return ev
}

func (f *Framer) shift(k int) {
	f.n = copy(f.buf[:], f.buf[k:f.n])
}

// packet handles one packet with a good checksum; raw is its wire form.
func (f *Framer) packet(pk Packet, raw []byte, ev []Event) []Event {
	var reply []byte
	switch pk.Opcode {
	case OpDecodeData:
		reply = f.ack
	case OpMultipacket:
		reply = f.mack
	default:
		return ev
	}
	ev = append(ev, Event{Kind: EventReply, Data: reply})
	body := raw[:len(raw)-ckLen]
	if pk.Status&StatusRetransmit != 0 && f.isLast(body) {
		return append(ev, Event{Kind: EventDrop, Reason: ReasonDuplicate, Dropped: len(raw)})
	}
	f.lastN = copy(f.last[:], body)
	f.last[3] &^= StatusRetransmit
	if pk.Opcode == OpDecodeData {
		return f.decodeData(pk, len(raw), ev)
	}
	return f.segment(pk, len(raw), ev)
}

func (f *Framer) isLast(body []byte) bool {
	last := f.last[:f.lastN]
	return f.lastN > 0 && len(body) == len(last) &&
		bytes.Equal(body[:3], last[:3]) &&
		body[3]&^StatusRetransmit == last[3] &&
		bytes.Equal(body[4:], last[4:])
}

func (f *Framer) decodeData(pk Packet, size int, ev []Event) []Event {
	if f.mode == modeSegments {
		ev = f.abandon(ReasonStalePartial, ev)
	}
	var typ byte
	data := pk.Data
	if len(data) > 0 {
		// Every DECODE_DATA packet carries the type, continuation packets too.
		typ, data = data[0], data[1:]
	}
	if f.mode == modeNone {
		f.begin(modeContinued, typ)
	}
	f.add(data, size)
	if pk.Status&StatusContinuation != 0 {
		return ev
	}
	return f.complete(ev)
}

func (f *Framer) segment(pk Packet, size int, ev []Event) []Event {
	d := pk.Data
	switch {
	case len(d) > segIndex && d[segIndex] == 0:
		if f.mode != modeNone {
			ev = f.abandon(ReasonStalePartial, ev)
		}
		if len(d) < segFirstData || d[segOpcode] != OpDecodeData {
			return append(ev, Event{Kind: EventDrop, Reason: ReasonBadSegment, Dropped: size})
		}
		f.begin(modeSegments, d[segType])
		f.total = int(binary.BigEndian.Uint16(d[segTotal:]))
		f.next = 1
		f.add(d[segFirstData:], size)
	case f.mode == modeSegments && len(d) > segIndex && int(d[segIndex]) == f.next:
		f.next++
		f.add(d[segData:], size)
	default:
		if f.mode == modeNone {
			return append(ev, Event{Kind: EventDrop, Reason: ReasonBadSegment, Dropped: size})
		}
		f.raw += size
		return f.abandon(ReasonBadSegment, ev)
	}
	switch {
	case f.got == f.total:
		return f.complete(ev)
	case f.got > f.total:
		return f.abandon(ReasonBadSegment, ev)
	}
	return ev
}

func (f *Framer) begin(mode int, typ byte) {
	f.mode, f.typ = mode, typ
	f.scan = f.scan[:0]
	f.got, f.raw, f.over, f.total, f.next = 0, 0, false, 0, 0
}

// add appends scan data from a packet of size wire bytes, keeping at most max bytes.
func (f *Framer) add(data []byte, size int) {
	f.raw += size
	f.got += len(data)
	if f.over {
		return
	}
	need := len(f.scan) + len(data)
	if need > f.max {
		f.over, f.scan = true, f.scan[:0]
		return
	}
	if need > cap(f.scan) {
		// Grow by doubling, but never past max: the bound is exact.
		s := make([]byte, len(f.scan), min(max(need, 2*cap(f.scan)), f.max))
		copy(s, f.scan)
		f.scan = s
	}
	f.scan = append(f.scan, data...)
}

func (f *Framer) complete(ev []Event) []Event {
	switch {
	case f.over:
		ev = append(ev, Event{Kind: EventDrop, Reason: ReasonTooLong, Dropped: f.raw})
	case len(f.scan) == 0:
		ev = append(ev, Event{Kind: EventDrop, Reason: ReasonEmpty, Dropped: f.raw})
	default:
		ev = append(ev, Event{Kind: EventScan, Data: bytes.Clone(f.scan), Type: f.typ})
	}
	f.end()
	return ev
}

func (f *Framer) abandon(why string, ev []Event) []Event {
	ev = append(ev, Event{Kind: EventDrop, Reason: why, Dropped: f.raw})
	f.end()
	return ev
}

func (f *Framer) end() {
	f.mode = modeNone
	f.scan = f.scan[:0]
}
