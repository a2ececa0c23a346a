package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/offline/atomicfile"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/seal"
)

// A state reset: agent.db (outbox, replay cache, trust state) cannot be used because it
// is damaged — typically a power cut on storage that acknowledges writes it has not made.
// Refusing to start would leave the kiosk without an agent for good (systemd restarts it
// into the same error), so the agent keeps the damaged file under a name that says what
// and when (agent.db.corrupt-<UTC time>), never deletes it, salvages the undelivered
// events it can still read, and starts on a fresh database whose seq continues above the
// seq floor (offline/outbox, seqfloor.go). It says so loudly: an error log line with
// reason state_reset, and, for as long as the damaged file is kept, /v1/status
// "state_reset" (with a hint), the ehc_agent_state_reset gauge and the doctor's state row.
//
// Only damage resets the state. A database held by another agent (bbolt's lock) and any
// error of the file system (permission, I/O, no space) stop the start as before: those
// are fixed outside, and a reset would throw away a good database.
//
// The start-up check beyond bbolt's own (both meta pages' checksums, the freelist) is a
// cheap probe: the root-to-leaf path of the first and last keys of every bucket, a few
// pages. bbolt's tx.Check, which walks every page, took 25 ms on a warm 33 MB file with
// 100,000 pending events here — but it reads the whole file, which is seconds cold on an
// SD card, and it runs in a goroutine of its own, so a panic on a damaged page would kill
// the agent instead of being reported. Damage deeper in the file is therefore not found
// at start (docs/INSTALL.md, "A damaged state database").

// ReasonStateReset is the stable reason of a state reset (logs, status, hints).
const ReasonStateReset = hints.StateReset

// StateReset describes the last state reset while its damaged file is kept.
type StateReset struct {
	Reason  string    `json:"reason"` // state_reset
	At      time.Time `json:"at"`
	Cause   string    `json:"cause"`    // what was wrong with the file
	MovedTo string    `json:"moved_to"` // where the damaged file is kept
	// Salvaged undelivered events re-queued from the damaged file, and how they were
	// read (outbox.Salvaged.Method: bbolt, page_scan, none).
	Salvaged      int    `json:"salvaged"`
	SalvageMethod string `json:"salvage_method"`
	// ResumedAbove is the seq the fresh database continued above (the seq floor, or the
	// highest salvaged seq): the platform sees a gap after the last seq it received.
	ResumedAbove uint64 `json:"resumed_above_seq"`
	Hint         string `json:"hint"`
}

const dbName = "agent.db"

// openState opens state_dir/agent.db, or, when it is damaged, moves it aside and opens a
// fresh one; reset is then the start of the record (salvage and seq are added later).
func openState(dir string, now time.Time) (*bbolt.DB, *StateReset, error) {
	path := filepath.Join(dir, dbName)
	db, judged, cause, err := openChecked(path)
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			err = fmt.Errorf("%s is in use by another ehc-agent", path)
		}
		return nil, nil, err
	}
	if cause == "" {
		return db, nil, nil
	}
	// bbolt's lock went with the damaged file's close. Another agent that waited for
	// it may have judged the same file, moved it and made a fresh one since: that one
	// is live and locked, and must not be moved aside as if it were the damaged one.
	if cur, err := os.Stat(path); err != nil || judged == nil || !os.SameFile(judged, cur) {
		return nil, nil, fmt.Errorf("%s changed while it was checked: is another ehc-agent starting on this state_dir?", path)
	}
	moved, err := moveAside(path, now)
	if err != nil {
		return nil, nil, fmt.Errorf("%s is damaged (%s) and cannot be moved aside: %w", path, cause, err)
	}
	r := &StateReset{Reason: ReasonStateReset, At: now.UTC(), Cause: cause, MovedTo: moved, SalvageMethod: salvagePending,
		Hint: hints.For(ReasonStateReset)}
	// The report is written at once, marked pending: if the start fails or is killed
	// before the salvage ends, the next start finds it and salvages again.
	if err := writeReport(r); err != nil {
		return nil, nil, fmt.Errorf("state reset report: %w", err)
	}
	if db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second}); err != nil {
		return nil, nil, err
	}
	return db, r, nil
}

// salvagePending is a report's salvage method until its salvage has run.
const salvagePending = "pending"

