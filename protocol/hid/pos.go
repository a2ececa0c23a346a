package hid

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

// Drop reasons of this package, beside those of protocol/framing (too_long, empty,
// stale_partial, disconnected). Stable codes: metrics and logs count them.
const (
	ReasonBadReport = "bad_report" // a report whose length byte does not fit the report, or that is cut short
	ReasonBadHex    = "bad_hex"    // keyboard hex-dump mode: a scan that is not pairs of hex digits
)

// Layout is a vendor's HID POS report layout (SCANNERS.md, USB HID POS).
type Layout uint8

const (
	Honeywell Layout = iota + 1 // also Access-IS: input ID 2, 64 bytes with AIM and a continuation flag
	Newland                     // input ID 2, output ID 4: [id][len][payload], 7E 00 frames both ways
	Microscan                   // ID 1 both ways: [01][len 0-62][data, NUL-padded]
)

var layoutNames = [...]string{Honeywell: "honeywell", Newland: "newland", Microscan: "microscan"}

func (l Layout) String() string {
	if l == 0 || int(l) >= len(layoutNames) {
		return "layout(" + strconv.Itoa(int(l)) + ")"
	}
	return layoutNames[l]
}

// LayoutNames lists the layouts ParseLayout knows.
func LayoutNames() []string { return []string{"honeywell", "newland", "microscan"} }

// ParseLayout reads a layout name (case and surrounding spaces do not matter).
func ParseLayout(s string) (Layout, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for l, n := range layoutNames {
		if n != "" && n == s {
			return Layout(l), nil
		}
	}
	return 0, errors.New("hid: layout " + strconv.Quote(s) + " is not one of " + strings.Join(LayoutNames(), ", "))
}

// Vendor ids whose scanners use a known layout.
const (
	VIDHandHeld  = 0x0536 // Hand Held Products (Honeywell)
	VIDHoneywell = 0x0C2E // Metrologic (Honeywell)
	VIDAccessIS  = 0x0DB5
	VIDNewland   = 0x1EAB
)

// LayoutForVID is the layout a vendor's scanners use, if this package knows it.
func LayoutForVID(vid uint16) (Layout, bool) {
	switch vid {
	case VIDHandHeld, VIDHoneywell, VIDAccessIS:
		return Honeywell, true
	case VIDNewland:
		return Newland, true
	}
	return 0, false
}

// ReportLen is the length of a layout's reports, report id included.
const ReportLen = 64

// Honeywell's 64-byte input report: [02][len][AIM ×3][data ×56][code id][00][flags].
const (
	honeywellData  = 56
	honeywellFlags = 63
	flagMore       = 0x01
)

// payloadLen is the most a Newland or Microscan report carries after [id][len].
const payloadLen = ReportLen - 2

func (l Layout) inputID() byte {
	if l == Microscan {
		return 0x01
	}
	return 0x02
}

func (l Layout) outputID() byte {
	switch l {
	case Honeywell:
		return 0xFD // raw serial menu commands; the trigger has its own report, HoneywellTrigger
	case Newland:
		return 0x04
	}
	return 0x01
}

// HoneywellTrigger is Honeywell's output report 4, a bit field: 04 04 triggers, 04 02
// untriggers.
func HoneywellTrigger(start bool) []byte {
	if start {
		return []byte{0x04, 0x04}
	}
	return []byte{0x04, 0x02}
}

// HoneywellRoute is the feature report that routes a Honeywell scanner's output to its
// HID POS interface; scanners without it refuse it, which is harmless.
func HoneywellRoute() []byte { return []byte{0xFE, 0x01} }

// Commands wraps a raw scanner command (a serial menu command, a 7E 00 frame) in the
// layout's output reports: [id][len][bytes…], as many as it takes. Newland and Microscan
// reports are padded to ReportLen; a Honeywell one is as long as its descriptor says,
// which the driver pads to.
func (l Layout) Commands(cmd []byte) [][]byte {
	var out [][]byte
	for len(cmd) > 0 {
		n := min(len(cmd), payloadLen)
		r := make([]byte, 0, ReportLen)
		r = append(r, l.outputID(), byte(n))
		r = append(r, cmd[:n]...)
		if l != Honeywell {
			r = r[:ReportLen]
		}
		out = append(out, r)
		cmd = cmd[n:]
	}
	return out
}

// POSConfig configures a POS decoder.
type POSConfig struct {
	Layout Layout
	// AIM: Newland and Microscan: strip an AIM identifier that starts the data and
	// report it. Honeywell carries the AIM identifier in its own bytes, always reported.
	AIM bool
	// Gap: a scan still waiting for more reports this long is over: Honeywell's (whose
	// continuation flag promised more) is dropped as stale_partial; Newland's and
	// Microscan's (whose last report was full) is delivered. Required.
	Gap     time.Duration
	MaxScan int // 1..framing.MaxScan; 0 means framing.MaxScan
}

