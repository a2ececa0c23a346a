package framing

import (
	"bytes"
	"time"
)

// stream is the line framing (a terminator ends a scan) and the idle framing (Expire ends
// it: term is nil).
//
// A frame is collected in buf, whose capacity is fixed at New to the longest frame that
// can still hold a scan of MaxScan bytes once prefix, AIM identifier and suffix are
// stripped. A frame that outgrows it is too long for certain: its bytes are then only
// counted, and with line framing the terminator is still watched for, so the scan after
// it is not lost; with idle framing the gap ends it.
type stream struct {
	trimmer
	term   []byte // line: the terminator; idle: nil
	fail   []int  // KMP failure function of term: finds it without buffering the bytes
	ignore [][]byte
	gap    time.Duration

	buf        []byte
	probing    bool // buf is still a prefix of some Ignore entry
	discarding bool // the frame is too long: its bytes are counted in over, not kept
	over       int
	k          int // while discarding: bytes of term matched at the end of the input
}

func newStream(t trimmer, term []byte, ignore [][]byte, gap time.Duration, frame int) *stream {
	longest := 0
	for _, r := range ignore {
		longest = max(longest, len(r))
	}
	s := &stream{
		trimmer: t,
		term:    term,
		ignore:  ignore,
		gap:     gap,
		buf:     make([]byte, 0, max(frame, longest)),
		probing: len(ignore) > 0,
	}
	if len(term) > 0 {
		s.fail = make([]int, len(term))
		for i, k := 1, 0; i < len(term); i++ {
			for k > 0 && term[i] != term[k] {
				k = s.fail[k-1]
			}
			if term[i] == term[k] {
				k++
			}
			s.fail[i] = k
		}
	}
	return s
}

func (s *stream) Timeout() time.Duration { return s.gap }

func (s *stream) Feed(p []byte, out []Output) []Output {
	for len(p) > 0 {
		switch {
		case s.discarding:
			end := s.findTerm(p)
			if end < 0 {
				s.over += len(p)
				return out
			}
			out = append(out, Output{Kind: KindDrop, Reason: ReasonTooLong, Dropped: s.over + end})
			s.next()
			p = p[end:]

		case s.probing:
			// Byte by byte while the frame may still be a scanner reply: only its first
			// few bytes go this way.
			s.buf = append(s.buf, p[0])
			p = p[1:]
			switch s.reply() {
			case whole:
				s.buf = s.buf[:0]
				continue
			case partial:
				continue
			}
			s.probing = false
			if s.term != nil && bytes.HasSuffix(s.buf, s.term) {
				out = s.line(out)
			}

		default:
			// Up to and including the next byte that may end the terminator.
			n, last := len(p), -1
			if s.term != nil {
				if last = bytes.IndexByte(p, s.term[len(s.term)-1]); last >= 0 {
					n = last + 1
				}
			}
			if len(s.buf)+n > cap(s.buf) {
				s.discard()
				continue
			}
			s.buf = append(s.buf, p[:n]...)
			p = p[n:]
			if last >= 0 && bytes.HasSuffix(s.buf, s.term) {
				out = s.line(out)
			}
		}
	}
	return out
}

// Expire ends a scan (idle) or drops a partial one (line).
func (s *stream) Expire(out []Output) []Output {
	switch {
	case s.discarding:
		out = append(out, Output{Kind: KindDrop, Reason: ReasonTooLong, Dropped: s.over})
	case len(s.buf) == 0:
		return out
	case s.term == nil && !s.probing:
		out = s.deliver(out, s.buf, len(s.buf), false, "")
	default: // a line without its terminator, or a scanner reply cut short
		out = append(out, Output{Kind: KindDrop, Reason: ReasonStalePartial, Dropped: len(s.buf)})
	}
	s.next()
	return out
}

func (s *stream) Reset(out []Output) []Output {
	if n := s.over + len(s.buf); n > 0 {
		out = append(out, Output{Kind: KindDrop, Reason: ReasonDisconnected, Dropped: n})
	}
	s.next()
	return out
}

// line delivers the frame in buf, which ends with the terminator.
func (s *stream) line(out []Output) []Output {
	out = s.deliver(out, s.buf[:len(s.buf)-len(s.term)], len(s.buf), false, "")
	s.next()
	return out
}

// next gets ready for the next frame.
func (s *stream) next() {
	s.buf = s.buf[:0]
	s.discarding, s.over, s.k = false, 0, 0
	s.probing = len(s.ignore) > 0
}

// discard turns the frame in buf into a too-long one whose bytes are only counted. The
// end of buf may hold the start of the terminator: the matcher picks it up from there.
func (s *stream) discard() {
	s.discarding, s.over = true, len(s.buf)
	if s.term != nil {
		s.k = 0
		s.findTerm(s.buf[max(0, len(s.buf)-len(s.term)+1):])
	}
	s.buf = s.buf[:0]
}

// findTerm returns the index just past the first terminator ending in p, continuing a
// match begun in earlier input (s.k), or -1. Idle framing has none.
func (s *stream) findTerm(p []byte) int {
	if s.term == nil {
		return -1
	}
	k := s.k
	for i := 0; i < len(p); i++ {
		if k == 0 {
			j := bytes.IndexByte(p[i:], s.term[0])
			if j < 0 {
				break
			}
			i += j
		}
		for k > 0 && p[i] != s.term[k] {
			k = s.fail[k-1]
		}
		if p[i] == s.term[k] {
			k++
		}
		if k == len(s.term) {
			s.k = 0
			return i + 1
		}
	}
	s.k = k
	return -1
}

type replyMatch int

const (
	none replyMatch = iota
	partial
	whole
)

// reply says whether buf is an Ignore entry, or the start of one.
func (s *stream) reply() replyMatch {
	m := none
	for _, r := range s.ignore {
		if len(s.buf) <= len(r) && bytes.Equal(r[:len(s.buf)], s.buf) {
			if len(s.buf) == len(r) {
				return whole
			}
			m = partial
		}
	}
	return m
}
