package daemon

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/reserve"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// JournalStatus is the state of the running agent's journal, where every event is
// committed before the kiosk is told: how long the recent commits took (a slow
// state_dir disk shows here first), whether the disk is full, and whether commits fail.
// Reason is, most urgent first: journal_failed or disk_full while the last commit
// failed; disk_full while the commits use the disk reserve; slow_storage when the
// recent median is over slowCommit.
type JournalStatus struct {
	Commits     uint64  `json:"commits"`       // since start
	RecentP50Ms float64 `json:"recent_p50_ms"` // over the last recentCommits (0: none yet)
	RecentMaxMs float64 `json:"recent_max_ms"`
	// Failures counts the reads whose event could not be committed since start (each
	// told to the kiosk as read_failed); LastFailureAt is the latest.
	Failures      uint64     `json:"failures,omitempty"`
	LastFailureAt *time.Time `json:"last_failure_at,omitempty"`
	// Failing: the last commit failed, so scans are not becoming events now.
	Failing bool `json:"failing,omitempty"`
	// ReserveInUseSince is set while the disk is full and events are committed in the
	// space kept aside for them (offline/reserve).
	ReserveInUseSince *time.Time `json:"reserve_in_use_since,omitempty"`
	Reason            string     `json:"reason,omitempty"`
	Hint              string     `json:"hint,omitempty"`
}

const (
	// recentCommits is the window the status judges: about the last hour of a busy kiosk.
	recentCommits = 64
	// slowCommit is the median commit above which the storage is called slow. A commit
	// is two flushes and a few page writes; a kiosk's own SSD takes about a millisecond,
	// and 50 ms is where a patient starts to notice.
	slowCommit = 50 * time.Millisecond
)

// journalTimes keeps the recent commit times and failures, fed by the pipeline as a
// pipeline.TimingObserver and pipeline.FailureObserver.
type journalTimes struct {
	reserve *reserve.File // nil in tests that need none

	mu       sync.Mutex
	n        uint64
	ring     [recentCommits]time.Duration
	scratch  []time.Duration
	failures uint64
	lastFail time.Time
	failing  string // the reason the last commit failed; "" once one succeeds
}

func (j *journalTimes) Event(*event.Event)          {}
func (j *journalTimes) ObserveVerify(time.Duration) {}

// ObserveCommit comes for every commit, failed ones too; a failure's NotCommitted
// follows it.
func (j *journalTimes) ObserveCommit(d time.Duration, _ int) {
	j.mu.Lock()
	j.ring[j.n%recentCommits] = d
	j.n++
	j.failing = ""
	j.mu.Unlock()
}

func (j *journalTimes) NotCommitted(_ device.Read, reason string) {
	j.mu.Lock()
	j.failures++
	j.lastFail = time.Now()
	j.failing = reason
	j.mu.Unlock()
}

func (j *journalTimes) status() JournalStatus {
	var inUse bool
	var since time.Time
	if j.reserve != nil {
		inUse, since = j.reserve.InUse()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	s := JournalStatus{Commits: j.n, Failures: j.failures}
	if j.failures > 0 {
		t := j.lastFail.UTC()
		s.LastFailureAt = &t
	}
	if inUse {
		t := since.UTC()
		s.ReserveInUseSince = &t
	}
	var med time.Duration
	if k := int(min(j.n, recentCommits)); k > 0 {
		j.scratch = append(j.scratch[:0], j.ring[:k]...)
		slices.Sort(j.scratch)
		med = j.scratch[k/2]
		s.RecentP50Ms, s.RecentMaxMs = ms(med), ms(j.scratch[k-1])
	}
	switch {
	case j.failing != "":
		s.Reason, s.Failing = j.failing, true
	case inUse:
		s.Reason = pipeline.ReasonDiskFull
	case med > slowCommit:
		s.Reason = hints.SlowStorage
	}
	s.Hint = hints.For(s.Reason)
	return s
}

// reserveRetry is how often a full disk is looked at for room to take the reserve
// back: only while it is in use, so an agent with room wakes for nothing. reserveSize
// is the space kept. Both are variables for the tests alone, which fill a small disk.
var (
	reserveRetry = 30 * time.Second
	reserveSize  = int64(reserve.DefaultSize)
)

// watchReserve logs when the disk fills up and the journal starts using the reserve,
// then tries every reserveRetry to take it back, until ctx ends.
func (d *Daemon) watchReserve(ctx context.Context, r *reserve.File) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.Released():
		}
		d.log.Error("state_dir's disk is full: events are committed in the reserve", "reason", pipeline.ReasonDiskFull,
			"reserve", r.Path(), "reserve_bytes", r.Size(), "hint", hints.For(pipeline.ReasonDiskFull))
		t := time.NewTicker(reserveRetry)
		for restored := false; !restored; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			if restored, err = r.Restore(); err != nil {
				d.log.Warn("disk reserve not restored", "reason", "reserve_failed", "err", err)
			}
		}
		t.Stop()
		d.log.Info("disk space is back: the reserve is kept again", "reserve", r.Path())
	}
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
