package outbox

import (
	"testing"
	"time"
)

func TestDeadLettersListAndRetry(t *testing.T) {
	dir := t.TempDir()
	ob, db := openAt(t, dir, Options{})
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		if err := ob.Append(identityEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ob.DeadLetter(2, "bad_event_id"); err != nil {
		t.Fatal(err)
	}
	if err := ob.DeadLetter(4, "terminal_mismatch"); err != nil {
		t.Fatal(err)
	}
	if err := ob.Delivered([]uint64{1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	ds, err := ob.DeadLetters(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Seq != 2 || ds[0].Reason != "bad_event_id" || ds[0].EventID != "b" ||
		ds[1].Seq != 4 || ds[1].Reason != "terminal_mismatch" {
		t.Fatalf("dead letters %+v", ds)
	}
	if one, _ := ob.DeadLetters(1); len(one) != 1 {
		t.Fatalf("limit 1 gave %d", len(one))
	}
	if s := ob.Stats(); s.Pending != 1 || s.Dead != 2 {
		t.Fatalf("stats %+v", s)
	}

	// Retry of one seq, of a seq that is not dead, then of all; counts survive reopening.
	if n, err := ob.Retry([]uint64{4, 1, 99}); err != nil || n != 1 {
		t.Fatalf("retry [4 1 99]: %d %v", n, err)
	}
	db.Close()
	ob, db = openAt(t, dir, Options{})
	defer db.Close()
	if s := ob.Stats(); s.Pending != 2 || s.Dead != 1 {
		t.Fatalf("after reopen %+v", s)
	}
	if n, err := ob.Retry(nil); err != nil || n != 1 {
		t.Fatalf("retry all: %d %v", n, err)
	}
	recs, err := ob.Pending(10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Seq != 2 || recs[1].Seq != 3 || recs[2].Seq != 4 || recs[0].EventID != "b" {
		t.Fatalf("pending after retry %+v", recs)
	}
	if s := ob.Stats(); s.Dead != 0 || s.Pending != 3 {
		t.Fatalf("stats %+v", s)
	}
}
