// Package lograte limits repeated log lines, so that one fault repeating many times a
// second (a flapping device, a platform refusing every request, a hung printer) cannot
// bury the rest of the log. Without it journald's own rate limit drops lines
// indiscriminately, the important ones included, and on Windows the size-capped log file
// (agent/cmd/ehc-agent, rotatingLog) rotates the history away within hours.
//
// What a reader of the log can rely on:
//
//   - Lines are grouped by kind: level, message, and the stable attributes device,
//     reason and component (from the line or from Logger.With), nothing else. Values such
//     as seq, err or timestamps never make a line a kind of its own; a line without a
//     reason is keyed on what it has (level, message, device, component).
//   - Of each kind, the first Burst lines in a window (by default 10 a minute) are
//     written as they come; ERROR lines have a larger burst (ErrorBurst, 30), since each
//     usually matters more, yet a flapping error floods like any other. The rest of the
//     kind is held back until the window ends.
//   - Nothing is silently lost: a kind that had lines held back gets one summary line at
//     the same level, with the same message and the attributes of the last held-back
//     line, plus suppressed=K, the number held back. The first line of the kind after
//     that starts a new window.
//   - Event lines (message "event", one per identity event, agent/pipeline) are never
//     held back: every identity event is in the log.
//   - Memory is bounded: at most MaxKinds kinds (256) are tracked; when more arrive the
//     oldest is dropped, its summary written first if it had lines held back.
//
// When the summary is written: at the first log line of any kind after the window ended,
// or by a one-shot timer at the window's end, whichever comes first, and at the latest by
// Flush (the daemon calls it at shutdown). The timer is armed only while some kind has
// lines held back, so an idle agent, or one logging below the burst, has no wake-up of
// its own (the agent's idle-CPU goal); the cost is one wake-up per window during a flood.
//
// Attributes inside a group (Logger.WithGroup, slog.Group) do not name the kind: the
// agent logs device and reason at the top level.
package lograte

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultBurst      = 10
	DefaultErrorBurst = 30
	DefaultWindow     = time.Minute
	DefaultMaxKinds   = 256
)

// EventMessage is the message of the pipeline's per-event line, never held back.
const EventMessage = "event"

// Options tune the limit; zero values take the defaults.
type Options struct {
	Burst      int           // lines of one kind written per window, below ERROR
	ErrorBurst int           // the same for ERROR and above
	Window     time.Duration // how long a kind's count runs
	MaxKinds   int           // kinds tracked at once
	Now        func() time.Time
}

// Handler is a slog.Handler that limits repeated lines and passes the rest to the
// handler it wraps. Handlers derived from it (WithAttrs, WithGroup) share its limit.
type Handler struct {
	next  slog.Handler
	st    *state
	keyed [3]string // device, reason, component given by WithAttrs; "" when not
	group bool      // a group is open: record attributes do not name the kind
}

// The attributes that name a kind, in keyed's order.
var keyAttrs = [3]string{"device", "reason", "component"}

type kindKey struct {
	level slog.Level
	msg   string
	attrs [3]string
}

type kind struct {
	start      time.Time // the window's start: its first line
	n          int       // lines in the window, written or not
	suppressed int
	last       slog.Record  // the last line held back, for the summary
	via        slog.Handler // the (derived) handler that would have written it
}

type state struct {
	o Options

	mu      sync.Mutex
	kinds   map[kindKey]*kind
	nextDue time.Time // earliest end of a window with lines held back; zero: none
	timer   *time.Timer
	armed   time.Time // the nextDue the timer is set to; zero: stopped
}

// New wraps next.
func New(next slog.Handler, o Options) *Handler {
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.ErrorBurst <= 0 {
		o.ErrorBurst = DefaultErrorBurst
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxKinds <= 0 {
		o.MaxKinds = DefaultMaxKinds
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{next: next, st: &state{o: o, kinds: map[kindKey]*kind{}}}
}

// Enabled is the wrapped handler's: the level (a LevelVar) stays where it was set.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs keeps the kind-naming attributes given, so that a device's logger
// (Logger.With("device", name)) counts per device.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	d := *h
	d.next = h.next.WithAttrs(as)
	if !h.group {
		for _, a := range as {
			if i := keyIndex(a.Key); i >= 0 {
				d.keyed[i] = a.Value.Resolve().String()
			}
		}
	}
	return &d
}

func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	d := *h
	d.next = h.next.WithGroup(name)
	d.group = true
	return &d
}

func keyIndex(k string) int {
	for i, n := range keyAttrs {
		if k == n {
			return i
		}
	}
	return -1
}

