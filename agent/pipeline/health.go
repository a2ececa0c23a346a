package pipeline

import (
	"sync"
	"time"
)

// Health tells a stuck pipeline from an idle one, for the service manager's watchdog.
//
// The pipeline is stuck when it has work — a read in process, or reads queued — and has
// made no progress for longer than a bound: a journal write hanging in fsync, a
// subscriber that blocks, or a Run loop that is gone. An idle pipeline is healthy however
// long it waits, since a kiosk may see no patient for hours.
//
// It needs no hook in the Run loop: process counts every read on entry (Reads) and every
// outcome on exit (Events, DoubleReads or JournalErrors), so the difference is the read
// in flight, and any change of the counters is progress. Nothing is submitted to probe
// the loop, so a health check never becomes an event or waits behind a scan.
type Health struct {
	p *Pipeline

	mu        sync.Mutex
	progress  uint64    // counters' sum at the last look
	busySince time.Time // first look that found work and this progress; zero when idle
}

// NewHealth watches p. Checks compare what they see with the previous check, so one
// Health belongs to one caller that checks periodically.
func (p *Pipeline) NewHealth() *Health { return &Health{p: p} }

// Check reports whether the pipeline was seen making progress, or had nothing to do,
// within the last bound; stuck is how long it has had work without progress, as far
// as periodic checks can tell (they see a hang only from the first check after it).
func (h *Health) Check(now time.Time, bound time.Duration) (healthy bool, stuck time.Duration) {
	// Outcomes are read before entries: process counts the entry first, so in this order
	// done never exceeds entered, even while a read completes between the two loads.
	done := h.p.events.Load() + h.p.doubles.Load() + h.p.jerrs.Load()
	entered := h.p.reads_.Load()
	busy := entered > done || len(h.p.reads) > 0
	progress := entered + done

	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !busy:
		h.busySince = time.Time{}
	case h.busySince.IsZero() || progress != h.progress:
		h.busySince = now
	}
	h.progress = progress
	if h.busySince.IsZero() {
		return true, 0
	}
	stuck = now.Sub(h.busySince)
	return stuck <= bound, stuck
}
