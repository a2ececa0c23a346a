package framing

import (
	"bytes"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

// Drop reasons (Output.Reason). They are stable codes: metrics and logs count them.
const (
	ReasonTooLong      = "too_long"      // a scan longer than MaxScan; with line framing, everything up to the next suffix
	ReasonEmpty        = "empty"         // a scan with nothing left once prefix, AIM identifier and replies are stripped
	ReasonStalePartial = "stale_partial" // line: a partial scan with no byte for Gap; ssi: see protocol/ssi
	ReasonDisconnected = "disconnected"  // input pending at Reset
	// ssi only (protocol/ssi documents them).
	ReasonBadChecksum = ssi.ReasonBadChecksum
	ReasonNoise       = ssi.ReasonNoise
	ReasonBadSegment  = ssi.ReasonBadSegment
	ReasonDuplicate   = ssi.ReasonDuplicate
)

// trimmer strips the framing around a complete scan and decides whether it is delivered.
type trimmer struct {
	prefix []byte
	suffix []byte // idle, ssi: stripped when present; line: nil, the terminator is gone already
	aim    bool
	max    int
	id     string // the AIM identifier seen last: scanners repeat theirs, so it is reused
}

// deliver appends to out the scan framed in raw, or the reason it is dropped; n is the
// number of input bytes the frame took. If owned, raw is a fresh slice that can be handed
// out; otherwise the scan is copied. symbology is reported when raw carries no AIM
// identifier.
//
// The prefix is looked for before and after the AIM identifier: vendors place the AIM
// identifier on either side of a custom prefix.
func (t *trimmer) deliver(out []Output, raw []byte, n int, owned bool, symbology string) []Output {
	s, cut := bytes.CutPrefix(raw, t.prefix)
	if t.aim && IsAIM(s) {
		if string(s[:AIMLen]) != t.id {
			t.id = string(s[:AIMLen])
		}
		symbology = t.id
		s = s[AIMLen:]
		if !cut {
			s, _ = bytes.CutPrefix(s, t.prefix)
		}
	}
	s, _ = bytes.CutSuffix(s, t.suffix)
	switch {
	case len(s) == 0:
		return append(out, Output{Kind: KindDrop, Reason: ReasonEmpty, Dropped: n})
	case len(s) > t.max:
		return append(out, Output{Kind: KindDrop, Reason: ReasonTooLong, Dropped: n})
	}
	if !owned {
		s = bytes.Clone(s)
	}
	return append(out, Output{Kind: KindScan, Data: s, AIM: symbology})
}