// Handle writes r, or holds it back when its kind is over its burst. Summaries that are
// due are written first, so they precede the line that found them due.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	now := st.o.Now()
	st.mu.Lock()
	due := st.dueLocked(now, false)
	pass := true
	if r.Message != EventMessage {
		pass = st.countLocked(h, r, now, &due)
	}
	st.armLocked(now)
	st.mu.Unlock()
	emit(ctx, due)
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// countLocked counts r against its kind and reports whether it is written. A kind
// dropped to make room has its summary added to due.
func (st *state) countLocked(h *Handler, r slog.Record, now time.Time, due *[]summary) bool {
	key := kindKey{level: r.Level, msg: r.Message, attrs: h.keyed}
	if !h.group {
		r.Attrs(func(a slog.Attr) bool {
			if i := keyIndex(a.Key); i >= 0 {
				key.attrs[i] = a.Value.Resolve().String()
			}
			return true
		})
	}
	k := st.kinds[key]
	if k == nil || !now.Before(k.start.Add(st.o.Window)) {
		if k == nil && len(st.kinds) >= st.o.MaxKinds {
			*due = append(*due, st.evictLocked(now)...)
		}
		// A window that ended with lines held back was summarised by dueLocked.
		k = &kind{start: now}
		st.kinds[key] = k
	}
	k.n++
	burst := st.o.Burst
	if r.Level >= slog.LevelError {
		burst = st.o.ErrorBurst
	}
	if k.n <= burst {
		return true
	}
	if k.suppressed == 0 {
		if end := k.start.Add(st.o.Window); st.nextDue.IsZero() || end.Before(st.nextDue) {
			st.nextDue = end
		}
	}
	k.suppressed++
	k.last, k.via = r.Clone(), h.next
	return false
}

// evictLocked makes room for one kind: kinds whose window ended go first (Handle has
// just summarised those that held lines back), then the one whose window started first,
// whose summary is returned.
func (st *state) evictLocked(now time.Time) []summary {
	var out []summary
	for key, k := range st.kinds {
		if !now.Before(k.start.Add(st.o.Window)) {
			delete(st.kinds, key)
		}
	}
	if len(st.kinds) >= st.o.MaxKinds {
		var oldest kindKey
		var o *kind
		for key, k := range st.kinds {
			if o == nil || k.start.Before(o.start) {
				oldest, o = key, k
			}
		}
		if o.suppressed > 0 {
			out = append(out, st.summaryOf(o, now))
		}
		delete(st.kinds, oldest)
	}
	st.recomputeDueLocked()
	return out
}

// summary is one line to write: a held-back record and the handler that writes it.
type summary struct {
	start time.Time
	via   slog.Handler
	r     slog.Record
}

func (st *state) summaryOf(k *kind, now time.Time) summary {
	r := k.last.Clone()
	r.Time = now
	r.AddAttrs(slog.Int("suppressed", k.suppressed))
	return summary{start: k.start, via: k.via, r: r}
}

// dueLocked takes the summaries of windows that ended by now (all of them when all is
// set) and forgets those windows, oldest first.
func (st *state) dueLocked(now time.Time, all bool) []summary {
	if st.nextDue.IsZero() || (!all && now.Before(st.nextDue)) {
		return nil
	}
	var out []summary
	for key, k := range st.kinds {
		if k.suppressed > 0 && (all || !now.Before(k.start.Add(st.o.Window))) {
			out = append(out, st.summaryOf(k, now))
			delete(st.kinds, key)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	st.recomputeDueLocked()
	return out
}

func (st *state) recomputeDueLocked() {
	st.nextDue = time.Time{}
	for _, k := range st.kinds {
		if k.suppressed > 0 {
			if end := k.start.Add(st.o.Window); st.nextDue.IsZero() || end.Before(st.nextDue) {
				st.nextDue = end
			}
		}
	}
}

// armLocked sets the one-shot timer to the next due summary, or stops it when none is.
func (st *state) armLocked(now time.Time) {
	if st.nextDue.Equal(st.armed) {
		return
	}
	st.armed = st.nextDue
	if st.nextDue.IsZero() {
		st.timer.Stop() // armed was set, so the timer exists
		return
	}
	d := max(st.nextDue.Sub(now), 0)
	if st.timer == nil {
		st.timer = time.AfterFunc(d, st.fire)
		return
	}
	st.timer.Reset(d)
}

func (st *state) fire() {
	now := st.o.Now()
	st.mu.Lock()
	due := st.dueLocked(now, false)
	st.armed = time.Time{} // the timer has fired
	st.armLocked(now)
	st.mu.Unlock()
	emit(context.Background(), due)
}

// Flush writes the summary of every kind with lines held back, ended window or not, and
// stops the timer. The daemon calls it at shutdown, after its last line; logging may go
// on after it.
func (h *Handler) Flush() {
	st := h.st
	now := st.o.Now()
	st.mu.Lock()
	due := st.dueLocked(now, true)
	st.armLocked(now) // nothing is held back now: stops the timer
	st.mu.Unlock()
	emit(context.Background(), due)
}

func emit(ctx context.Context, ss []summary) {
	for _, s := range ss {
		_ = s.via.Handle(ctx, s.r) // as a logger does: a failed log write has nowhere to go
	}
}
