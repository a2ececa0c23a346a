// Package pipeline turns device reads into identity events, in one direction:
// read → classify → verify → event → journal (durable) → subscribers.
//
// One goroutine owns the whole path, so events get their seq in the order their reads
// arrived and no two reads race for the journal. An event that no device read (a card
// application's, agent/apply) joins the same path at the journal through Record, so
// the journal keeps its one writer and such events get their seq, event_id and
// delivery like every other. An event is handed to subscribers (the
// local API, the console) only after the journal has committed it: a kiosk is never
// told of an identity that a crash could still lose.
//
// Group commit: the reads that queued up while a commit was running are taken together
// (up to MaxGroup) and, with a BatchJournal, committed in one transaction — one fsync
// for all of them — before any of them is told. A read that arrives alone is committed
// at once, never held back to wait for company.
package pipeline

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/reserve"
	"github.com/ehc-agent/ehc-agent/offline/verify"
	"github.com/ehc-agent/ehc-agent/protocol/codes"
	"github.com/ehc-agent/ehc-agent/protocol/event"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

// Verifier decides on an EHC1 code offline.
type Verifier interface {
	Verify(text []byte, device string, now time.Time) verify.Result
}

// Journal makes an event durable: it assigns the event's seq and returns only once the
// event would survive a crash. outbox.ErrFull means committed, but over the cap.
type Journal interface {
	Append(e *event.Event) error
}

// BatchJournal is a Journal that can commit several events in one transaction (group
// commit): all are durable, in order, when AppendAll returns nil or outbox.ErrFull, and
// none is otherwise.
type BatchJournal interface {
	Journal
	AppendAll(es []*event.Event) error
}

// MaxGroup bounds the events committed together.
const MaxGroup = 64

// TimingObserver is implemented by a Subscriber that also wants to know where an
// event's time goes (the local API's ehc_agent_verify_seconds and
// ehc_agent_journal_commit_seconds): each offline verification, and each journal
// commit with the number of events it made durable. On most disks the commit is the
// largest part of a scan's latency, and the one an installer can change (the
// state_dir's storage). It is called on the pipeline's goroutine and must not block.
type TimingObserver interface {
	ObserveVerify(d time.Duration)
	ObserveCommit(d time.Duration, events int)
}

// Channeler is implemented by a Subscriber that takes the codes routed to a channel of
// their own (CODES.md: payment and insurance codes, PLATFORM.md: "the local API's
// payment message to the kiosk"): the code unmasked, which is in no event, journal or
// log. It is called on the pipeline's goroutine right after the code's event was told
// (so the event's seq is known), and must not block or keep the code.
type Channeler interface {
	Channel(e *event.Event, code string)
}

// FailureObserver is implemented by a Subscriber that wants to know of the reads whose
// events could not be committed (a full disk with its reserve used up, an I/O error).
// Nobody is told such a read's identity, since a crash could lose it, but the kiosk can
// tell the patient at once to be served by hand, instead of waiting for an event that
// will never come. reason is ReasonDiskFull, ReasonStateDirLost or ReasonJournalFailed.
// It is called on the pipeline's goroutine and must not block.
type FailureObserver interface {
	NotCommitted(r device.Read, reason string)
}

// Stable reasons of a read whose event was not committed.
const (
	ReasonDiskFull      = "disk_full"      // no space left on state_dir's disk, the reserve included
	ReasonJournalFailed = "journal_failed" // any other failure of the commit
	// ReasonStateDirLost: the database file was deleted or replaced while open (state_dir
	// removed by a script or by hand), so a commit into it is not durable.
	ReasonStateDirLost = "state_dir_lost"
)

// ErrStateDirLost is what a Journal's error wraps when its file was unlinked: the read
// is reported with ReasonStateDirLost.
var ErrStateDirLost = errors.New(ReasonStateDirLost)

// Resolver asks the platform whose an ehc_online code is (PLATFORM.md /codes/resolve).
type Resolver interface {
	Resolve(ctx context.Context, code string) (*event.Identity, error)
}

// ResolveError turns a Resolver's error into the stable reason the event reports, and
// says whether the code stays pending (the platform could not answer) rather than
// being invalid (the platform said no).
type ResolveError func(err error) (reason string, pending bool)