// writeReport writes r next to its damaged file, durably: the report is what tells a
// later start that a reset happened.
func writeReport(r *StateReset) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(r.MovedTo+".json", func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// openChecked opens path with bbolt and probes it. It returns the db, or the cause of
// damage (db nil) with the identity of the file judged, or an error that is no damage.
func openChecked(path string) (db *bbolt.DB, judged os.FileInfo, cause string, err error) {
	var file *os.File // bbolt's, to release the lock if bbolt panics half-way
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				file.Close()
			}
			db, cause, err = nil, fmt.Sprintf("bbolt panicked opening it: %v", r), nil
		}
	}()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			if err == nil {
				file = f
				judged, _ = f.Stat()
			}
			return f, err
		}})
	if err != nil {
		if damaged(err) {
			return nil, judged, err.Error(), nil
		}
		return nil, nil, "", err
	}
	if err := probe(db); err != nil {
		db.Close()
		return nil, judged, err.Error(), nil
	}
	return db, nil, "", nil
}

// damaged tells bbolt's errors about the file's content from those of the file system
// and the lock. bbolt reports a file shorter than its two meta pages only as text; the
// test TestStateResetTruncatedFile keeps that match honest across bbolt upgrades.
func damaged(err error) bool {
	return errors.Is(err, bbolt.ErrInvalid) || errors.Is(err, bbolt.ErrChecksum) ||
		errors.Is(err, bbolt.ErrVersionMismatch) || strings.Contains(err.Error(), "file size too small")
}

// probe walks, in every top-level bucket, the paths to its first keys (up to 16, with
// the first and last keys of the buckets nested there) and to its last key: bounded by
// the number of buckets and the trees' height, not by the file's size.
func probe(db *bbolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("start-up check: bbolt panicked: %v", r)
		}
	}()
	return db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			c := b.Cursor()
			i := 0
			for k, v := c.First(); k != nil && i < 16; k, v = c.Next() {
				if v == nil {
					if nb := b.Bucket(k); nb != nil {
						nc := nb.Cursor()
						nc.First()
						nc.Last()
					}
				}
				i++
			}
			c.Last()
			return nil
		})
	})
}

// moveAside renames the damaged file to agent.db.corrupt-<UTC time> (with -2, -3… if
// that exists), and makes the rename durable.
func moveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	to := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	atomicfile.SyncDir(filepath.Dir(path))
	return to, nil
}

// finishReset salvages the pending events of the damaged file into the fresh outbox,
// logs the reset and writes its report next to the damaged file.
func finishReset(r *StateReset, ob *outbox.Outbox, ring *seal.Ring, maxPending int, log *slog.Logger) {
	s := outbox.Salvage(r.MovedTo, ring, maxPending)
	r.SalvageMethod = s.Method
	n, err := ob.Restore(s.Records)
	if err != nil {
		log.Error("salvaged events could not be queued again", "reason", ReasonStateReset, "err", err)
	}
	r.Salvaged = n
	r.ResumedAbove = ob.Stats().LastSeq // the floor, or the highest salvaged seq above it
	attrs := []any{"reason", ReasonStateReset, "cause", r.Cause, "moved_to", r.MovedTo,
		"salvaged", n, "salvage_method", s.Method, "resumed_above_seq", r.ResumedAbove}
	if s.Err != nil && s.Method != "bbolt" {
		attrs = append(attrs, "bbolt_read", s.Err.Error())
	}
	if s.Method == "none" {
		attrs = append(attrs, "salvage", "no pending event could be read from the damaged file")
	}
	log.Error("state database damaged: kept aside, started on a fresh one", attrs...)
	if err := writeReport(r); err != nil {
		log.Error("state reset report not written", "reason", ReasonStateReset, "err", err)
	}
}

// lastReset returns the newest reset report in dir whose damaged file is still there:
// the status keeps saying the state was reset until hospital IT has dealt with the file.
func lastReset(dir string) *StateReset {
	reports, _ := filepath.Glob(filepath.Join(dir, dbName+".corrupt-*.json"))
	var newest *StateReset
	for _, p := range reports {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r StateReset
		if json.Unmarshal(b, &r) != nil {
			continue
		}
		if _, err := os.Stat(strings.TrimSuffix(p, ".json")); err != nil {
			continue
		}
		// By the time it records, not by name: two resets in one second are named
		// …Z and …Z-2, which sort the wrong way round.
		if newest == nil || !r.At.Before(newest.At) {
			r.Hint = hints.For(ReasonStateReset)
			newest = &r
		}
	}
	return newest
}

// openFloor opens the seq floor file; its write failures are logged.
func openFloor(dir string, log *slog.Logger) (*outbox.Floor, error) {
	f, err := outbox.OpenFloor(filepath.Join(dir, "seq.floor"))
	if err != nil {
		return nil, err
	}
	f.OnError = func(err error) {
		log.Error("seq floor not written; retried at the next event", "reason", "seq_floor", "err", err)
	}
	return f, nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
