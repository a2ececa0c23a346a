package daemon

import (
	"slices"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// JournalStatus is how long the running agent's recent journal commits took: every
// event waits for one before the kiosk is told, so a slow state_dir disk shows here
// first. Reason is hints.SlowStorage when the recent median is over slowCommit.
type JournalStatus struct {
	Commits     uint64  `json:"commits"`       // since start
	RecentP50Ms float64 `json:"recent_p50_ms"` // over the last recentCommits (0: none yet)
	RecentMaxMs float64 `json:"recent_max_ms"`
	Reason      string  `json:"reason,omitempty"`
	Hint        string  `json:"hint,omitempty"`
}

const (
	// recentCommits is the window the status judges: about the last hour of a busy kiosk.
	recentCommits = 64
	// slowCommit is the median commit above which the storage is called slow. A commit
	// is two flushes and a few page writes; a kiosk's own SSD takes about a millisecond,
	// and 50 ms is where a patient starts to notice.
	slowCommit = 50 * time.Millisecond
)

// journalTimes keeps the recent commit times, fed by the pipeline as a
// pipeline.TimingObserver.
type journalTimes struct {
	mu      sync.Mutex
	n       uint64
	ring    [recentCommits]time.Duration
	scratch []time.Duration
}

func (j *journalTimes) Event(*event.Event)          {}
func (j *journalTimes) ObserveVerify(time.Duration) {}

func (j *journalTimes) ObserveCommit(d time.Duration, _ int) {
	j.mu.Lock()
	j.ring[j.n%recentCommits] = d
	j.n++
	j.mu.Unlock()
}

func (j *journalTimes) status() JournalStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := JournalStatus{Commits: j.n}
	k := int(min(j.n, recentCommits))
	if k == 0 {
		return s
	}
	j.scratch = append(j.scratch[:0], j.ring[:k]...)
	slices.Sort(j.scratch)
	med, worst := j.scratch[k/2], j.scratch[k-1]
	s.RecentP50Ms, s.RecentMaxMs = ms(med), ms(worst)
	if med > slowCommit {
		s.Reason, s.Hint = hints.SlowStorage, hints.For(hints.SlowStorage)
	}
	return s
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
