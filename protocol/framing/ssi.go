package framing

import (
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

// ssiFramer is the "ssi" framing: protocol/ssi's Framer does the packets, ACKs and
// reassembly; this adds what every framing does to a scan (prefix, AIM identifier and
// suffix stripped, MaxScan). SSI scanners send their configured prefix, suffix and AIM
// identifier inside the decode data, so they are stripped here too.
type ssiFramer struct {
	trimmer
	d   *ssi.Framer
	gap time.Duration
	ev  []ssi.Event // reused between calls

	typ byte   // barcode type seen last, and
	sym string // its Output.AIM form: scanners repeat types, so it is reused
}

func (s *ssiFramer) Timeout() time.Duration { return s.gap }

func (s *ssiFramer) Feed(p []byte, out []Output) []Output {
	s.ev = s.d.Feed(p, s.ev[:0])
	return s.convert(out)
}

func (s *ssiFramer) Expire(out []Output) []Output {
	s.ev = s.d.Expire(s.ev[:0])
	return s.convert(out)
}

func (s *ssiFramer) Reset(out []Output) []Output {
	s.ev = s.d.Reset(s.ev[:0])
	return s.convert(out)
}

func (s *ssiFramer) convert(out []Output) []Output {
	for _, e := range s.ev {
		switch e.Kind {
		case ssi.EventReply:
			out = append(out, Output{Kind: KindReply, Data: e.Data})
		case ssi.EventDrop:
			out = append(out, Output{Kind: KindDrop, Reason: e.Reason, Dropped: e.Dropped})
		case ssi.EventScan:
			if s.sym == "" || e.Type != s.typ {
				s.typ, s.sym = e.Type, ssiAIM(e.Type)
			}
			out = s.deliver(out, e.Data, len(e.Data), true, s.sym)
		}
	}
	clear(s.ev) // the scans belong to the caller now
	return out
}
