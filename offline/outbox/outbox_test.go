package outbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

func openAt(t testing.TB, dir string, o Options) (*Outbox, *bbolt.DB) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "agent.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.LoadOrCreate(filepath.Join(dir, "outbox.key"))
	if err != nil {
		t.Fatal(err)
	}
	ob, err := Open(db, ring, o)
	if err != nil {
		t.Fatal(err)
	}
	return ob, db
}

func identityEvent(id string) *event.Event {
	return &event.Event{
		EventID: id, TerminalID: "K-0001", OccurredAt: time.Date(2026, 11, 24, 8, 0, 1, 0, time.UTC),
		Source:   event.Source{Kind: "card", Device: "reader", Driver: "pcsc"},
		Identity: &event.Identity{Name: "张三丰", IDNumber: "110101198001011234", Photo: "SECRETPHOTO"},
	}
}

func TestSeqGapFreeAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ob, db := openAt(t, dir, Options{})
	for i := 0; i < 5; i++ {
		e := identityEvent("e")
		if err := ob.Append(e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) {
			t.Fatalf("seq = %d, want %d", e.Seq, i+1)
		}
	}
	db.Close()
	ob, db = openAt(t, dir, Options{})
	defer db.Close()
	e := identityEvent("after")
	if err := ob.Append(e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 6 {
		t.Fatalf("seq after reopen = %d, want 6", e.Seq)
	}
	if s := ob.Stats(); s.Pending != 6 || s.LastSeq != 6 || s.OldestSeq != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestPendingOrderBatchesAndMoves(t *testing.T) {
	ob, db := openAt(t, t.TempDir(), Options{})
	defer db.Close()
	for i := 0; i < 10; i++ {
		if err := ob.Append(identityEvent("e")); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := ob.Pending(4, 1<<20)
	if err != nil || len(recs) != 4 || recs[0].Seq != 1 || recs[3].Seq != 4 {
		t.Fatalf("Pending(4) = %v, %v", recs, err)
	}
	// A byte bound smaller than one event still yields that one event.
	if recs, _ := ob.Pending(100, 1); len(recs) != 1 {
		t.Fatalf("Pending with tiny byte bound = %d events", len(recs))
	}
	if bytes.Contains(recs[0].JSON, []byte("SECRETPHOTO")) {
		t.Fatal("photo reached the outbox")
	}
	if err := ob.Delivered([]uint64{1, 2, 3, 3}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ob.DeadLetter(4, "schema"); err != nil {
		t.Fatal(err)
	}
	recs, _ = ob.Pending(100, 1<<20)
	if len(recs) != 6 || recs[0].Seq != 5 {
		t.Fatalf("after moves: %d pending, first %d", len(recs), recs[0].Seq)
	}
	if s := ob.Stats(); s.Pending != 6 || s.Dead != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if n, err := ob.Compact(time.Now().Add(48 * time.Hour)); err != nil || n != 3 {
		t.Fatalf("Compact = %d, %v; want 3", n, err)
	}
}

func TestFullIsReportedButNothingDropped(t *testing.T) {
	ob, db := openAt(t, t.TempDir(), Options{MaxPending: 2})
	defer db.Close()
	for i := 0; i < 2; i++ {
		if err := ob.Append(identityEvent("e")); err != nil {
			t.Fatal(err)
		}
	}
	e := identityEvent("over")
	if err := ob.Append(e); !errors.Is(err, ErrFull) {
		t.Fatalf("third append: %v, want ErrFull", err)
	}
	if e.Seq != 3 || ob.Stats().Pending != 3 || !ob.Stats().Full {
		t.Fatalf("event over the cap must still be committed: seq %d, %+v", e.Seq, ob.Stats())
	}
}

// A group commit that crosses the cap says from which seq on its events are over it:
// the ones before were within the cap and must not say outbox_full.
func TestFullFromSeqInAGroup(t *testing.T) {
	ob, db := openAt(t, t.TempDir(), Options{MaxPending: 5})
	defer db.Close()
	if err := ob.AppendAll([]*event.Event{identityEvent("a"), identityEvent("b"), identityEvent("c")}); err != nil {
		t.Fatal(err)
	}
	group := []*event.Event{identityEvent("d"), identityEvent("e"), identityEvent("f"), identityEvent("g")}
	err := ob.AppendAll(group)
	var full *FullError
	if !errors.Is(err, ErrFull) || !errors.As(err, &full) || full.From != 6 {
		t.Fatalf("group crossing the cap of 5 at seq 6: %v", err)
	}
	if err := ob.Append(identityEvent("h")); !errors.As(err, &full) || full.From != 8 {
		t.Fatalf("one more over the cap: %v", err)
	}
}

func TestFileHoldsNoPlaintextPersonalData(t *testing.T) {
	dir := t.TempDir()
	ob, db := openAt(t, dir, Options{})
	for i := 0; i < 50; i++ {
		if err := ob.Append(identityEvent("e")); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"110101198001011234", "张三丰", "SECRETPHOTO"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("raw bbolt file holds %q in plaintext", s)
		}
	}
}

func TestCountsSurviveReopenWithoutWalking(t *testing.T) {
	dir := t.TempDir()
	ob, db := openAt(t, dir, Options{})
	for i := 0; i < 7; i++ {
		ob.Append(identityEvent("e"))
	}
	ob.Delivered([]uint64{1, 2}, time.Now())
	ob.DeadLetter(3, "schema")
	if _, err := ob.Retry([]uint64{3}); err != nil {
		t.Fatal(err)
	}
	ob.DeadLetter(4, "schema")
	db.Close()
	ob, db = openAt(t, dir, Options{})
	defer db.Close()
	if s := ob.Stats(); s.Pending != 4 || s.Dead != 1 || s.LastSeq != 7 {
		t.Fatalf("after reopen: %+v", s)
	}
	recs, _ := ob.Pending(100, 1<<20)
	if len(recs) != 4 {
		t.Fatalf("%d records pending, counts say 4", len(recs))
	}
}

// AppendAll commits a group in one transaction: consecutive seqs in order, the InCommit
// hook inside that transaction, and all or nothing when the transaction fails.
func TestAppendAllGroupCommit(t *testing.T) {
	dir := t.TempDir()
	var commits int
	fail := false
	marker := []byte("with-the-events")
	ob, db := openAt(t, dir, Options{InCommit: func(tx *bbolt.Tx) error {
		commits++
		if fail {
			return errors.New("hook failed")
		}
		b, err := tx.CreateBucketIfNotExists(marker)
		if err != nil {
			return err
		}
		return b.Put([]byte{byte(commits)}, []byte("x"))
	}})
	defer db.Close()
	if err := ob.Append(identityEvent("first")); err != nil {
		t.Fatal(err)
	}
	group := []*event.Event{identityEvent("a"), identityEvent("b"), identityEvent("c")}
	if err := ob.AppendAll(group); err != nil {
		t.Fatal(err)
	}
	for i, e := range group {
		if e.Seq != uint64(2+i) {
			t.Fatalf("event %d: seq %d, want %d", i, e.Seq, 2+i)
		}
	}
	if commits != 2 {
		t.Fatalf("%d transactions for two appends, want 2", commits)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(marker).Stats().KeyN; n != 2 {
			t.Errorf("the hook's writes: %d keys, want 2", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The hook fails: nothing of the group is committed and no seq is used up.
	fail = true
	bad := []*event.Event{identityEvent("x"), identityEvent("y")}
	if err := ob.AppendAll(bad); err == nil {
		t.Fatal("a failed hook did not fail the commit")
	}
	for _, e := range bad {
		if e.Seq != 0 {
			t.Fatalf("an uncommitted event kept seq %d", e.Seq)
		}
	}
	fail = false
	if st := ob.Stats(); st.LastSeq != 4 || st.Pending != 4 {
		t.Fatalf("after a failed group: %+v, want last_seq 4, pending 4", st)
	}
	next := identityEvent("next")
	if err := ob.Append(next); err != nil || next.Seq != 5 {
		t.Fatalf("next append: seq %d, err %v; want 5", next.Seq, err)
	}
	recs, err := ob.Pending(100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.EventID)
	}
	if got := strings.Join(ids, ","); got != "first,a,b,c,next" {
		t.Fatalf("pending in order: %s", got)
	}
}

// BenchmarkAppend is the journal floor inside every event's latency: one event, one
// transaction, fsync'd, on the temporary directory's filesystem.
func BenchmarkAppend(b *testing.B) { benchmarkAppend(b, 1) }

// BenchmarkAppendGroup8 commits 8 events per transaction (group commit, as the pipeline
// does with reads that queued up during a commit); ns/op is per event.
func BenchmarkAppendGroup8(b *testing.B) { benchmarkAppend(b, 8) }

func benchmarkAppend(b *testing.B, group int) {
	ob, db := openAt(b, b.TempDir(), Options{})
	defer db.Close()
	es := make([]*event.Event, group)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += group {
		for i := range es {
			es[i] = identityEvent("bench")
		}
		if err := ob.AppendAll(es); err != nil {
			b.Fatal(err)
		}
	}
}