// POS reassembles HID POS scans from input reports. It is not safe for concurrent use.
type POS struct {
	c       POSConfig
	s       scan
	aim     string // Honeywell: the AIM identifier of the scan in progress
	pending bool   // a scan is in progress
}

// NewPOS validates c and returns its decoder.
func NewPOS(c POSConfig) (*POS, error) {
	if c.Layout == 0 || int(c.Layout) >= len(layoutNames) {
		return nil, errors.New("hid: unknown layout " + c.Layout.String())
	}
	var err error
	if c.MaxScan, err = checkCommon(c.Gap, c.MaxScan); err != nil {
		return nil, err
	}
	return &POS{c: c, s: newScan(c.MaxScan + framing.AIMLen)}, nil
}

// Timeout is the gap after which Expire must be called while Pending.
func (p *POS) Timeout() time.Duration { return p.c.Gap }

// Pending reports whether a scan is waiting for more reports.
func (p *POS) Pending() bool { return p.pending }

// Feed consumes one input report, as read from the interrupt endpoint (report id
// first), and appends what it completes to out. Reports with another id are not scan
// data (status, replies of other interfaces) and are skipped.
func (p *POS) Feed(r []byte, out []framing.Output) []framing.Output {
	if len(r) == 0 || r[0] != p.c.Layout.inputID() {
		return out
	}
	if p.c.Layout == Honeywell {
		return p.feedHoneywell(r, out)
	}
	if len(r) < 2 || int(r[1]) > min(len(r)-2, payloadLen) {
		return p.bad(out, len(r))
	}
	data := r[2 : 2+int(r[1])]
	if !p.pending && p.c.Layout == Newland && isReply7E00(data) {
		return out // the scanner's answer to a command: never scan data
	}
	if len(data) == 0 && !p.pending {
		return out
	}
	p.add(data)
	if len(data) == payloadLen {
		return out // a full report: more may follow
	}
	return p.deliver(out)
}

func (p *POS) feedHoneywell(r []byte, out []framing.Output) []framing.Output {
	if len(r) < ReportLen || r[1] > honeywellData {
		return p.bad(out, len(r))
	}
	if !p.pending {
		p.aim = ""
		if framing.IsAIM(r[2:5]) {
			p.aim = string(r[2:5])
		}
	}
	p.add(r[5 : 5+int(r[1])])
	if r[honeywellFlags]&flagMore != 0 {
		return out
	}
	return p.deliver(out)
}

// Expire ends a scan that has waited Timeout() for more reports.
func (p *POS) Expire(out []framing.Output) []framing.Output {
	if !p.pending {
		return out
	}
	if p.c.Layout == Honeywell {
		return p.drop(out, framing.ReasonStalePartial)
	}
	return p.deliver(out)
}

// Reset forgets the scan in progress (the device went away) and reports it as a drop.
func (p *POS) Reset(out []framing.Output) []framing.Output {
	if !p.pending {
		return out
	}
	return p.drop(out, framing.ReasonDisconnected)
}

func (p *POS) add(data []byte) {
	p.pending = true
	p.s.add(data...)
}

func (p *POS) bad(out []framing.Output, n int) []framing.Output {
	if p.pending {
		n += p.s.size()
	}
	p.clear()
	return append(out, framing.Output{Kind: framing.KindDrop, Reason: ReasonBadReport, Dropped: n})
}

func (p *POS) drop(out []framing.Output, reason string) []framing.Output {
	n := p.s.size()
	p.clear()
	return append(out, framing.Output{Kind: framing.KindDrop, Reason: reason, Dropped: n})
}

func (p *POS) clear() {
	p.s.reset()
	p.aim, p.pending = "", false
}

func (p *POS) deliver(out []framing.Output) []framing.Output {
	if p.s.over > 0 {
		return p.drop(out, framing.ReasonTooLong)
	}
	data, aim := p.s.buf, p.aim
	if p.c.Layout != Honeywell && p.c.AIM && framing.IsAIM(data) {
		aim, data = string(data[:framing.AIMLen]), data[framing.AIMLen:]
	}
	switch {
	case len(data) == 0:
		return p.drop(out, framing.ReasonEmpty)
	case len(data) > p.c.MaxScan:
		return p.drop(out, framing.ReasonTooLong)
	}
	o := framing.Output{Kind: framing.KindScan, Data: bytes.Clone(data), AIM: aim}
	p.clear()
	return append(out, o)
}

// isReply7E00 reports whether p is exactly one 7E 00 protocol reply frame,
// 02 00 [status][len][data…][CRC-16/XMODEM of status, len and data]: what a Newland
// scanner answers a command with (02 00 00 01 00 33 31 for a register write).
func isReply7E00(p []byte) bool {
	if len(p) < 6 || p[0] != 0x02 || p[1] != 0x00 || len(p) != 4+int(p[3])+2 {
		return false
	}
	c := trigger.CRC16XModem(p[2 : len(p)-2])
	return p[len(p)-2] == byte(c>>8) && p[len(p)-1] == byte(c)
}
