package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// The fleet's doctor tells IT what to do, not only what is wrong: each state with a
// hint carries it, as the local doctor's rows do.
func TestDoctorRowsCarryHints(t *testing.T) {
	now := time.Now()
	s := Status{
		Devices: map[string]device.State{
			"front":  {State: device.StateConnecting, Reason: "port_busy", Hint: hints.For("port_busy"), At: now},
			"reader": {State: device.StateConnected, At: now},
		},
		Trust:   trust.Versions{Reason: trust.ReasonNeverUpdated, Hint: hints.For(trust.ReasonNeverUpdated)},
		Printer: PrinterStatus{Configured: true, Transport: "tcp", Where: "10.0.0.9:9100", Paper: "paper_out", Reason: "paper_out", Hint: "Load paper."},
	}
	rows := map[string]doctorRow{}
	for _, r := range doctorRows(s, now) {
		rows[r.Check] = r
	}
	for check, want := range map[string][]string{
		"device front":  {"fail", "port_busy", hints.For("port_busy")},
		"device reader": {"pass", "connected"},
		"trust":         {"fail", trust.ReasonNeverUpdated, hints.For(trust.ReasonNeverUpdated)},
		"printer":       {"warn", "paper_out", "Load paper."},
	} {
		r, ok := rows[check]
		if !ok {
			t.Errorf("no %s row in %+v", check, rows)
			continue
		}
		if r.Status != want[0] {
			t.Errorf("%s: status %s, want %s", check, r.Status, want[0])
		}
		for _, w := range want[1:] {
			if w == "" || !strings.Contains(r.Detail, w) {
				t.Errorf("%s: %q lacks %q", check, r.Detail, w)
			}
		}
	}
	if strings.Contains(rows["device reader"].Detail, "fix:") {
		t.Errorf("a connected device has no fix: %q", rows["device reader"].Detail)
	}
}

// The running agent's recent commits decide the storage row: none yet is info, a slow
// median warns with the hint, and a fast one passes. journalTimes judges the last
// recentCommits only, so a disk that recovers stops warning.
func TestStorageRowFromCommits(t *testing.T) {
	row := func(j *journalTimes) doctorRow {
		for _, r := range doctorRows(Status{Journal: j.status()}, time.Now()) {
			if r.Check == "storage" {
				return r
			}
		}
		t.Fatal("no storage row")
		return doctorRow{}
	}
	var j journalTimes
	if r := row(&j); r.Status != "info" || r.Detail != "no event committed yet" {
		t.Errorf("no commits: %+v", r)
	}
	for range 10 {
		j.ObserveCommit(80*time.Millisecond, 1)
	}
	j.ObserveCommit(2*time.Second, 3)
	st := j.status()
	if st.Commits != 11 || st.RecentP50Ms != 80 || st.RecentMaxMs != 2000 || st.Reason != hints.SlowStorage || st.Hint != hints.For(hints.SlowStorage) {
		t.Errorf("slow disk: %+v", st)
	}
	if r := row(&j); r.Status != "warn" || !strings.Contains(r.Detail, "slow_storage: a journal commit takes 80.0 ms (median of the last 11), at most 2000.0 ms — fix: Every scan waits") {
		t.Errorf("slow disk: %+v", r)
	}
	for range recentCommits {
		j.ObserveCommit(1500*time.Microsecond, 1)
	}
	st = j.status()
	if st.Commits != 11+recentCommits || st.RecentP50Ms != 1.5 || st.RecentMaxMs != 1.5 || st.Reason != "" || st.Hint != "" {
		t.Errorf("recovered disk: %+v", st)
	}
	if r := row(&j); r.Status != "pass" || r.Detail != "a journal commit takes 1.500 ms (median of the last 64), at most 1.500 ms" {
		t.Errorf("recovered disk: %+v", r)
	}
}

// A failing commit fails the storage row with the reason and its hint; the next
// successful commit ends it. journalTimes hears every commit (ObserveCommit) and then,
// for a failed one, NotCommitted.
func TestStorageRowFromFailures(t *testing.T) {
	var j journalTimes
	j.ObserveCommit(time.Millisecond, 1)
	j.ObserveCommit(time.Millisecond, 1)
	j.NotCommitted(device.Read{Device: "front"}, pipeline.ReasonJournalFailed)
	st := j.status()
	if !st.Failing || st.Failures != 1 || st.LastFailureAt == nil || st.Reason != pipeline.ReasonJournalFailed || st.Hint != hints.For(pipeline.ReasonJournalFailed) {
		t.Fatalf("after a failed commit: %+v", st)
	}
	var storage doctorRow
	for _, r := range doctorRows(Status{Journal: st}, time.Now()) {
		if r.Check == "storage" {
			storage = r
		}
	}
	if storage.Status != "fail" || !strings.Contains(storage.Detail, "journal_failed: 1 reads could not be committed") || !strings.Contains(storage.Detail, "fix: Events cannot be saved") {
		t.Errorf("storage row: %+v", storage)
	}
	j.ObserveCommit(time.Millisecond, 1)
	if st := j.status(); st.Failing || st.Reason != "" || st.Failures != 1 {
		t.Errorf("after a commit succeeded again: %+v", st)
	}
}

// Reload applies devices, codes and log.level; a change anywhere else is named as
// needing a restart, by its top-level key, whichever section it is in.
func TestRestartOnlyNamesEverySection(t *testing.T) {
	old := &config.Config{TerminalID: "K-1", Log: config.Log{Level: "info", Format: "json"}}
	same := *old
	same.Log.Level = "debug"
	same.Devices = []config.Device{{Name: "front", Driver: "sim"}}
	if k := restartOnly(old, &same); len(k) != 0 {
		t.Errorf("reloadable changes named: %v", k)
	}
	changed := same
	changed.TerminalID = "K-2"
	changed.Log.Format = "text"
	changed.Applications.Timeout = time.Minute
	changed.Console = true
	if k := strings.Join(restartOnly(old, &changed), ","); k != "terminal_id,console,log,applications" {
		t.Errorf("named %q, want terminal_id,console,log,applications", k)
	}
}
