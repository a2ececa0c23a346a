package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/offline/verify"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

type collect struct {
	mu sync.Mutex
	ev []*event.Event
	ch chan struct{}
}

func (c *collect) Event(e *event.Event) {
	c.mu.Lock()
	c.ev = append(c.ev, e)
	c.mu.Unlock()
	c.ch <- struct{}{}
}

// stores makes a pipeline's stores in a fresh dir: issuer keys, a bbolt file (closed
// when the test ends) and the trust store of those keys.
func stores(t *testing.T) (*issuer.Keys, *bbolt.DB, *trust.Store) {
	t.Helper()
	dir := t.TempDir()
	keys, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(dir, "agent.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ts, err := trust.LoadDir(filepath.Join(dir, "keys"), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return keys, db, ts
}

// rig is a pipeline over a real trust chain, replay cache and outbox in a bbolt file.
func rig(t *testing.T) (*Pipeline, *issuer.Keys, *outbox.Outbox, *collect) {
	t.Helper()
	keys, db, ts := stores(t)
	rc, err := replay.Open(db, replay.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	ring, _ := seal.NewRing(make([]byte, 16))
	ob, err := outbox.Open(db, ring, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{TerminalID: "T-1"}, verify.New(ts, rc, verify.Options{}), ob)
	c := &collect{ch: make(chan struct{}, 100)}
	p.Subscribe(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, keys, ob, c
}

func (c *collect) wait(t *testing.T, n int) []*event.Event {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-c.ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d events", i, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*event.Event(nil), c.ev...)
}

func TestReadsBecomeCommittedEventsInOrder(t *testing.T) {
	p, keys, ob, c := rig(t)
	code, err := keys.NewCode(issuer.CodeOptions{Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Now()
	for _, s := range []string{code, code, "6225881234567890123", code} {
		p.Submit(ctx, device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte(s), At: at})
	}
	// Re-reads of the same code by the same device are double reads: no event, no seq.
	// The same code from another device is a replay.
	p.Submit(ctx, device.Read{Device: "side", Driver: "serial", Kind: "qr", Data: []byte(code), At: at})
	ev := c.wait(t, 3)
	if len(ev) != 3 {
		t.Fatalf("%d events", len(ev))
	}
	want := []struct {
		seq            uint64
		typ, status, r string
	}{{1, "ehc_offline", "valid", ""}, {2, "payment", "", ""}, {3, "ehc_offline", "invalid", "replayed"}}
	for i, w := range want {
		e := ev[i]
		if e.Seq != w.seq || e.Code.Type != w.typ {
			t.Errorf("event %d: seq %d type %s, want %d %s", i, e.Seq, e.Code.Type, w.seq, w.typ)
		}
		if w.status != "" && (e.Verification == nil || e.Verification.Status != w.status || e.Verification.Reason != w.r) {
			t.Errorf("event %d: verification %+v, want %s/%s", i, e.Verification, w.status, w.r)
		}
	}
	if ev[0].Identity == nil || len(ev[0].Identity.EHCID) != 64 || ev[0].Verification.ExpiresAt == nil {
		t.Errorf("valid event lacks identity or times: %+v", ev[0])
	}
	if m := ev[0].Code.Masked; m != code[:4]+"…"+code[len(code)-4:] {
		t.Errorf("EHC1 code masked as %q, want its first and last four characters", m)
	}
	if ev[1].Code.Masked != "6225***********0123" || ev[1].Verification != nil {
		t.Errorf("payment event: %+v %+v", ev[1].Code, ev[1].Verification)
	}
	// Every event told to a subscriber is already in the outbox.
	if s := ob.Stats(); s.LastSeq != 3 || s.Pending != 3 {
		t.Fatalf("outbox: %+v", s)
	}
	if st := p.Snapshot(); st.Reads != 5 || st.DoubleReads != 2 || st.Events != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

// failingJournal fails every commit with err.
type failingJournal struct{ err error }

func (j failingJournal) Append(*event.Event) error { return j.err }

// channels is a subscriber that also takes the codes routed to their channel, noting
// the order of what it is told.
type channels struct {
	mu  sync.Mutex
	log []string
}

func (c *channels) Event(e *event.Event) {
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf("event %d %s", e.Seq, e.Code.Type))
	c.mu.Unlock()
}

func (c *channels) Channel(e *event.Event, code string) {
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf("channel %d %s %s", e.Seq, e.Code.Type, code))
	c.mu.Unlock()
}

func (c *channels) NotCommitted(r device.Read, reason string) {
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf("failed %s %s", r.Device, reason))
	c.mu.Unlock()
}

// A read whose event could not be committed is told to nobody, its payment code goes
// nowhere, and the FailureObservers hear of it with a reason that says whether the disk
// was full.
func TestUncommittedEventIsNotAnnounced(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{fmt.Errorf("outbox: commit seq 1..1: %w", &os.PathError{Op: "write", Path: "agent.db", Err: syscall.ENOSPC}), ReasonDiskFull},
		{errors.New("outbox: commit seq 1..1: input/output error"), ReasonJournalFailed},
	} {
		p := New(Options{TerminalID: "T-1"}, nil, failingJournal{tc.err})
		c := &collect{ch: make(chan struct{}, 1)}
		p.Subscribe(c)
		ch := &channels{}
		p.Subscribe(ch)
		ctx, cancel := context.WithCancel(context.Background())
		p.Submit(ctx, device.Read{Device: "d", Data: []byte("HELLO"), At: time.Now()})
		p.Submit(ctx, device.Read{Device: "e", Data: []byte("6225881234567890123"), At: time.Now()})
		cancel()
		p.Run(ctx) // drains the queued reads, then returns
		want := []string{"failed d " + tc.reason, "failed e " + tc.reason}
		if len(c.ev) != 0 || !slices.Equal(ch.log, want) || p.Snapshot().JournalErrors != 2 {
			t.Fatalf("events %d, told %v (want %v), stats %+v", len(c.ev), ch.log, want, p.Snapshot())
		}
	}
}

// A payment or insurance code goes to the Channelers, unmasked, right after its event
// and with its seq; other codes do not, and the event itself has the code masked.
func TestChannelAfterEvent(t *testing.T) {
	p, keys, _, c := rig(t)
	p.SetOptions(Options{TerminalID: "T-1", Insurance: []*regexp.Regexp{regexp.MustCompile(`^YB[0-9]{16}$`)}})
	ch := &channels{}
	p.Subscribe(ch)
	code, err := keys.NewCode(issuer.CodeOptions{Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"6225881234567890123", code, "YB1234567890123456", "hello"} {
		p.Submit(context.Background(), device.Read{Device: "front", Data: []byte(d), At: time.Now()})
	}
	ev := c.wait(t, 4)
	// ch is told after c, on the pipeline's goroutine: wait for its last entry.
	var got string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ch.mu.Lock()
		got = strings.Join(ch.log, "|")
		n := len(ch.log)
		ch.mu.Unlock()
		if n >= 6 || time.Now().After(deadline) {
			break
		}
	}
	want := "event 1 payment|channel 1 payment 6225881234567890123|event 2 ehc_offline|event 3 insurance|channel 3 insurance YB1234567890123456|event 4 unknown"
	if got != want {
		t.Fatalf("told:\n%s\nwant:\n%s", got, want)
	}
	if ev[0].Code.Masked != "6225***********0123" || ev[2].Code.Masked == "YB1234567890123456" {
		t.Errorf("events carry the codes unmasked: %+v %+v", ev[0].Code, ev[2].Code)
	}
}

// groupJournal counts the transactions of a BatchJournal.
type groupJournal struct {
	*outbox.Outbox
	mu     sync.Mutex
	groups []int
}

func (g *groupJournal) AppendAll(es []*event.Event) error {
	g.mu.Lock()
	g.groups = append(g.groups, len(es))
	g.mu.Unlock()
	return g.Outbox.AppendAll(es)
}

func (g *groupJournal) Append(e *event.Event) error { return g.AppendAll([]*event.Event{e}) }

// observer is a subscriber that also takes verification and commit times.
type observer struct {
	collect
	verifies []time.Duration
	commits  []int // events per commit
	commitD  []time.Duration
}

func (o *observer) ObserveVerify(d time.Duration) { o.verifies = append(o.verifies, d) }
func (o *observer) ObserveCommit(d time.Duration, n int) {
	o.commits, o.commitD = append(o.commits, n), append(o.commitD, d)
}

// Reads queued while the pipeline was busy are committed together, in one transaction,
// in the order they arrived, each told only after that commit; each offline verification
// and the commit are reported to a TimingObserver.
func TestGroupCommit(t *testing.T) {
	keys, db, ts := stores(t)
	rc, err := replay.Open(db, replay.Options{FlushInterval: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ring, _ := seal.NewRing(make([]byte, 16))
	ob, err := outbox.Open(db, ring, outbox.Options{InCommit: rc.WriteTx})
	if err != nil {
		t.Fatal(err)
	}
	j := &groupJournal{Outbox: ob}
	p := New(Options{TerminalID: "T-1"}, verify.New(ts, rc, verify.Options{}), j)
	o := &observer{collect: collect{ch: make(chan struct{}, 100)}}
	p.Subscribe(o)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	at := time.Now()
	const n = 5
	for i := range n {
		code, err := keys.NewCode(issuer.CodeOptions{Sequence: uint32(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		p.Submit(ctx, device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte(code), At: at})
	}
	p.Submit(ctx, device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte("6225881234567890123"), At: at})
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	ev := o.wait(t, n+1)
	cancel()
	<-done

	j.mu.Lock()
	groups := append([]int(nil), j.groups...)
	j.mu.Unlock()
	if len(groups) != 1 || groups[0] != n+1 {
		t.Fatalf("transactions %v, want one of %d events", groups, n+1)
	}
	for i, e := range ev {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if i < n && (e.Verification == nil || e.Verification.Status != "valid" || *e.Verification.Sequence != uint32(i+1)) {
			t.Fatalf("event %d: %+v", i, e.Verification)
		}
	}
	if len(o.verifies) != n {
		t.Fatalf("%d verification times observed, want %d", len(o.verifies), n)
	}
	for _, d := range o.verifies {
		if d <= 0 || d > 10*time.Second {
			t.Fatalf("verification time %v", d)
		}
	}
	if len(o.commits) != 1 || o.commits[0] != n+1 || o.commitD[0] <= 0 || o.commitD[0] > 10*time.Second {
		t.Fatalf("commits observed: %v events taking %v, want one of %d events", o.commits, o.commitD, n+1)
	}
	// The accepted codes went to disk in the events' own transaction (the flusher's
	// interval is an hour): a crash now could not let any of them through again.
	if err := db.View(func(tx *bbolt.Tx) error {
		if k := tx.Bucket([]byte("replay")).Stats().KeyN; k != n {
			t.Errorf("%d replay entries on disk with the events, want %d", k, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// An event that no device read (a card application's) goes the reads' way: it gets the
// next seq, an event_id and the terminal, is in the outbox before a subscriber sees it,
// and Record returns only then.
func TestRecordCommitsLikeARead(t *testing.T) {
	p, _, ob, c := rig(t)
	ctx := context.Background()
	p.Submit(ctx, device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte("HELLO"), At: time.Now()})
	c.wait(t, 1)
	e := &event.Event{Source: event.Source{Kind: event.SourceApplication, Device: "idr", Driver: event.DriverApply},
		Application: &event.Application{ApplicationID: "app-1", Result: event.ApplicationUnreachable, Source: "manual",
			Applicant: event.MaskApplicant("01", "11010519491231002X", "张三")}}
	if err := p.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	// Committed and announced before Record returned: no wait.
	c.mu.Lock()
	n := len(c.ev)
	c.mu.Unlock()
	if n != 2 || e.Seq != 2 || e.TerminalID != "T-1" || len(e.EventID) != 36 || e.OccurredAt.IsZero() {
		t.Fatalf("%d events; recorded %+v", n, e)
	}
	recs, err := ob.Pending(10, 1<<20)
	if err != nil || len(recs) != 2 || recs[1].EventID != e.EventID || recs[1].Seq != 2 {
		t.Fatalf("outbox: %v %+v", err, recs)
	}
	if js := string(recs[1].JSON); !strings.Contains(js, `"result":"platform_unreachable"`) || strings.Contains(js, "11010519491231002X") {
		t.Errorf("outbox record: %s", js)
	}
	if st := p.Snapshot(); st.Reads != 1 || st.Events != 2 {
		t.Errorf("stats: %+v", st)
	}
}

// Records and reads from many goroutines at once: one writer, so seqs are 1..n with
// no gap and no repeat, and every Record came back committed.
func TestRecordConcurrentWithReads(t *testing.T) {
	p, _, ob, c := rig(t)
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- p.Record(ctx, &event.Event{Source: event.Source{Kind: event.SourceApplication, Device: event.DeviceLocalAPI, Driver: event.DriverApply},
				Application: &event.Application{Result: event.ApplicationCreated}})
		}()
		go func(i int) {
			defer wg.Done()
			p.Submit(ctx, device.Read{Device: "d", Driver: "serial", Kind: "qr", Data: []byte{'A' + byte(i)}, At: time.Now()})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ev := c.wait(t, 2*n)
	seen := map[uint64]bool{}
	for _, e := range ev {
		seen[e.Seq] = true
	}
	for s := uint64(1); s <= 2*n; s++ {
		if !seen[s] {
			t.Errorf("seq %d missing", s)
		}
	}
	if ob.Stats().LastSeq != 2*n {
		t.Errorf("outbox last seq %d", ob.Stats().LastSeq)
	}
}

// Record reports what became of the event: the journal's error when it could not be
// committed (nothing announced), ErrStopped once the pipeline has stopped, and the
// caller's context while the pipeline is not taking it.
func TestRecordReportsFailure(t *testing.T) {
	p := New(Options{TerminalID: "T-1"}, nil, failingJournal{errors.New("disk full")})
	c := &collect{ch: make(chan struct{}, 1)}
	p.Subscribe(c)
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	e := &event.Event{Source: event.Source{Kind: event.SourceApplication}, Application: &event.Application{}}
	if err := p.Record(short, e); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not running: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	if err := p.Record(context.Background(), e); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("journal failing: %v", err)
	}
	cancel()
	<-done
	if err := p.Record(context.Background(), e); !errors.Is(err, ErrStopped) {
		t.Fatalf("stopped: %v", err)
	}
	if len(c.ev) != 0 || p.Snapshot().JournalErrors != 1 {
		t.Fatalf("events %d, stats %+v", len(c.ev), p.Snapshot())
	}
}

// A valid code's facts are in its event even when they are zero (sequence 0 is the
// issuer's first code), and its extension goes as hex: CODES.md lists them all as what
// a valid result reports, and PLATFORM.md leaves out only fields that do not apply.
func TestValidCodeFactsKeepZeros(t *testing.T) {
	p, keys, _, c := rig(t)
	code, err := keys.NewCode(issuer.CodeOptions{Sequence: 0, Extension: []byte{0x00, 0xAB}})
	if err != nil {
		t.Fatal(err)
	}
	p.Submit(context.Background(), device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte(code), At: time.Now()})
	e := c.wait(t, 1)[0]
	if e.Verification.Status != "valid" {
		t.Fatalf("%+v", e.Verification)
	}
	b, err := json.Marshal(e.ForPlatform())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"sequence":0`, `"extension":"00AB"`, `"root_index":`, `"issuer_id":`, `"cert_serial":`, `"holder_category":`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("event lacks %s: %s", want, b)
		}
	}
	// An invalid code has none of them.
	bad, err := keys.NewCode(issuer.CodeOptions{Defect: "expired"})
	if err != nil {
		t.Fatal(err)
	}
	p.Submit(context.Background(), device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte(bad), At: time.Now()})
	e = c.wait(t, 1)[1]
	b, _ = json.Marshal(e)
	if e.Verification.Status != "invalid" || strings.Contains(string(b), `"sequence"`) || strings.Contains(string(b), `"extension"`) {
		t.Errorf("invalid code's event: %s", b)
	}
}

// A scan the framer dropped as too long is still an attempt: the device sink turns it
// into an event, unknown and invalid with reason too_long, as Classify does for a long
// payload that reached it. Other drops (a stale partial) make no event.
func TestTooLongDropIsAnEvent(t *testing.T) {
	p, _, ob, c := rig(t)
	var drops []string
	sink := &DeviceSink{Ctx: context.Background(), P: p, Driver: "serial", Logger: slog.New(slog.DiscardHandler),
		OnDrop: func(d device.Drop) { drops = append(drops, d.Reason) }}
	at := time.Now()
	sink.Drop(device.Drop{Device: "front", Reason: "stale_partial", Bytes: 12, At: at})
	sink.Drop(device.Drop{Device: "front", Reason: "too_long", Bytes: 5000, At: at})
	e := c.wait(t, 1)[0]
	if e.Source.Device != "front" || e.Source.Driver != "serial" || e.Source.Kind != "qr" || !e.OccurredAt.Equal(at.UTC()) ||
		e.Code == nil || e.Code.Type != "unknown" || e.Verification == nil || e.Verification.Status != "invalid" || e.Verification.Reason != "too_long" {
		t.Fatalf("event %+v code %+v verification %+v", e, e.Code, e.Verification)
	}
	if s := ob.Stats(); s.LastSeq != 1 {
		t.Errorf("outbox: %+v, want the one event", s)
	}
	if strings.Join(drops, ",") != "stale_partial,too_long" {
		t.Errorf("drops passed on: %v", drops)
	}
}

// Reads that queued up are committed as one group; when that group crosses the
// outbox's cap, only the events over it are logged outbox_full, all are told.
func TestGroupCrossingTheCapWarnsOnlyOverIt(t *testing.T) {
	_, db, _ := stores(t)
	ring, _ := seal.NewRing(make([]byte, 16))
	ob, err := outbox.Open(db, ring, outbox.Options{MaxPending: 5})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	p := New(Options{TerminalID: "T-1", Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil, ob)
	c := &collect{ch: make(chan struct{}, 100)}
	p.Subscribe(c)
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 8 { // queued before Run: taken as one group
		p.Submit(ctx, device.Read{Device: "d", Data: []byte(fmt.Sprint("HELLO-", i)), At: time.Now()})
	}
	cancel()
	p.Run(ctx)
	if len(c.ev) != 8 {
		t.Fatalf("%d events told, want 8", len(c.ev))
	}
	if n := strings.Count(logs.String(), "reason=outbox_full"); n != 3 {
		t.Fatalf("%d events logged outbox_full, want the 3 over a cap of 5:\n%s", n, logs.String())
	}
}
