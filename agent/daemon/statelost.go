package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/offline/atomicfile"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// A lost state_dir: the directory was deleted while the agent ran (rm -rf by a cleanup
// script or by hand). bbolt keeps writing and fsyncing the file it holds open, but that
// file has no name any more: what is committed into it is gone at the next restart, with
// the seq (it would start again at 1), the outbox key, the replay cache, the API token
// and the terminal key. Such a commit is not durable (issue #6), so the kiosk must not be
// told of its event.
//
// Detection is one stat(2) of agent.db's path before and after each commit, compared
// (os.SameFile: device and inode) with the file opened at start: a missing path or
// another file there (a replaced or recreated state_dir) means the open file is lost.
// A few microseconds; nothing is walked. From then on every commit is refused with
// pipeline.ErrStateDirLost, so the kiosk gets read_failed "state_dir_lost" and the
// status journal shows it failing. A commit that raced the deletion (stat before it
// fine, after it not) is reported failed too; its event stays in the open file and is
// written back below, so it may still reach the platform, as after a crash between
// commit and telling.
//
// Recovery: the agent recreates state_dir (0700) and writes back, from what it holds,
// outbox.key, the terminal key and the API token (the bytes read at start, when they
// live in state_dir), seq.floor, and last agent.db — a consistent copy of the open
// database taken in a read transaction (bbolt's Tx.WriteTo reuses the open handle) —
// each through a temporary file, fsync and rename. Anything found at those paths that
// differs is kept as <name>.replaced-<UTC time>, never deleted. Then Run returns an
// error, so the process exits non-zero and systemd (Restart=always) starts it again on
// the files just written: a clean restart reopens everything from disk.
//
// If state_dir cannot be recreated (under the shipped unit's ProtectSystem=strict the
// directory is a bind mount that disappears from the service's view when removed
// outside, and /var/lib is read-only there), the agent keeps running for up to
// lostGrace, refusing new events while the uplink still delivers the pending ones from
// the open file, retrying the write-back every lostRetry; once nothing is pending (or
// with no platform configured, at once) it exits all the same, saying what could not be
// saved, so that systemd restarts it on a fresh state_dir. Not on Windows: an open bbolt
// file cannot be deleted there, so no check runs.

// ReasonStateDirLost is the stable reason of a lost state_dir (logs, status, hints).
const ReasonStateDirLost = pipeline.ReasonStateDirLost

// lostRetry and lostGrace bound the wait when the write-back fails; variables for tests.
var (
	lostRetry = 5 * time.Second
	lostGrace = 10 * time.Minute
)

var errNotDir = syscall.ENOTDIR // state_dir replaced by a file

// checkLinked is false where an open database cannot be unlinked (Windows).
const checkLinked = runtime.GOOS != "windows"

// ErrStateDirLost is what Run returns after state_dir was lost: the process should exit
// non-zero so that its supervisor starts it again.
var ErrStateDirLost = errors.New("state_dir was deleted while the agent ran; restarting on what was written back")

// stateWatch is the pipeline's journal: the outbox, with the check around each commit.
type stateWatch struct {
	dir, dbPath string
	opened      os.FileInfo // agent.db as opened; nil: no check
	ob          *outbox.Outbox
	floor       *outbox.Floor
	keyID       string // the sealing key's id, to check the outbox.key bytes kept

	lost   atomic.Bool
	once   sync.Once
	signal chan struct{} // closed when the loss is first seen

	mu   sync.Mutex
	kept []keptFile // state files written back after a loss, read at start
}

type keptFile struct {
	path string
	data []byte // secrets: never logged
}

func newStateWatch(dir string, ob *outbox.Outbox, floor *outbox.Floor, ring *seal.Ring) *stateWatch {
	w := &stateWatch{dir: dir, dbPath: filepath.Join(dir, dbName), ob: ob, floor: floor, keyID: ring.KeyID(), signal: make(chan struct{})}
	if checkLinked {
		if fi, err := os.Stat(w.dbPath); err == nil {
			w.opened = fi
		}
	}
	return w
}

func (w *stateWatch) Append(e *event.Event) error { return w.AppendAll([]*event.Event{e}) }

// AppendAll commits es unless the database file is lost, and reports a commit whose
// file was lost during it as failed.
func (w *stateWatch) AppendAll(es []*event.Event) error {
	if err := w.check(); err != nil {
		return err
	}
	err := w.ob.AppendAll(es)
	if lerr := w.check(); lerr != nil {
		return lerr
	}
	return err
}

// check stats agent.db's path; a missing path or another file there marks it lost.
func (w *stateWatch) check() error {
	if w.opened == nil {
		return nil
	}
	if !w.lost.Load() {
		fi, err := os.Stat(w.dbPath)
		switch {
		case err == nil && os.SameFile(fi, w.opened):
			return nil
		case err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errNotDir):
			return nil // not a sign of loss (e.g. EIO): the commit itself reports it
		}
		w.lost.Store(true)
		w.once.Do(func() { close(w.signal) })
	}
	return fmt.Errorf("%s was deleted or replaced while open: %w", w.dbPath, pipeline.ErrStateDirLost)
}