// MaxResolving bounds the online resolutions in flight; further online codes wait.
const MaxResolving = 8

// Subscriber receives committed events. It must not block: it is called on the
// pipeline's goroutine.
type Subscriber interface {
	Event(e *event.Event)
}

// Options are what the pipeline needs to know beside its parts.
type Options struct {
	TerminalID   string
	Insurance    []*regexp.Regexp
	Resolver     Resolver         // nil: ehc_online codes stay pending (no platform configured)
	ResolveError ResolveError     // required with Resolver
	Now          func() time.Time // trusted time (PLATFORM.md, Time); nil = time.Now
	Logger       *slog.Logger
}

// Stats counts what the pipeline did; read with Snapshot.
type Stats struct {
	Reads, Events, DoubleReads, JournalErrors uint64
}

// Pipeline is the one owner of the read → event path.
type Pipeline struct {
	opts    atomic.Pointer[Options]
	verify  Verifier
	journal Journal
	reads   chan device.Read
	records chan record   // Record's events; unbuffered: taken means committed or failed
	stopped chan struct{} // closed when Run returns
	// resolved carries online codes back from their resolution; resolving bounds them.
	resolved  chan resolution
	resolving chan struct{}
	inflight  sync.WaitGroup

	mu   sync.Mutex
	subs []Subscriber

	group   []pending // reused by Run's goroutine
	events_ []*event.Event

	reads_, events, doubles, jerrs atomic.Uint64
}

// New builds a pipeline. Run must be called to start it.
func New(o Options, v Verifier, j Journal) *Pipeline {
	p := &Pipeline{verify: v, journal: j, reads: make(chan device.Read, 64), records: make(chan record), stopped: make(chan struct{}),
		resolved: make(chan resolution, MaxResolving), resolving: make(chan struct{}, MaxResolving)}
	p.SetOptions(o)
	return p
}

// SetOptions replaces the options (a configuration reload) for the reads that follow.
func (p *Pipeline) SetOptions(o Options) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p.opts.Store(&o)
}

// Subscribe adds s to the receivers of committed events.
func (p *Pipeline) Subscribe(s Subscriber) {
	p.mu.Lock()
	p.subs = append(p.subs, s)
	p.mu.Unlock()
}

