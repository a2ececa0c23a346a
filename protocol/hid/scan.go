package hid

import (
	"errors"
	"strconv"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// scan is the data of the scan in progress, bounded: past the capacity fixed when its
// decoder is made, bytes are only counted, so a runaway scanner costs no memory.
type scan struct {
	buf  []byte
	over int // bytes of a scan too long to keep
}

func newScan(capacity int) scan { return scan{buf: make([]byte, 0, capacity)} }

func (s *scan) add(b ...byte) {
	if s.over > 0 || len(s.buf)+len(b) > cap(s.buf) {
		s.over += len(s.buf) + len(b)
		s.buf = s.buf[:0]
		return
	}
	s.buf = append(s.buf, b...)
}

// size is how many bytes the scan has had, kept or counted.
func (s *scan) size() int { return len(s.buf) + s.over }

func (s *scan) reset() { s.buf, s.over = s.buf[:0], 0 }

// checkCommon validates what both decoders are configured with, and returns MaxScan
// with its default applied.
func checkCommon(gap time.Duration, maxScan int) (int, error) {
	if gap <= 0 {
		return 0, errors.New("hid: the gap must be positive")
	}
	switch {
	case maxScan == 0:
		return framing.MaxScan, nil
	case maxScan < 0 || maxScan > framing.MaxScan:
		return 0, errors.New("hid: MaxScan " + strconv.Itoa(maxScan) + " is outside 1.." + strconv.Itoa(framing.MaxScan))
	}
	return maxScan, nil
}
