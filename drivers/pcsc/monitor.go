package pcsc

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ebfe/scard"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/cards"
)

// slot is what the monitor knows of one card reader.
type slot struct {
	present bool
	counter uint32 // pcsc-lite's and Windows' card event count (upper 16 bits of the state)
}

// monitor is one PC/SC context's watch over the readers; it lives on Run's goroutine.
type monitor struct {
	d    *Device
	sc   *scard.Context
	sink device.Sink
	psam *psam // nil without a PSAM reader

	rs        []scard.ReaderState // rs[0] is the PnP notification, then the card readers
	slots     map[string]*slot
	all       []string  // every reader the context lists
	refreshed time.Time // zero: refresh before the next wait
	healthy   bool      // the context listed readers: the service was there
	shown     string    // readers last reported in a state, to report changes only
}

func newMonitor(d *Device, sc *scard.Context, sink device.Sink) *monitor {
	m := &monitor{d: d, sc: sc, sink: sink, slots: map[string]*slot{}}
	if d.cfg.PSAMReader != "" {
		m.psam = &psam{m: m}
	}
	return m
}

func (m *monitor) close() {
	if m.psam != nil {
		m.psam.drop()
	}
}

// run watches until ctx ends (nil) or the context dies (the error).
func (m *monitor) run(ctx context.Context) error {
	// SCardCancel wakes a blocked GetStatusChange. Release must not race it, so run
	// waits for the cancel to finish before its caller releases the context.
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		m.sc.Cancel()
	})
	defer func() {
		if !stop() {
			<-cancelled
		}
	}()
	for ctx.Err() == nil {
		if time.Since(m.refreshed) >= m.d.cfg.Refresh {
			if err := m.refresh(); err != nil {
				return err
			}
		}
		wait := max(m.d.cfg.Refresh-time.Since(m.refreshed), time.Millisecond)
		err := m.sc.GetStatusChange(m.rs, wait)
		switch {
		case err == nil:
		case err == scard.ErrTimeout, err == scard.ErrCancelled:
			continue
		case readerGone(err):
			m.refreshed = time.Time{}
			continue
		default:
			return err
		}
		if pnp := &m.rs[0]; pnp.EventState&scard.StateChanged != 0 {
			pnp.CurrentState = pnp.EventState &^ scard.StateChanged
			m.refreshed = time.Time{}
		}
		for i := 1; i < len(m.rs); i++ {
			r := &m.rs[i]
			if r.EventState&scard.StateChanged == 0 {
				continue
			}
			// The state returned is the next current state: GetStatusChange then
			// blocks until something differs from what we have seen.
			r.CurrentState = r.EventState &^ scard.StateChanged
			m.changed(ctx, r)
		}
	}
	return nil
}

