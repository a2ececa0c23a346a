package uplink_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

const terminalID = "K-0001"

// Personal data every test event carries, to look for where it must not be.
const (
	testName     = "张三丰"
	testIDNumber = "110101198001011234"
)

// env is one terminal (bbolt outbox, SM2 key, uplink) and one platform emulator, both
// real, talking over loopback.
type env struct {
	t    testing.TB
	dir  string
	db   *bbolt.DB
	ob   *outbox.Outbox
	key  *sm2.PrivateKey
	sim  *platformsim.Server
	up   *uplink.Uplink
	logs *logtest.Buffer

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type envOptions struct {
	sim      platformsim.Options
	up       uplink.Options
	noTerm   bool // do not register the terminal's key at the platform
	platform func(*env) string
}

func newEnv(t testing.TB, eo envOptions) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), logs: &logtest.Buffer{}}
	var err error
	e.db, err = bbolt.Open(filepath.Join(e.dir, "agent.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	ring, err := seal.LoadOrCreate(filepath.Join(e.dir, "outbox.key"))
	if err != nil {
		t.Fatal(err)
	}
	if e.ob, err = outbox.Open(e.db, ring, outbox.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.key, _, err = uplink.LoadOrCreateKey(filepath.Join(e.dir, "terminal.key")); err != nil {
		t.Fatal(err)
	}
	so := eo.sim
	if so.Seed == 0 {
		so.Seed = 1
	}
	if e.sim, err = platformsim.New(so); err != nil {
		t.Fatal(err)
	}
	if !eo.noTerm {
		e.sim.AddTerminal(terminalID, sm2sig.Public(e.key))
	}
	if err := e.sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sim.Close() })

	o := eo.up
	if o.URL == "" {
		o.URL = e.sim.URL()
	}
	if eo.platform != nil {
		o.URL = eo.platform(e)
	}
	o.TerminalID, o.Key, o.Outbox = terminalID, e.key, e.ob
	if o.Logger == nil {
		o.Logger = e.logger()
	}
	if e.up, err = uplink.New(o); err != nil {
		t.Fatal(err)
	}
	return e
}

// logger writes JSON logs to e.logs.
func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// run starts the delivery loop (and the trust sync when the uplink has a store);
// cleanup stops and waits for both.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(2)
	go func() { defer e.wg.Done(); e.up.RunDelivery(ctx) }()
	go func() { defer e.wg.Done(); e.up.RunTrustSync(ctx) }()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		e.wg.Wait()
		e.cancel = nil
	}
}

func newEvent(t testing.TB) *event.Event {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return &event.Event{
		EventID: id.String(), TerminalID: terminalID, OccurredAt: time.Now().UTC(),
		Source:       event.Source{Kind: "card", Device: "reader", Driver: "pcsc"},
		Card:         &event.Card{Kind: "resident_id_card"},
		Verification: &event.Verification{Status: "valid", Offline: true},
		Identity:     &event.Identity{IDType: "01", IDNumber: testIDNumber, Name: testName, Photo: "SECRETPHOTO"},
	}
}

// appendN appends n events as the pipeline does: Append, then Notify.
func (e *env) appendN(n int) []*event.Event {
	e.t.Helper()
	out := make([]*event.Event, n)
	for i := range out {
		out[i] = newEvent(e.t)
		if err := e.ob.Append(out[i]); err != nil {
			e.t.Fatal(err)
		}
		e.up.Notify()
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkExactlyOnce asserts that the platform holds each of want exactly once, that the
// seqs it holds are 1..n without a gap, and that it first saw them in seq order.
func checkExactlyOnce(t *testing.T, sim *platformsim.Server, want []*event.Event) {
	t.Helper()
	got := sim.Events()
	if len(got) != len(want) {
		t.Fatalf("platform holds %d events, want %d", len(got), len(want))
	}
	seen := map[string]int{}
	for i, r := range got {
		seen[r.EventID]++
		if r.Seq != uint64(i+1) {
			t.Fatalf("platform's event #%d has seq %d: not delivered in seq order / gap", i, r.Seq)
		}
	}
	for _, e := range want {
		if n := seen[strings.ToLower(e.EventID)]; n != 1 {
			t.Fatalf("event %s (seq %d) held %d times", e.EventID, e.Seq, n)
		}
	}
	seqs := make([]int, 0, len(got))
	for _, r := range got {
		seqs = append(seqs, int(r.Seq))
	}
	sort.Ints(seqs)
	for i, s := range seqs {
		if s != i+1 {
			t.Fatalf("seq gap: position %d holds seq %d", i, s)
		}
	}
}

func fileContains(t *testing.T, path string, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}
