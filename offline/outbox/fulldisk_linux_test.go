package outbox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/internal/tmpfstest"
	"github.com/ehc-agent/ehc-agent/offline/reserve"
)

// On a real full disk (a tmpfs filled to the last page) events are still committed,
// in the reserve's space; only when that is used up too does a commit fail, with a
// no-space error and nothing half-written. Once space is free, the queue delivers,
// takes new events and the reserve back, and every event committed is there, in seq
// order without a gap, after a reopen.
func TestFullDiskCommitsInTheReserve(t *testing.T) {
	dir := tmpfstest.Mount(t, 8<<20)
	r, err := reserve.Open(filepath.Join(dir, "agent.reserve"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ob, db := openAt(t, dir, Options{Reserve: r})
	defer func() { db.Close() }()
	for i := 0; i < 20; i++ { // the database has its first pages
		if err := ob.Append(identityEvent(fmt.Sprint("before-", i))); err != nil {
			t.Fatal(err)
		}
	}
	filler := tmpfstest.Fill(t, dir, 0)

	committed, afterFull := 20, 0
	var failure error
	for i := 0; i < 20_000 && failure == nil; i++ {
		e := identityEvent(fmt.Sprint("full-", i))
		if failure = ob.Append(e); failure == nil {
			committed++
			afterFull++
			if e.Seq != uint64(committed) {
				t.Fatalf("seq %d, want %d", e.Seq, committed)
			}
		} else if e.Seq != 0 {
			t.Fatalf("an event not committed keeps seq %d", e.Seq)
		}
	}
	if failure == nil {
		t.Fatal("20,000 events fitted on a full 8 MiB disk: the test's disk is not full")
	}
	if !reserve.NoSpace(failure) {
		t.Fatalf("commit failed with %v, want a no-space error", failure)
	}
	if inUse, _ := r.InUse(); !inUse {
		t.Fatal("the disk filled up but the reserve was not used")
	}
	// 1 MiB holds hundreds of these events; a handful would mean the reserve gave
	// nothing and the commits succeeded in bbolt's own slack.
	if afterFull < 200 {
		t.Fatalf("only %d events committed after the disk was full", afterFull)
	}
	t.Logf("%d events committed on the full disk, in the reserve", afterFull)

	os.Remove(filler)
	recs, err := ob.Pending(100, 1<<20)
	if err != nil || len(recs) != 100 {
		t.Fatalf("Pending: %d, %v", len(recs), err)
	}
	seqs := make([]uint64, len(recs))
	for i, rec := range recs {
		seqs[i] = rec.Seq
	}
	if err := ob.Delivered(seqs, time.Now()); err != nil {
		t.Fatalf("delivery after space came back: %v", err)
	}
	if err := ob.Append(identityEvent("after")); err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
	committed++
	if ok, err := r.Restore(); !ok || err != nil {
		t.Fatalf("reserve not restored with the disk free: %v, %v", ok, err)
	}

	db.Close()
	ob, db = openAt(t, dir, Options{Reserve: r})
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("database inconsistent after the full disk: %v", err)
	}
	if s := ob.Stats(); s.LastSeq != uint64(committed) || s.Pending != committed-100 || s.OldestSeq != 101 {
		t.Fatalf("after reopen: %+v, want last seq %d, %d pending from 101", s, committed, committed-100)
	}
	all, err := ob.Pending(committed, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range all {
		if rec.Seq != uint64(101+i) {
			t.Fatalf("pending record %d has seq %d, want %d", i, rec.Seq, 101+i)
		}
	}
}