// lostC is closed once state_dir was found lost.
func (w *stateWatch) lostC() <-chan struct{} { return w.signal }

// keep reads the secrets that live in state_dir, to write them back if it is lost:
// outbox.key (checked against the key the outbox seals with), and the terminal key and
// API token when they are in state_dir. Called once they all exist, before any scan.
func (w *stateWatch) keep(paths ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b, err := os.ReadFile(filepath.Join(w.dir, "outbox.key")); err == nil {
		if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
			if r, err := seal.NewRing(k); err == nil && r.KeyID() == w.keyID {
				w.kept = append(w.kept, keptFile{path: filepath.Join(w.dir, "outbox.key"), data: b})
			}
		}
	}
	for _, p := range paths {
		if p == "" || filepath.Clean(filepath.Dir(p)) != filepath.Clean(w.dir) {
			continue // outside state_dir: not lost with it
		}
		if b, err := os.ReadFile(p); err == nil {
			w.kept = append(w.kept, keptFile{path: p, data: b})
		}
	}
}

// keptNames names the files keep holds, for the log (names only).
func (w *stateWatch) keptNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for _, f := range w.kept {
		names = append(names, filepath.Base(f.path))
	}
	return names
}

// writeBack recreates state_dir and writes into it what the agent holds: the secrets
// first (a database without its key could not be opened), then the seq floor, then a
// consistent copy of the open database.
func (w *stateWatch) writeBack(db *bbolt.DB, now time.Time) error {
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return err
	}
	w.mu.Lock()
	kept := w.kept
	w.mu.Unlock()
	for _, f := range kept {
		if err := restoreFile(f.path, now, func(out io.Writer) error { _, err := out.Write(f.data); return err }); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f.path), err)
		}
	}
	if err := w.floor.Rewrite(); err != nil {
		return fmt.Errorf("seq.floor: %w", err)
	}
	return restoreFile(w.dbPath, now, func(fh io.Writer) error {
		return db.View(func(tx *bbolt.Tx) error { _, err := tx.WriteTo(fh); return err })
	})
}

// sameContent reports whether files a and b hold the same bytes. Only small files (the
// keys, the token, the floor) are compared in memory; a database the size of a week's
// queue is never the same as a copy written now anyway.
func sameContent(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil || fa.Size() != fb.Size() || fa.Size() > 1<<20 {
		return false
	}
	ba, err1 := os.ReadFile(a)
	bb, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(ba, bb)
}

// restoreFile writes path durably (offline/atomicfile), keeping a different file found
// at path as path.replaced-<UTC time>. A file already equal to what is written (the
// secrets) is left alone.
func restoreFile(path string, now time.Time, write func(io.Writer) error) error {
	tmp, err := atomicfile.WriteTemp(path, write)
	if err != nil {
		return err
	}
	if sameContent(path, tmp) {
		return os.Remove(tmp)
	}
	if _, err := os.Lstat(path); err == nil {
		if err := os.Rename(path, path+".replaced-"+now.UTC().Format("20060102T150405Z")); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := atomicfile.Replace(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// recoverLost runs on Run's goroutine once state_dir was found lost: it writes back
// what the agent holds and returns the error that makes Run, and the process, end.
// While the write-back fails it retries every lostRetry for up to lostGrace (the uplink
// meanwhile delivers the pending events from the open file), until nothing is pending
// or no platform is configured, or until ctx ends.
func (d *Daemon) recoverLost(ctx context.Context) error {
	hint := hints.For(ReasonStateDirLost)
	d.log.Error("state_dir was deleted or replaced while the agent ran: events are refused (read_failed) until it is written back",
		"reason", ReasonStateDirLost, "state_dir", d.cfg.StateDir, "hint", hint)
	deadline := time.Now().Add(lostGrace)
	for {
		err := d.lost.writeBack(d.db, time.Now())
		st := d.outbox.Stats()
		if err == nil {
			d.log.Error("state_dir written back from the open database; the agent exits to restart on it",
				"reason", ReasonStateDirLost, "state_dir", d.cfg.StateDir, "last_seq", st.LastSeq, "pending", st.Pending,
				"files", strings.Join(append(d.lost.keptNames(), "seq.floor", dbName), ","), "hint", hint)
			return ErrStateDirLost
		}
		d.log.Error("state_dir could not be written back; retrying", "reason", ReasonStateDirLost, "state_dir", d.cfg.StateDir,
			"err", err, "pending", st.Pending, "hint", hint)
		// Waiting is worth it only while the uplink can still deliver pending events from
		// the open file; with none left, or no platform to take them, every minute more
		// is a minute of a kiosk that turns patients away.
		if time.Now().After(deadline) || st.Pending == 0 || d.uplink == nil {
			d.log.Error("state_dir still cannot be written: the agent exits, and the pending events, seq, keys and token it held are lost",
				"reason", ReasonStateDirLost, "state_dir", d.cfg.StateDir, "pending", st.Pending, "last_seq", st.LastSeq, "err", err)
			return fmt.Errorf("%w (write-back failed: %v)", ErrStateDirLost, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (write-back failed: %v)", ErrStateDirLost, err)
		case <-time.After(lostRetry):
		}
	}
}