// Submit queues a read. It blocks while the pipeline is busy (the device's OS buffer
// holds further bytes meanwhile) and gives up only when ctx ends.
func (p *Pipeline) Submit(ctx context.Context, r device.Read) error {
	select {
	case p.reads <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrStopped: Record was called after Run returned.
var ErrStopped = errors.New("pipeline: stopped")

// record is an event no device read, waiting for the pipeline's goroutine.
type record struct {
	e    *event.Event
	done chan error
}

// Record commits e, an event that no device read (agent/apply's card_application),
// on the pipeline's goroutine like a read's event: it gets its event_id, terminal_id,
// occurred_at (trusted time, when e has none) and, from the journal, its seq; it is
// durable before the subscribers see it. Record returns once e is committed (nil) or
// could not be (the journal's error); ctx bounds only the wait for the goroutine to
// take it, and ErrStopped means it never will.
func (p *Pipeline) Record(ctx context.Context, e *event.Event) error {
	rec := record{e: e, done: make(chan error, 1)}
	select {
	case p.records <- rec:
	case <-p.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-rec.done
}

func (p *Pipeline) record(rec record) {
	o := p.opts.Load()
	id, err := uuid.NewV7()
	if err != nil {
		panic(fmt.Sprintf("uuid: %v", err)) // only if the system's randomness fails
	}
	e := rec.e
	e.EventID, e.TerminalID = id.String(), o.TerminalID
	if e.OccurredAt.IsZero() {
		e.OccurredAt = o.Now().UTC()
	}
	rec.done <- p.commit(device.Read{Device: e.Source.Device}, e, o)
}

// Run processes reads until ctx is done, then drains what was already queued so that
// no accepted read is lost at shutdown.
func (p *Pipeline) Run(ctx context.Context) {
	defer close(p.stopped)
	for {
		select {
		case r := <-p.reads:
			p.processQueued(ctx, r)
		case res := <-p.resolved:
			p.commit(res.read, res.event, p.opts.Load())
		case rec := <-p.records:
			p.record(rec)
		case <-ctx.Done():
			// Resolutions in flight end within the resolver's timeout; their reads are
			// accepted and must not be lost.
			done := make(chan struct{})
			go func() { p.inflight.Wait(); close(done) }()
			for {
				select {
				case r := <-p.reads:
					p.processQueued(ctx, r)
				case res := <-p.resolved:
					p.commit(res.read, res.event, p.opts.Load())
				case rec := <-p.records:
					p.record(rec)
				case <-done:
					for {
						select {
						case r := <-p.reads:
							p.processQueued(ctx, r)
						case res := <-p.resolved:
							p.commit(res.read, res.event, p.opts.Load())
						case rec := <-p.records:
							p.record(rec)
						default:
							return
						}
					}
				}
			}
		}
	}
}

// resolution is an online code's event, completed off the pipeline goroutine.
type resolution struct {
	read  device.Read
	event *event.Event
}

// resolve asks the platform about an online code without holding up other reads; the
// event comes back through p.resolved and is committed then.
func (p *Pipeline) resolve(ctx context.Context, r device.Read, e *event.Event, code string, o *Options) {
	p.resolving <- struct{}{} // bounded: waits only when MaxResolving are in flight
	p.inflight.Add(1)
	go func() {
		defer p.inflight.Done()
		defer func() { <-p.resolving }()
		// The resolver has its own short timeout; a stopping agent still waits for it,
		// so that the read is committed.
		id, err := o.Resolver.Resolve(context.WithoutCancel(ctx), code)
		v := e.Verification
		if err == nil {
			v.Status, v.Reason, e.Identity = "valid", "", id
		} else if reason, pending := o.ResolveError(err); pending {
			v.Reason = reason
		} else {
			v.Status, v.Reason = "invalid", reason
		}
		p.resolved <- resolution{read: r, event: e}
	}()
}

// Snapshot returns the counters.
func (p *Pipeline) Snapshot() Stats {
	return Stats{Reads: p.reads_.Load(), Events: p.events.Load(), DoubleReads: p.doubles.Load(), JournalErrors: p.jerrs.Load()}
}

// pending is a read whose event waits for its commit; code is the unmasked code of a
// payment or insurance read, for the Channelers once the event is told.
type pending struct {
	read  device.Read
	event *event.Event
	code  string
}

// processQueued processes first and whatever reads are already queued behind it (up to
// MaxGroup), committing their events together.
func (p *Pipeline) processQueued(ctx context.Context, first device.Read) {
	o := p.opts.Load()
	g := p.group[:0]
	g = p.add(ctx, g, first, o)
	if _, batch := p.journal.(BatchJournal); batch {
	drain:
		for len(g) < MaxGroup {
			select {
			case r := <-p.reads:
				g = p.add(ctx, g, r, o)
			default:
				break drain
			}
		}
	}
	p.commitGroup(g, o)
	clear(g) // no event outlives its turn in the reused slice
	p.group = g[:0]
}

// add builds r's event and appends it to g, unless r is a double read (no event) or an
// online code sent to be resolved (committed when it comes back).
func (p *Pipeline) add(ctx context.Context, g []pending, r device.Read, o *Options) []pending {
	p.reads_.Add(1)
	e, online, ok := p.build(r, o)
	if !ok {
		p.doubles.Add(1)
		o.Logger.Debug("double read", "device", r.Device)
		return g
	}
	if online != "" && o.Resolver != nil {
		p.resolve(ctx, r, e, online, o)
		return g
	}
	q := pending{read: r, event: e}
	if t := e.Code; t != nil && (t.Type == codes.TypePayment || t.Type == codes.TypeInsurance) {
		q.code = string(r.Data)
	}
	return append(g, q)
}

// commitGroup commits g's events in one transaction when the journal can, then tells
// the subscribers of each, in order.
func (p *Pipeline) commitGroup(g []pending, o *Options) {
	bj, batch := p.journal.(BatchJournal)
	if len(g) == 1 || !batch {
		for _, q := range g {
			p.tell(q.read, q.event, q.code, p.append(q.event), o)
		}
		return
	}
	es := p.events_[:0]
	for _, q := range g {
		es = append(es, q.event)
	}
	t0 := time.Now()
	err := bj.AppendAll(es)
	p.observeCommit(time.Since(t0), len(es))
	clear(es)
	p.events_ = es[:0]
	for _, q := range g {
		p.tell(q.read, q.event, q.code, err, o)
	}
}

// commit makes e durable and only then tells the subscribers; the error is the
// journal's when e was not committed (Record reports it).
func (p *Pipeline) commit(r device.Read, e *event.Event, o *Options) error {
	return p.tell(r, e, "", p.append(e), o)
}

// append commits e alone, timed.
func (p *Pipeline) append(e *event.Event) error {
	t0 := time.Now()
	err := p.journal.Append(e)
	p.observeCommit(time.Since(t0), 1)
	return err
}

// tell tells the subscribers of e once its journal write returned err, then hands a
// payment or insurance read's code (code, unmasked) to the Channelers, and returns err
// unless the event was committed all the same. An event not committed is told to no
// one, and its code goes nowhere.
func (p *Pipeline) tell(r device.Read, e *event.Event, code string, err error, o *Options) error {
	if errors.Is(err, outbox.ErrFull) {
		// Committed all the same: nothing is dropped. The status says outbox_full so
		// the kiosk can fall back; each event over the cap is logged with the reason
		// too (in a group that crossed it, the ones before it were within).
		var full *outbox.FullError
		if !errors.As(err, &full) || e.Seq >= full.From {
			o.Logger.Warn("outbox over its cap", "reason", "outbox_full", "seq", e.Seq)
		}
		err = nil
	}
	p.mu.Lock()
	subs := p.subs
	p.mu.Unlock()
	if err != nil {
		// The read is not lost silently: it is logged with its reason and counted, and
		// the kiosk hears that it failed, though nothing of whose it was.
		p.jerrs.Add(1)
		reason := ReasonJournalFailed
		if reserve.NoSpace(err) {
			reason = ReasonDiskFull
		} else if errors.Is(err, ErrStateDirLost) {
			reason = ReasonStateDirLost
		}
		for _, s := range subs {
			if f, ok := s.(FailureObserver); ok {
				f.NotCommitted(r, reason)
			}
		}
		o.Logger.Error("event not committed", "reason", reason, "device", r.Device, "err", err)
		return err
	}
	p.events.Add(1)
	for _, s := range subs {
		s.Event(e)
	}
	if code != "" {
		for _, s := range subs {
			if c, ok := s.(Channeler); ok {
				c.Channel(e, code)
			}
		}
	}
	// Logged after the kiosk was told: a log write (a pipe to journald, a file) can
	// block, and it is no part of what the kiosk waits for.
	o.Logger.Info("event", "seq", e.Seq, "device", r.Device, "summary", e.Summary())
	return nil
}

// observeVerify hands the time of one verification to the subscribers that want it.
func (p *Pipeline) observeVerify(d time.Duration) {
	p.observe(func(o TimingObserver) { o.ObserveVerify(d) })
}

// observeCommit hands the time of one journal commit of n events to the subscribers
// that want it.
func (p *Pipeline) observeCommit(d time.Duration, n int) {
	p.observe(func(o TimingObserver) { o.ObserveCommit(d, n) })
}

func (p *Pipeline) observe(f func(TimingObserver)) {
	p.mu.Lock()
	subs := p.subs
	p.mu.Unlock()
	for _, s := range subs {
		if o, ok := s.(TimingObserver); ok {
			f(o)
		}
	}
}

// build makes the event for r; ok is false for a double read (no event, no seq).
// online is the normalised code of an ehc_online read, to be resolved.
func (p *Pipeline) build(r device.Read, o *Options) (e *event.Event, online string, ok bool) {
	id, err := uuid.NewV7()
	if err != nil {
		panic(fmt.Sprintf("uuid: %v", err)) // only if the system's randomness fails
	}
	e = &event.Event{
		EventID:    id.String(),
		TerminalID: o.TerminalID,
		OccurredAt: r.At.UTC(),
		Source:     event.Source{Kind: r.Kind, Device: r.Device, Driver: r.Driver},
	}
	if r.Card != nil {
		return cardEvent(e, r.Card), "", true
	}
	c := codes.Result{Type: codes.TypeUnknown, Reason: r.Rejected}
	if r.Rejected == "" {
		c = codes.Classify(r.Data, &codes.Options{Insurance: o.Insurance})
	}
	e.Code = &event.Code{Type: c.Type, Scheme: c.Scheme, Masked: c.Masked, AIM: r.AIM}
	switch c.Type {
	case "ehc_offline":
		// Masked like an online code (its first and last four characters): enough for
		// support to tell two scans apart, nothing of the holder.
		e.Code.Masked = mask.Token(string(r.Data))
		t0 := time.Now()
		res := p.verify.Verify(r.Data, r.Device, o.Now())
		p.observeVerify(time.Since(t0))
		if res.DoubleRead {
			return nil, "", false
		}
		v := &event.Verification{Status: res.Status, Reason: res.Reason, Offline: true, TrustStale: res.TrustStale}
		if res.Status == "valid" {
			g, x := res.GeneratedAt.UTC(), res.ExpiresAt.UTC()
			root, cat := int(res.RootIndex), int(res.Category)
			v.RootIndex, v.IssuerID, v.CertSerial, v.Sequence = &root, &res.IssuerID, &res.CertSerial, &res.Sequence
			v.Extension, v.GeneratedAt, v.ExpiresAt = &res.Extension, &g, &x
			e.Identity = &event.Identity{EHCID: res.EHCID, HolderCategory: &cat}
		}
		e.Verification = v
	case "ehc_online":
		// Resolved online when a platform is configured; otherwise (or while it cannot
		// be reached) the kiosk knows the code is well-formed and its identity pending.
		e.Code.Masked = mask.Token(c.Normalized)
		e.Verification = &event.Verification{Status: "pending", Reason: "online_required"}
		online = c.Normalized
	case "payment", "insurance":
		// Routed to their own channels; nothing for the agent to verify.
	default:
		e.Verification = &event.Verification{Status: "invalid", Reason: c.Reason, Offline: true}
	}
	return e, online, true
}

// DeviceSink adapts the pipeline to device.Sink for one device: reads are submitted,
// states and drops are logged and passed to onState/onDrop (status, metrics). A scan
// dropped as too_long is still an identification attempt (CODES.md: rejected, reason
// too_long; PLATFORM.md: the platform sees every attempt), so it becomes an event too.
type DeviceSink struct {
	Ctx     context.Context
	P       *Pipeline
	Driver  string // the device's driver, for the events of its rejected scans
	Logger  *slog.Logger
	OnState func(device.State)
	OnDrop  func(device.Drop)
}

func (s *DeviceSink) Read(r device.Read) { _ = s.P.Submit(s.Ctx, r) }

func (s *DeviceSink) State(st device.State) {
	s.Logger.Info("device state", "device", st.Device, "state", st.State, "reason", st.Reason, "detail", st.Detail)
	if s.OnState != nil {
		s.OnState(st)
	}
}

func (s *DeviceSink) Drop(d device.Drop) {
	s.Logger.Warn("input dropped", "device", d.Device, "reason", d.Reason, "bytes", d.Bytes)
	if s.OnDrop != nil {
		s.OnDrop(d)
	}
	if d.Reason == framing.ReasonTooLong {
		_ = s.P.Submit(s.Ctx, device.Read{Device: d.Device, Driver: s.Driver, Kind: "qr", Rejected: d.Reason, At: d.At})
	}
}

// cardEvent fills e from a card read. A card read in full is "valid": the card itself
// is the credential and the reader proved it present; partial reads say why.
func cardEvent(e *event.Event, c *device.CardRead) *event.Event {
	e.Card = &event.Card{Kind: c.Kind, Reader: c.Reader, ATR: strings.ToUpper(hex.EncodeToString(c.ATR)),
		CardID: c.Info.CardID, Version: c.Info.Version, IssueDate: c.Info.IssueDate, Expiry: c.Info.Expiry, ReaderStatus: c.ReaderStatus}
	e.Identity = c.Identity
	v := &event.Verification{Status: "valid", Reason: c.Reason, Offline: true}
	switch {
	case c.Identity == nil:
		v.Status = "invalid"
	case c.Identity.IdentityPartial:
		v.Status = "valid" // what was read is genuine; the reason says what is missing
	}
	e.Verification = v
	return e
}