// refresh reads the reader list again and keeps the state of readers still there.
func (m *monitor) refresh() error {
	all, err := m.sc.ListReaders()
	switch {
	case err == scard.ErrNoReadersAvailable:
		all, err = nil, nil
	case err != nil && contextDead(err):
		return err
	case err != nil:
		m.d.log.Warn("reader list not read", "err", err)
		all = nil
	}
	m.healthy = true
	m.refreshed = time.Now()
	m.all = all
	old := map[string]scard.ReaderState{}
	for _, r := range m.rs[min(1, len(m.rs)):] {
		old[r.Reader] = r
	}
	rs := []scard.ReaderState{{Reader: pnp, CurrentState: scard.StateFlag(len(all) << 16)}}
	if len(m.rs) > 0 && m.rs[0].CurrentState>>16 == rs[0].CurrentState>>16 {
		rs[0] = m.rs[0]
	}
	var names []string
	for _, name := range all {
		if !matches(m.d.cfg.Reader, name) || matches(m.d.cfg.PSAMReader, name) {
			continue
		}
		names = append(names, name)
		if o, ok := old[name]; ok {
			rs = append(rs, o)
			delete(old, name)
			continue
		}
		rs = append(rs, scard.ReaderState{Reader: name, CurrentState: scard.StateUnaware})
		m.slots[name] = &slot{}
	}
	for name := range old {
		if m.slots[name].present {
			m.state(device.StateConnected, ReasonCardRemoved, name)
		}
		delete(m.slots, name)
	}
	m.rs = rs
	shown := "readers: " + strings.Join(names, ", ")
	if len(names) == 0 {
		shown = "no reader matches " + quote(m.d.cfg.Reader) + "; readers: " + strings.Join(all, ", ")
	}
	if shown != m.shown {
		m.shown = shown
		if len(names) == 0 {
			m.state(device.StateDisconnected, ReasonNoReader, shown)
		} else {
			m.state(device.StateConnected, "", shown)
		}
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

func (m *monitor) state(state, reason, detail string) { m.d.state(m.sink, state, reason, detail) }

// changed handles a new state of one card reader.
func (m *monitor) changed(ctx context.Context, r *scard.ReaderState) {
	s := m.slots[r.Reader]
	ev := r.EventState
	counter := uint32(ev) >> 16
	switch {
	case ev&(scard.StateUnknown|scard.StateUnavailable) != 0:
		m.refreshed = time.Time{} // the reader is going away
		if s.present {
			s.present = false
			m.state(device.StateConnected, ReasonCardRemoved, r.Reader)
		}
	case ev&scard.StatePresent != 0:
		// Our own connect and reset change the state too; only a new count is a new card.
		if s.present && counter == s.counter {
			return
		}
		if s.present {
			// A new count while we thought a card was in: the card was pulled and one
			// put back between two waits. Say the first one left before reading the next,
			// so a kiosk never sees two cards arrive without one leaving.
			m.state(device.StateConnected, ReasonCardRemoved, r.Reader)
		}
		s.present, s.counter = true, counter
		m.read(ctx, r, ev&scard.StateMute != 0)
	case ev&scard.StateEmpty != 0:
		if s.present {
			s.present, s.counter = false, counter
			m.state(device.StateConnected, ReasonCardRemoved, r.Reader)
		}
	}
}

// Errors of conn, told apart from the reader's own.
var (
	errDeadline = errors.New("pcsc: read timeout")
	errStopping = errors.New("pcsc: stopping")
)

// conn is a card or PSAM handle bounded by the read's deadline and Run's context: a
// command starts only before both end (one already sent runs to its end).
type conn struct {
	card     *scard.Card
	ctx      context.Context
	deadline time.Time
}

func (c conn) Transmit(cmd []byte) ([]byte, error) {
	if c.ctx.Err() != nil {
		return nil, errStopping
	}
	if !time.Now().Before(c.deadline) {
		return nil, errDeadline
	}
	return c.card.Transmit(cmd)
}

// read reads the card just inserted in r's reader and reports it.
func (m *monitor) read(ctx context.Context, r *scard.ReaderState, mute bool) {
	start := time.Now()
	cr := &device.CardRead{Kind: cards.KindUnknown, Reader: r.Reader, ATR: bytes.Clone(r.Atr)}
	var err error
	if mute {
		cr.Reason = ReasonCardMute
	} else {
		err = m.readCard(ctx, r, cr, start.Add(m.d.cfg.ReadTimeout))
	}
	if ctx.Err() != nil {
		return // stopping: the sink takes nothing more, and the read was cut short
	}
	m.sink.Read(device.Read{Device: m.d.cfg.Name, Driver: "pcsc", Kind: "card", Card: cr, At: time.Now()})
	attrs := []any{"reader", r.Reader, "kind", cr.Kind, "reason", cr.Reason, "took", time.Since(start).Round(time.Millisecond).String()}
	if cr.Identity != nil {
		attrs = append(attrs, "partial", cr.Identity.IdentityPartial, "photo", len(cr.Identity.Photo) > 0)
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error()) // tags and status words only (protocol/cards)
	}
	m.d.log.Info("card read", attrs...)
}

// readCard fills cr from the card in r's reader.
func (m *monitor) readCard(ctx context.Context, r *scard.ReaderState, cr *device.CardRead, deadline time.Time) error {
	card, err := m.sc.Connect(r.Reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		switch err {
		case scard.ErrNoSmartcard, scard.ErrRemovedCard:
			cr.Reason = ReasonCardRemoved
		case scard.ErrUnresponsiveCard, scard.ErrUnpoweredCard, scard.ErrUnsupportedCard:
			cr.Reason = ReasonCardMute
		case scard.ErrSharingViolation:
			cr.Reason = ReasonCardBusy
		default:
			cr.Reason = cards.ReasonReadFailed
		}
		return err
	}
	// A reset on the way out: the card leaves this read with no authentication that
	// another program could ride on.
	defer card.Disconnect(scard.ResetCard)
	if st, err := card.Status(); err == nil && len(st.Atr) > 0 {
		cr.ATR = st.Atr
	}
	opts := cards.Options{NoPhoto: m.d.cfg.NoPhoto}
	if m.psam != nil {
		var psamCard *scard.Card
		psamCard, opts.NoPSAMReason = m.psam.get(ctx, deadline)
		if psamCard != nil {
			opts.PSAM = conn{card: psamCard, ctx: ctx, deadline: deadline}
		}
	}
	read := func() cards.Result {
		// A transaction keeps other programs sharing the reader from interleaving
		// their commands with ours.
		if card.BeginTransaction() == nil {
			defer card.EndTransaction(scard.LeaveCard)
		}
		return cards.Read(conn{card: card, ctx: ctx, deadline: deadline}, cr.ATR, opts)
	}
	res := read()
	// Another program reset the card under our handle (its own disconnect, say): the
	// handle needs a Reconnect, and the read one more go, within the same deadline.
	if errors.Is(res.Err, scard.ErrResetCard) && card.Reconnect(scard.ShareShared, scard.ProtocolAny, scard.LeaveCard) == nil {
		res = read()
	}
	// A command the reader could not carry to the card (SCARD_E_NOT_TRANSACTED: a
	// glitch on the reader's line, vpcd's socket under load) while the card stayed in:
	// one more go within the same deadline, rather than asking the patient to insert
	// the card again. A card pulled out is not read again.
	if errors.Is(res.Err, scard.ErrNotTransacted) && !m.gone(r, deadline) && time.Now().Before(deadline) {
		res = read()
	}
	cr.Kind, cr.Identity, cr.Reason, cr.Info = res.Kind, res.Identity, res.Reason, res.Info
	var pe *cards.PSAMError
	if errors.As(res.Err, &pe) && m.psam != nil {
		m.psam.drop() // opened afresh for the next card
	}
	if res.Reason == cards.ReasonReadFailed {
		switch {
		case errors.Is(res.Err, errDeadline):
			cr.Reason = ReasonTimeout
		case errors.Is(res.Err, errStopping):
		case m.gone(r, deadline):
			cr.Reason = ReasonCardRemoved
		}
	}
	return res.Err
}

// gone reports whether the card in r's reader left it (or was replaced): after a failed
// command it tells a pulled card from a failing one. It waits for the reader to say so
// up to removalWait, but never past until, the read's deadline (CARDS.md: a fault ends
// the read with an event within 2 s): a fault near the deadline gets one look at the
// reader's state and no wait, and keeps the reason the read gave it.
func (m *monitor) gone(r *scard.ReaderState, until time.Time) bool {
	counter := uint32(r.CurrentState) >> 16
	rs := []scard.ReaderState{{Reader: r.Reader, CurrentState: r.CurrentState}}
	if d := time.Now().Add(removalWait); d.Before(until) {
		until = d
	}
	for {
		left := max(time.Until(until), 0) // 0: look, do not wait
		err := m.sc.GetStatusChange(rs, left)
		switch {
		case err == nil:
		case readerGone(err):
			return true // the reader itself went, the card with it
		default:
			return false // timeout: still there; cancelled or dead: not ours to judge
		}
		ev := rs[0].EventState
		if ev&scard.StatePresent == 0 || uint32(ev)>>16 != counter {
			return true
		}
		if left == 0 {
			return false
		}
		rs[0].CurrentState = ev &^ scard.StateChanged
	}
}

// readersMatching lists the readers of the last refresh that pattern names.
func (m *monitor) readersMatching(pattern string) []string {
	return slices.DeleteFunc(slices.Clone(m.all), func(r string) bool { return !matches(pattern, r) })
}
