package pcsc

import (
	"context"
	"fmt"
	"time"

	"github.com/ebfe/scard"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/cards"
)

// psam is the PSAM of a monitor: opened at first need after each power-on, then held
// (exclusively: another program's commands would change its state) until it fails, is
// reset or removed, or the context goes.
type psam struct {
	m      *monitor
	card   *scard.Card
	reader string

	// A PIN the PSAM refused is not presented again to the same insertion of it.
	refusedReader  string
	refusedCounter uint32
	refused        bool

	reported string // last state reason, to report changes only
}

// get returns the open PSAM, opening it if need be, or nil and the reason it has none
// (for cards.Options.NoPSAMReason).
func (p *psam) get(ctx context.Context, deadline time.Time) (*scard.Card, string) {
	if p.card != nil {
		_, err := p.card.Status()
		if err == nil {
			return p.card, ""
		}
		// Reset by another program, or pulled and put back: the handle needs a
		// Reconnect with a reset, and the PSAM its SELECT and VERIFY again.
		if (err == scard.ErrResetCard || err == scard.ErrRemovedCard) &&
			p.card.Reconnect(scard.ShareExclusive, scard.ProtocolAny, scard.ResetCard) == nil {
			if reason := p.open(ctx, deadline, p.counter()); reason != "" {
				return nil, reason
			}
			return p.card, ""
		}
		p.drop()
	}
	cfg := p.m.d.cfg
	readers := p.m.readersMatching(cfg.PSAMReader)
	if len(readers) == 0 {
		return nil, p.report(ReasonPSAMAbsent, "no reader matches "+quote(cfg.PSAMReader))
	}
	p.reader = readers[0]
	counter := p.counter()
	if counter == 0 {
		return nil, p.report(ReasonPSAMAbsent, "no PSAM in "+p.reader)
	}
	if p.refused && p.refusedReader == p.reader && p.refusedCounter == counter {
		return nil, ReasonPSAMPIN
	}
	card, err := p.m.sc.Connect(p.reader, scard.ShareExclusive, scard.ProtocolAny)
	if err != nil {
		return nil, p.report(ReasonPSAMFailed, p.reader+": "+err.Error())
	}
	p.card = card
	if reason := p.open(ctx, deadline, counter); reason != "" {
		return nil, reason
	}
	return p.card, ""
}

// counter is the card event count of the PSAM's reader, 0 when it has no card.
func (p *psam) counter() uint32 {
	rs := []scard.ReaderState{{Reader: p.reader, CurrentState: scard.StateUnaware}}
	if p.m.sc.GetStatusChange(rs, 0) != nil || rs[0].EventState&scard.StatePresent == 0 {
		return 0
	}
	return max(uint32(rs[0].EventState)>>16, 1)
}

// open runs SELECT DF01 and VERIFY on the connected PSAM; "" when it is ready.
func (p *psam) open(ctx context.Context, deadline time.Time, counter uint32) string {
	err := cards.OpenPSAM(conn{card: p.card, ctx: ctx, deadline: deadline}, p.m.d.cfg.PSAMPIN)
	if err == nil {
		p.refused = false
		p.report(ReasonPSAMReady, p.reader)
		return ""
	}
	p.drop()
	if tries, ok := cards.PINRejected(err); ok {
		p.refused, p.refusedReader, p.refusedCounter = true, p.reader, counter
		detail := fmt.Sprintf("%s: PIN refused; %d tries left; not presented again until the PSAM is reinserted or the configuration changes", p.reader, tries)
		if tries < 0 {
			detail = p.reader + ": PIN refused; not presented again until the PSAM is reinserted or the configuration changes"
		}
		p.m.d.log.Error("PSAM refused its PIN", "reason", ReasonPSAMPIN, "reader", p.reader, "tries_left", tries)
		return p.report(ReasonPSAMPIN, detail)
	}
	return p.report(ReasonPSAMFailed, p.reader+": "+err.Error())
}

// report sends a state when the PSAM's condition changes and returns the reason.
func (p *psam) report(reason, detail string) string {
	if reason != p.reported {
		p.reported = reason
		p.m.state(device.StateConnected, reason, detail)
	}
	return reason
}

func (p *psam) drop() {
	if p.card != nil {
		p.card.Disconnect(scard.ResetCard)
		p.card = nil
	}
}
