package replay

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

func read(holder string, gen, seq uint32, device string, fp byte) *Read {
	h := sm3.Sum([]byte(holder))
	r := &Read{Key: NewKey(&h, gen, seq), Device: device, Expires: time.Unix(int64(gen)+60+30, 0)}
	r.Fingerprint[0] = fp
	return r
}

func openDB(t *testing.T, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func stored(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	n := 0
	if err := db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketName).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func want(t *testing.T, got, want Outcome, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

func TestOutcomes(t *testing.T) {
	c, err := Open(nil, Options{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	gen := uint32(t0.Unix())
	r := read("h1", gen, 1, "scanner-1", 7)
	w := DefaultDuplicateWindow
	want(t, c.Admit(r, w, t0), Fresh, "first read")
	want(t, c.Admit(r, w, t0.Add(2999*time.Millisecond)), DoubleRead, "same device after 2.999 s")
	// Sliding window: measured from the last read by that device.
	want(t, c.Admit(r, w, t0.Add(5*time.Second)), DoubleRead, "2.001 s after the last double read")
	want(t, c.Admit(r, w, t0.Add(8*time.Second)), Replayed, "exactly the window after the last read")

	r2 := read("h1", gen, 2, "scanner-1", 8)
	want(t, c.Admit(r2, w, t0), Fresh, "next sequence")
	other := *r2
	other.Device = "scanner-2"
	want(t, c.Admit(&other, w, t0.Add(time.Second)), Replayed, "other device within the window")
	forged := *r2
	forged.Fingerprint[0] = 9
	want(t, c.Admit(&forged, w, t0.Add(time.Second)), Replayed, "same triple, other code bytes, same device")
	want(t, c.Admit(r2, 0, t0.Add(time.Millisecond)), Replayed, "no window")
	want(t, c.Admit(read("h2", gen, 2, "scanner-1", 8), w, t0), Fresh, "other holder")
	want(t, c.Admit(read("h1", gen+1, 2, "scanner-1", 8), w, t0), Fresh, "other generated-at")
	for _, o := range []Outcome{Fresh, DoubleRead, Replayed, 9} {
		if o.String() == "" {
			t.Fatal("empty name")
		}
	}
}

func TestExpiry(t *testing.T) {
	c, _ := Open(nil, Options{}, t0)
	r := read("h", uint32(t0.Unix()), 1, "d", 1)
	want(t, c.Admit(r, 0, t0), Fresh, "first")
	want(t, c.Admit(r, 0, r.Expires), Replayed, "at the expiry instant")
	if n := c.Purge(r.Expires); n != 0 {
		t.Fatalf("purged %d at the expiry instant", n)
	}
	// After expiry the entry is forgotten: the verifier rejects such a code as
	// code_expired before asking, so Fresh here is harmless and bounds memory.
	again := *r
	again.Expires = r.Expires.Add(time.Hour)
	want(t, c.Admit(&again, 0, r.Expires.Add(time.Nanosecond)), Fresh, "after expiry")
	if c.Len() != 1 {
		t.Fatalf("len %d", c.Len())
	}
	if n := c.Purge(again.Expires.Add(time.Second)); n != 1 || c.Len() != 0 {
		t.Fatalf("purged %d, len %d", n, c.Len())
	}
}

// Admit sweeps a few entries each time, so expired ones go without any Purge.
func TestSweepOnAdmit(t *testing.T) {
	c, _ := Open(nil, Options{}, t0)
	for i := range 1000 {
		c.Admit(read("old", uint32(t0.Unix()), uint32(i), "d", 1), 0, t0)
	}
	later := t0.Add(time.Hour)
	for i := range 1000 {
		r := read("new", uint32(later.Unix()), uint32(i), "d", 1)
		c.Admit(r, 0, later)
	}
	// 1000 admits sweeping 4 entries each reach most of the 1000 expired entries.
	if n := c.Len(); n > 1500 {
		t.Fatalf("%d entries left: sweeping does not keep up", n)
	}
	c.Purge(later)
	if n := c.Len(); n != 1000 {
		t.Fatalf("%d entries after purge, want the 1000 live ones", n)
	}
}

func TestRestartSurvival(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openDB(t, path)
	c, err := Open(db, Options{FlushInterval: time.Hour}, t0) // only Close writes
	if err != nil {
		t.Fatal(err)
	}
	gen := uint32(t0.Unix())
	live := read("h", gen, 1, "scanner-1", 1)
	short := read("h", gen, 2, "scanner-1", 2)
	short.Expires = t0.Add(10 * time.Second)
	want(t, c.Admit(live, DefaultDuplicateWindow, t0), Fresh, "live")
	want(t, c.Admit(short, DefaultDuplicateWindow, t0), Fresh, "short")
	if stored(t, db) != 0 {
		t.Fatal("written before the flush interval")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path)
	defer db.Close()
	restart := t0.Add(20 * time.Second)
	c, err = Open(db, Options{}, restart)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 1 || stored(t, db) != 1 {
		t.Fatalf("after reopen: %d in memory, %d on disk; want only the live entry", c.Len(), stored(t, db))
	}
	want(t, c.Admit(live, DefaultDuplicateWindow, restart), Replayed, "accepted before the restart")
	short.Expires = restart.Add(time.Minute)
	want(t, c.Admit(short, DefaultDuplicateWindow, restart), Fresh, "expired before the restart, so forgotten")
}

// The double-read window survives a quick restart too: the device and read time are
// stored with the entry.
func TestDoubleReadAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openDB(t, path)
	c, _ := Open(db, Options{}, t0)
	r := read("h", uint32(t0.Unix()), 1, "scanner-1", 1)
	c.Admit(r, DefaultDuplicateWindow, t0)
	c.Close()
	db.Close()
	db = openDB(t, path)
	defer db.Close()
	c, _ = Open(db, Options{}, t0.Add(time.Second))
	defer c.Close()
	want(t, c.Admit(r, DefaultDuplicateWindow, t0.Add(2*time.Second)), DoubleRead, "after restart")
}

func TestWriteBehind(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "agent.db"))
	defer db.Close()
	c, _ := Open(db, Options{FlushInterval: 20 * time.Millisecond}, t0)
	defer c.Close()
	c.Admit(read("h", uint32(t0.Unix()), 1, "d", 1), 0, t0)
	deadline := time.Now().Add(5 * time.Second)
	for stored(t, db) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the flusher never wrote the entry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Purged entries are deleted from disk as well.
	if n := c.Purge(t0.Add(time.Hour)); n != 1 {
		t.Fatalf("purged %d", n)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := stored(t, db); n != 0 {
		t.Fatalf("%d entries on disk after purge", n)
	}
}

func TestSyncWrites(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "agent.db"))
	defer db.Close()
	c, _ := Open(db, Options{SyncWrites: true, FlushInterval: time.Hour}, t0)
	defer c.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { c.Admit(read("h", uint32(t0.Unix()), uint32(i), "d", 1), 0, t0) })
	}
	wg.Wait()
	if n := stored(t, db); n != 8 {
		t.Fatalf("%d entries on disk right after Admit returned, want 8", n)
	}
}

