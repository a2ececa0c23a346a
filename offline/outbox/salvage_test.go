package outbox

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ehc-agent/ehc-agent/offline/seal"
)

// fill appends n events to an outbox with a seq floor in dir and returns the floor.
func fill(t *testing.T, dir string, n int) *Floor {
	t.Helper()
	floor, err := OpenFloor(filepath.Join(dir, "seq.floor"))
	if err != nil {
		t.Fatal(err)
	}
	ob, db := openAt(t, dir, Options{Floor: floor})
	defer db.Close()
	for i := range n {
		if err := ob.Append(identityEvent(fmt.Sprintf("0193e1f2-0000-7000-8000-%012d", i))); err != nil {
			t.Fatal(err)
		}
	}
	return floor
}

// The floor file is ahead of every committed seq; a normal restart ignores it (seq stays
// gap-free), and an outbox on a fresh database (one that never held a seq) continues
// above it instead of at 1.
func TestFloorResumesAboveLostDatabase(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 5)
	f, err := ReadFloor(filepath.Join(dir, "seq.floor"))
	if err != nil || f != 1+FloorBlock {
		t.Fatalf("floor %d, %v; want %d, written at the first commit", f, err, 1+FloorBlock)
	}
	floor, _ := OpenFloor(filepath.Join(dir, "seq.floor"))
	ob, db := openAt(t, dir, Options{Floor: floor})
	e := identityEvent("next")
	if err := ob.Append(e); err != nil || e.Seq != 6 {
		t.Fatalf("seq %d, %v after a normal restart, want 6", e.Seq, err)
	}
	db.Close()

	os.Remove(filepath.Join(dir, "agent.db")) // lost
	ob, db = openAt(t, dir, Options{Floor: floor})
	defer db.Close()
	e = identityEvent("fresh")
	if err := ob.Append(e); err != nil || e.Seq != f+1 {
		t.Fatalf("seq %d, %v on a fresh database, want %d (above the floor)", e.Seq, err, f+1)
	}
}

// A floor file that fails its checksum counts as absent; it is rewritten above the
// database's last seq at open.
func TestFloorDamagedFile(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 3)
	path := filepath.Join(dir, "seq.floor")
	os.WriteFile(path, []byte("9001 00000000\n"), 0o600)
	if _, err := ReadFloor(path); err == nil {
		t.Fatal("a floor with a wrong checksum was read")
	}
	floor, err := OpenFloor(path)
	if err != nil || floor.Value() != 0 {
		t.Fatalf("damaged floor opened as %d, %v", floor.Value(), err)
	}
	_, db := openAt(t, dir, Options{Floor: floor})
	db.Close()
	if f, err := ReadFloor(path); err != nil || f != 3+FloorBlock {
		t.Fatalf("floor %d, %v; want it rewritten above the last seq 3", f, err)
	}
}

// With both meta pages overwritten bbolt cannot open the file at all; the page scan
// still finds every pending event, each authenticated under its seq. Delivered events
// are not returned from the live tree; a ring with another key salvages nothing.
func TestSalvagePageScan(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 40)
	path := filepath.Join(dir, "agent.db")
	ring, err := seal.LoadOrCreate(filepath.Join(dir, "outbox.key"))
	if err != nil {
		t.Fatal(err)
	}
	if s := Salvage(path, ring, 0); s.Method != "bbolt" || len(s.Records) != 40 {
		t.Fatalf("intact file: %s, %d records; want bbolt, 40", s.Method, len(s.Records))
	}
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	junk := make([]byte, 8<<10)
	rand.Read(junk)
	f.WriteAt(junk, 0)
	f.Close()

	s := Salvage(path, ring, 0)
	if s.Method != "page_scan" || len(s.Records) != 40 || s.Err == nil {
		t.Fatalf("damaged file: %s, %d records, bbolt error %v; want page_scan, 40", s.Method, len(s.Records), s.Err)
	}
	for i, r := range s.Records {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	if s := Salvage(path, ring, 10); len(s.Records) != 10 {
		t.Fatalf("limit 10: %d records", len(s.Records))
	}

	// Restore queues them in a fresh outbox under their seqs, once.
	fresh := t.TempDir()
	os.Link(filepath.Join(dir, "outbox.key"), filepath.Join(fresh, "outbox.key"))
	ob, db := openAt(t, fresh, Options{})
	defer db.Close()
	for range 2 {
		if n, err := ob.Restore(s.Records); err != nil || (n != 40 && n != 0) {
			t.Fatalf("restore: %d, %v", n, err)
		}
	}
	recs, err := ob.Pending(100, 1<<20)
	if err != nil || len(recs) != 40 || recs[0].Seq != 1 || recs[0].EventID != "0193e1f2-0000-7000-8000-000000000000" {
		t.Fatalf("pending after restore: %d, %v", len(recs), err)
	}
	if st := ob.Stats(); st.Pending != 40 || st.LastSeq != 40 {
		t.Fatalf("stats after restore: %+v", st)
	}

	other, _ := seal.LoadOrCreate(filepath.Join(t.TempDir(), "other.key"))
	if s := Salvage(path, other, 0); len(s.Records) != 0 || s.Method != "none" {
		t.Fatalf("another key salvaged %d records (%s)", len(s.Records), s.Method)
	}
	if s := Salvage(filepath.Join(dir, "missing.db"), ring, 0); len(s.Records) != 0 || s.Method != "none" {
		t.Fatalf("a missing file salvaged %d", len(s.Records))
	}
}

// Salvage reads arbitrary bytes without panicking or taking anything.
func FuzzScanPages(f *testing.F) {
	f.Add(make([]byte, 4096))
	ring, err := seal.NewRing(make([]byte, 16))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		found := map[uint64][]byte{}
		leafRecords(b, ring, found, 0)
		if len(found) != 0 {
			t.Fatal("garbage authenticated")
		}
	})
}
