package vscanner

import (
	"context"
	"math/rand/v2"
	"time"
)

// SendOption changes how one scan is sent.
type SendOption func(*sendOpts)

type sendOpts struct {
	bad []int
}

// BadChecksum makes the first transmission of each listed SSI packet of the scan (0 is
// the first packet or segment) carry a wrong checksum; a correct host NAKs it and gets
// it resent.
func BadChecksum(packets ...int) SendOption {
	return func(o *sendOpts) { o.bad = append(o.bad, packets...) }
}

// Send sends one scan in the configured framing and returns when its last byte is
// written (idle: and the gap after it has passed; SSI: and every packet is
// acknowledged). A write blocked because nothing reads the slave returns at Pull or
// Close; ctx ends the waits between writes.
func (s *Scanner) Send(ctx context.Context, payload []byte, opts ...SendOption) error {
	var o sendOpts
	for _, f := range opts {
		f(&o)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	var err error
	switch s.cfg.Framing {
	case SSI:
		err = s.sendSSI(ctx, payload, o)
	case Idle:
		err = s.pace.write(ctx, s.write, s.frame(payload, nil))
		if err == nil {
			// The gap counts from when the last byte is on the wire, not from the write.
			err = sleep(ctx, s.pace.untilFree()+s.cfg.Gap)
		}
	default:
		err = s.pace.write(ctx, s.write, s.frame(payload, s.cfg.Suffix))
	}
	if err == nil {
		s.scans.Add(1)
	}
	return err
}

func (s *Scanner) frame(payload, suffix []byte) []byte {
	b := make([]byte, 0, len(s.cfg.Prefix)+len(s.cfg.AIM)+len(payload)+len(suffix))
	b = append(b, s.cfg.Prefix...)
	b = append(b, s.cfg.AIM...)
	b = append(b, payload...)
	return append(b, suffix...)
}

// SendRaw writes b as it is, paced: line noise, a partial scan, a scan framed by hand.
func (s *Scanner) SendRaw(ctx context.Context, b []byte) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.pace.write(ctx, s.write, b)
}

// Noise returns n pseudo-random bytes from seed that contain none of the excluded
// bytes (pass the terminator, so the noise cannot end a scan by chance).
func Noise(n int, seed uint64, exclude ...byte) []byte {
	var skip [256]bool
	for _, c := range exclude {
		skip[c] = true
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, 0, n)
	for len(b) < n {
		if c := byte(r.Uint32()); !skip[c] {
			b = append(b, c)
		}
	}
	return b
}

// pacer spaces writes so that throughput matches a serial line at baud with 10 bits a
// byte. It writes about a millisecond of bytes at a time: finer would only measure the
// timer, coarser would open gaps inside a scan that an idle framer could take for its end.
type pacer struct {
	byteTime time.Duration
	chunk    int
	next     time.Time // when the line is free again
}

func newPacer(baud int) pacer {
	if baud <= 0 {
		return pacer{}
	}
	bt := 10 * time.Second / time.Duration(baud)
	return pacer{byteTime: bt, chunk: max(1, int(time.Millisecond/bt))}
}

// untilFree is how long until the last byte written is on the wire.
func (p *pacer) untilFree() time.Duration {
	if p.byteTime == 0 {
		return 0
	}
	return max(0, time.Until(p.next))
}

// slack is how far behind schedule the pacer may fall and still catch up by sending
// without pauses; beyond it the line counts as having been idle.
const slack = 10 * time.Millisecond

func (p *pacer) write(ctx context.Context, w func([]byte) error, b []byte) error {
	if p.byteTime == 0 {
		return w(b)
	}
	for len(b) > 0 {
		now := time.Now()
		if now.Sub(p.next) > slack {
			p.next = now
		}
		if err := sleep(ctx, p.next.Sub(now)); err != nil {
			return err
		}
		n := min(p.chunk, len(b))
		if err := w(b[:n]); err != nil {
			return err
		}
		p.next = p.next.Add(time.Duration(n) * p.byteTime)
		b = b[n:]
	}
	return nil
}