func TestConcurrentAdmitOneFresh(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "agent.db"))
	defer db.Close()
	c, _ := Open(db, Options{FlushInterval: time.Millisecond}, t0)
	defer c.Close()
	for round := range 20 {
		r := read("h", uint32(t0.Unix()), uint32(round), "d", 1)
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				rr := *r
				rr.Device = fmt.Sprint("device-", g)
				if c.Admit(&rr, DefaultDuplicateWindow, t0) == Fresh {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if fresh.Load() != 1 {
			t.Fatalf("round %d: %d Fresh answers", round, fresh.Load())
		}
	}
}

func TestDatabaseFailure(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "agent.db"))
	c, _ := Open(db, Options{FlushInterval: time.Hour}, t0)
	db.Close()
	r := read("h", uint32(t0.Unix()), 1, "d", 1)
	want(t, c.Admit(r, 0, t0), Fresh, "with a dead database")
	want(t, c.Admit(r, 0, t0), Replayed, "memory still answers")
	if err := c.Flush(); err == nil || c.Err() == nil {
		t.Fatal("flush to a closed database succeeded")
	}
	if err := c.Close(); err == nil {
		t.Fatal("close flushed to a closed database")
	}
}

func TestCorruptValuesDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openDB(t, path)
	defer db.Close()
	c, _ := Open(db, Options{}, t0)
	c.Close()
	db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketName)
		b.Put([]byte("short key"), make([]byte, 60))
		var k Key
		b.Put(k[:], []byte{valueVersion, 1, 2})
		return nil
	})
	c, err := Open(db, Options{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 0 || stored(t, db) != 0 {
		t.Fatalf("corrupt entries kept: %d / %d", c.Len(), stored(t, db))
	}
}

func BenchmarkAdmit(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "agent.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c, _ := Open(db, Options{}, t0)
	defer c.Close()
	h := sm3.Sum([]byte("h"))
	r := &Read{Device: "d", Expires: t0.Add(time.Minute)}
	b.ReportAllocs()
	i := uint32(0)
	for b.Loop() {
		i++
		r.Key = NewKey(&h, uint32(t0.Unix()), i)
		if c.Admit(r, DefaultDuplicateWindow, t0) != Fresh {
			b.Fatal("not fresh")
		}
	}
}

// WriteTx puts what is pending into the caller's transaction: a rolled-back one leaves it
// pending (the flusher still writes it), a committed one takes it off the pending set, and
// a marking made after the snapshot survives that commit.
func TestWriteTx(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openDB(t, path)
	defer db.Close()
	c, _ := Open(db, Options{FlushInterval: time.Hour}, t0)
	defer c.Close()
	gen := uint32(t0.Unix())
	c.Admit(read("h", gen, 1, "d", 1), 0, t0)

	rollback := errors.New("the caller's commit failed")
	if err := db.Update(func(tx *bbolt.Tx) error {
		if err := c.WriteTx(tx); err != nil {
			return err
		}
		return rollback
	}); err != rollback {
		t.Fatal(err)
	}
	if n := stored(t, db); n != 0 {
		t.Fatalf("%d entries on disk after a rollback", n)
	}
	if n := pendingLen(c); n != 1 {
		t.Fatalf("%d pending after a rollback, want 1", n)
	}

	if err := db.Update(func(tx *bbolt.Tx) error {
		if err := c.WriteTx(tx); err != nil {
			return err
		}
		// Admitted while the transaction runs: not in its snapshot, so still pending.
		c.Admit(read("h", gen, 2, "d", 1), 0, t0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := stored(t, db); n != 1 {
		t.Fatalf("%d entries on disk after the commit, want 1", n)
	}
	if n := pendingLen(c); n != 1 {
		t.Fatalf("%d pending after the commit, want 1 (the code admitted during it)", n)
	}

	// A transaction of another database writes nothing of this cache.
	other := openDB(t, filepath.Join(t.TempDir(), "other.db"))
	defer other.Close()
	if err := other.Update(c.WriteTx); err != nil {
		t.Fatal(err)
	}
	if n := pendingLen(c); n != 1 {
		t.Fatalf("%d pending after another database's commit", n)
	}

}

func pendingLen(c *Cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
