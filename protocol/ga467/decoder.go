package ga467

import (
	"bytes"
	"encoding/binary"
)

// Reasons a Decoder drops input. They are stable codes: drivers report them unchanged,
// and metrics and logs count them.
const (
	ReasonNoise        = "noise"        // bytes before a preamble
	ReasonBadLength    = "bad_length"   // a preamble whose LEN is outside MinLen..MaxLen
	ReasonBadChecksum  = "bad_checksum" // a complete frame whose CHK is wrong
	ReasonTruncated    = "truncated"    // a frame still incomplete when the line went quiet (Expire)
	ReasonDisconnected = "disconnected" // input pending when Reset was called
)

// EventKind says what an Event carries.
type EventKind uint8

const (
	EventFrame EventKind = iota + 1 // Body is a frame's body with a good CHK
	EventDrop                       // Reason and Dropped describe bytes thrown away
)

// Event is one result of feeding a Decoder.
type Event struct {
	Kind    EventKind
	Body    []byte // frame: the bytes between LEN and CHK, a fresh slice the caller owns
	Reason  string // drop: one of the Reason constants
	Dropped int    // drop: how many bytes
}

// Decoder cuts a byte stream into frames, in either direction (the host decodes answers,
// a virtual reader commands). The zero value is ready to use.
//
// Resynchronisation: the Decoder looks for the preamble; a frame whose LEN is out of
// bounds or whose CHK is wrong is not skipped whole (its LEN may be the corrupt byte, and
// junk may contain a false preamble whose LEN swallows the real frame after it), but only
// up to the next preamble after its first byte. A frame whose LEN reaches beyond the bytes
// received so far is waited for; when the line then goes quiet, the caller calls Expire,
// which drops it and delivers any complete frame found behind it.
//
// Memory: the Decoder holds fewer than MaxFrame bytes between calls, and two frames'
// worth while working. Event bodies are copies.
type Decoder struct {
	buf [2 * MaxFrame]byte
	n   int
}

// Pending is how many bytes wait for the rest of a frame (or of a preamble).
func (d *Decoder) Pending() int { return d.n }

// Feed appends what the decoder finds in p (frames and drops, in stream order) to out.
func (d *Decoder) Feed(p []byte, out []Event) []Event {
	for len(p) > 0 {
		k := copy(d.buf[d.n:], p)
		d.n += k
		p = p[k:]
		out = d.scan(out, false)
	}
	return out
}

// Expire tells the decoder the line has gone quiet, so a frame still incomplete never
// will be: it is dropped ("truncated"), with a partial preamble at the end ("noise"), and
// any complete frame found behind it is delivered. Afterwards nothing is pending.
func (d *Decoder) Expire(out []Event) []Event {
	return d.scan(out, true)
}

// Reset forgets pending input (a port closed, a new command about to be sent), reported
// as one "disconnected" drop.
func (d *Decoder) Reset(out []Event) []Event {
	if d.n > 0 {
		out = append(out, Event{Kind: EventDrop, Reason: ReasonDisconnected, Dropped: d.n})
		d.n = 0
	}
	return out
}

var preamble = []byte(Preamble)

// scan consumes what it can of buf. Unless expire is set, it stops at a frame or preamble
// that needs more bytes, so that afterwards fewer than MaxFrame bytes remain and the next
// Feed has room for at least one more frame.
func (d *Decoder) scan(out []Event, expire bool) []Event {
	i := 0     // start of what is not consumed yet
	noise := 0 // a run of noise bytes not reported yet: one drop per run, not per byte
	flush := func() {
		if noise > 0 {
			out = append(out, Event{Kind: EventDrop, Reason: ReasonNoise, Dropped: noise})
			noise = 0
		}
	}
	// skip drops the bytes from the bad frame start at i up to the next preamble after it,
	// or to a partial preamble at the end (which may still become one).
	skip := func(reason string) {
		rest := d.buf[i+1 : d.n]
		k := bytes.Index(rest, preamble)
		if k < 0 {
			k = len(rest)
			if !expire {
				k -= partialPreamble(rest)
			}
		}
		flush()
		out = append(out, Event{Kind: EventDrop, Reason: reason, Dropped: 1 + k})
		i += 1 + k
	}
	for {
		rest := d.buf[i:d.n]
		j := bytes.Index(rest, preamble)
		if j < 0 {
			keep := 0
			if !expire {
				keep = partialPreamble(rest)
			}
			noise += len(rest) - keep
			i = d.n - keep
			break
		}
		noise += j
		i += j
		rest = rest[j:]
		if len(rest) < HeaderLen {
			if !expire {
				break
			}
			skip(ReasonTruncated)
			continue
		}
		l := int(binary.BigEndian.Uint16(rest[PreambleLen:]))
		if l < MinLen || l > MaxLen {
			skip(ReasonBadLength)
			continue
		}
		n := HeaderLen + l
		if len(rest) < n {
			if !expire {
				break
			}
			skip(ReasonTruncated)
			continue
		}
		if Checksum(rest[PreambleLen:n-1]) != rest[n-1] {
			skip(ReasonBadChecksum)
			continue
		}
		flush()
		out = append(out, Event{Kind: EventFrame, Body: bytes.Clone(rest[HeaderLen : n-1])})
		i += n
	}
	flush()
	if i > 0 {
		d.n = copy(d.buf[:], d.buf[i:d.n])
	}
	return out
}

// partialPreamble is the length of the longest suffix of b that is a proper prefix of the
// preamble: bytes that the next read may complete into one.
func partialPreamble(b []byte) int {
	for k := min(len(b), PreambleLen-1); k > 0; k-- {
		if bytes.HasSuffix(b, preamble[:k]) {
			return k
		}
	}
	return 0
}
