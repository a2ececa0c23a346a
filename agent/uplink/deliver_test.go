package uplink_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// The platform is down for 60 s (5 s with -short) while the kiosk keeps scanning;
// when it is back, everything is delivered, in seq order, exactly once, without a
// restart — and the loop did not spin while it was down.
func TestPlatformDownThenBack(t *testing.T) {
	t.Parallel()
	down := 60 * time.Second
	if testing.Short() {
		down = 5 * time.Second
	}
	// MaxBackoff 4 s: the mechanism is the same as with 60 s, and the test ends a few
	// seconds after the platform is back instead of up to a minute.
	e := newEnv(t, envOptions{up: uplink.Options{MaxBackoff: 4 * time.Second}})
	e.run()
	var want []*event.Event
	want = append(want, e.appendN(10)...)
	waitFor(t, 10*time.Second, "first events delivered", func() bool { return len(e.sim.Events()) == 10 })

	e.sim.Down(down)
	downAt := time.Now()
	// Scans keep coming while the platform is away; half-way, the status says why
	// nothing goes out.
	var midway *uplink.Status
	for time.Since(downAt) < down*3/4 {
		want = append(want, e.appendN(5)...)
		time.Sleep(down / 20)
		if midway == nil && time.Since(downAt) > down/2 {
			st := e.up.Status()
			midway = &st
			if p := e.ob.Stats().Pending; p == 0 {
				t.Fatal("nothing pending while the platform is down")
			}
		}
	}
	if midway.State != uplink.StateRetrying || midway.LastError != "unreachable" {
		t.Fatalf("while down: status %+v, want retrying, unreachable", *midway)
	}
	waitFor(t, down+30*time.Second, "everything delivered after the platform came back", func() bool {
		return e.ob.Stats().Pending == 0
	})
	checkExactlyOnce(t, e.sim, want)
	// Backoff, not a busy loop: 250 ms doubling to 4 s is at most ~25 attempts a
	// minute, whatever Notify says meanwhile.
	if n := e.sim.Stats().DownResets; n > int(down/time.Second)/2+10 {
		t.Fatalf("%d connection attempts while down for %s: the loop is not backing off", n, down)
	}
	// The status follows the outbox by a moment.
	waitFor(t, 2*time.Second, "status idle with everything counted", func() bool {
		st := e.up.Status()
		return st.State == uplink.StateIdle && st.Delivered == uint64(len(want))
	})
}

// Under 20 % 5xx, connection resets and answers lost after the platform stored the
// batch, the platform ends up with every event exactly once and seq gap-free, and no
// attempt ever reused a nonce (no transparent retry by net/http).
func TestExactlyOnceUnderFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{up: uplink.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}})
	e.sim.SetFaults(platformsim.Faults{ErrorRate: 0.20, ResetRate: 0.10, DropRate: 0.15, Latency: time.Millisecond})
	e.run()
	var want []*event.Event
	for i := 0; i < 30; i++ {
		want = append(want, e.appendN(40)...)
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, 90*time.Second, "all 1,200 events delivered", func() bool {
		return e.ob.Stats().Pending == 0 && e.up.Status().Delivered == uint64(len(want))
	})
	checkExactlyOnce(t, e.sim, want)
	st := e.sim.Stats()
	if st.Errors == 0 || st.Resets == 0 || st.Drops == 0 {
		t.Fatalf("faults not exercised: %+v", st)
	}
	if st.Duplicates == 0 {
		t.Fatal("no batch was sent twice: the lost answers were not exercised")
	}
	if st.Conflicts != 0 || st.Unauthorized[platformsim.ReasonNonceReplayed] != 0 || len(st.Unauthorized) != 0 {
		t.Fatalf("conflicts or 401s under faults: %+v", st)
	}
	// Each event is acknowledged to the uplink once; the duplicates it heard of are
	// those whose first answer was lost (some second answers were lost too).
	if us := e.up.Status(); us.Delivered != uint64(len(want)) || us.Duplicates == 0 || us.Duplicates > uint64(st.Duplicates) {
		t.Fatalf("uplink counted %d acknowledged (%d duplicates); platform %d accepted, %d duplicates", us.Delivered, us.Duplicates, st.Accepted, st.Duplicates)
	}
}

// 413 halves a batch until it fits; a single event still too large is dead-lettered
// as too_large; events the platform rejects are dead-lettered with its reason; the
// rest is delivered.
func TestSplitAndReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: platformsim.Options{MaxBodyBytes: 8 << 10}})
	want := e.appendN(50) // ~600 bytes each: 30 KiB, 4 times the platform's limit
	big := newEvent(t)
	big.Identity.IssuerOrg = strings.Repeat("x", 10<<10)
	if err := e.ob.Append(big); err != nil {
		t.Fatal(err)
	}
	badID := newEvent(t)
	badID.EventID = "0190a6a4-7a3c-4def-8abc-123456789abc" // a UUIDv4 shape: not v7
	otherTerm := newEvent(t)
	otherTerm.TerminalID = "K-9999"
	for _, ev := range []*event.Event{badID, otherTerm} {
		if err := e.ob.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, e.appendN(5)...)
	e.run()
	waitFor(t, 20*time.Second, "queue settled", func() bool { return e.ob.Stats().Pending == 0 })

	dead, err := e.ob.DeadLetters(0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]string{}
	for _, d := range dead {
		got[d.Seq] = d.Reason
	}
	wantDead := map[uint64]string{big.Seq: "too_large", badID.Seq: "bad_event_id", otherTerm.Seq: "terminal_mismatch"}
	if len(got) != len(wantDead) {
		t.Fatalf("dead letters %v, want %v", got, wantDead)
	}
	for seq, r := range wantDead {
		if got[seq] != r {
			t.Fatalf("dead letters %v, want %v", got, wantDead)
		}
	}
	if e.sim.Stats().TooLarge == 0 {
		t.Fatal("the platform never answered 413: nothing was split")
	}
	evs := e.sim.Events()
	if len(evs) != len(want) {
		t.Fatalf("platform holds %d events, want %d", len(evs), len(want))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("out of order at %d: %d after %d", i, evs[i].Seq, evs[i-1].Seq)
		}
	}
	waitFor(t, 2*time.Second, "status counts 3 dead letters", func() bool { return e.up.Status().DeadLettered == 3 })
}

// A 400 for the whole batch is split down to the event that causes it, which alone is
// dead-lettered; the platform here is the emulator behind a proxy that refuses any
// batch holding one poisoned event.
func TestWholeBatch400Isolated(t *testing.T) {
	t.Parallel()
	var poison atomic.Value
	poison.Store("none")
	e := newEnv(t, envOptions{platform: func(e *env) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if bytes.Contains(b, []byte(poison.Load().(string))) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"reason":"schema"}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			e.sim.ServeHTTP(w, r)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}})
	want := e.appendN(20)
	bad := newEvent(t)
	if err := e.ob.Append(bad); err != nil {
		t.Fatal(err)
	}
	poison.Store(bad.EventID)
	want = append(want, e.appendN(20)...)
	e.run()
	waitFor(t, 20*time.Second, "queue settled", func() bool { return e.ob.Stats().Pending == 0 })
	dead, _ := e.ob.DeadLetters(0)
	if len(dead) != 1 || dead[0].Seq != bad.Seq || dead[0].Reason != "schema" {
		t.Fatalf("dead letters %+v, want only seq %d (schema)", dead, bad.Seq)
	}
	if got := len(e.sim.Events()); got != len(want) {
		t.Fatalf("platform holds %d, want %d", got, len(want))
	}
}

// 401: the events stay, the status says auth_failed, and once the platform knows the
// terminal everything goes through and the flag clears.
func TestAuthFailedNeverDrops(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noTerm: true, up: uplink.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}})
	want := e.appendN(30)
	e.run()
	waitFor(t, 10*time.Second, "auth_failed", func() bool { return e.up.Status().AuthFailed })
	time.Sleep(500 * time.Millisecond)
	st := e.up.Status()
	if st.State != uplink.StateAuthFailed || st.LastError != "auth_failed" {
		t.Fatalf("status %+v", st)
	}
	if p := e.ob.Stats(); p.Pending != 30 || p.Dead != 0 {
		t.Fatalf("outbox %+v: events dropped on 401", p)
	}
	if n := e.sim.Stats().Unauthorized[platformsim.ReasonUnknownTerminal]; n < 2 {
		t.Fatalf("%d refused attempts: not retried", n)
	}
	if !strings.Contains(e.logs.String(), `"platform_reason":"unknown_terminal"`) {
		t.Fatalf("log does not carry the platform's reason:\n%s", e.logs.String())
	}
	e.sim.AddTerminal(terminalID, sm2sig.Public(e.key))
	waitFor(t, 10*time.Second, "delivered once registered", func() bool { return e.ob.Stats().Pending == 0 })
	checkExactlyOnce(t, e.sim, want)
	if e.up.Status().AuthFailed {
		t.Fatal("auth_failed still raised after success")
	}
}

// A kiosk clock 10 minutes slow: the first attempt is refused as stale, the Date of
// that answer gives the offset, the next attempt is signed with the platform's time and
// accepted; clock_offset is raised, and cleared once the clocks agree again.
func TestClockOffset(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64
	skew.Store(int64(10 * time.Minute))
	e := newEnv(t, envOptions{
		sim: platformsim.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }},
		up:  uplink.Options{MinBackoff: 10 * time.Millisecond},
	})
	want := e.appendN(3)
	if st := e.up.Status(); !st.ClockMeasuredAt.IsZero() || st.ClockOffsetSeconds != 0 {
		t.Fatalf("status before any answer %+v: nothing was measured yet", st)
	}
	e.run()
	waitFor(t, 10*time.Second, "delivered", func() bool { return e.ob.Stats().Pending == 0 })
	checkExactlyOnce(t, e.sim, want)
	if at := e.up.Status().ClockMeasuredAt; at.IsZero() || time.Since(at) > 10*time.Second {
		t.Fatalf("clock_measured_at %v after answers", at)
	}
	if n := e.sim.Stats().Unauthorized[platformsim.ReasonStaleTimestamp]; n != 1 {
		t.Fatalf("%d stale_timestamp refusals, want exactly 1 (the attempt before the offset was known)", n)
	}
	st := e.up.Status()
	if !st.ClockOffset || st.ClockOffsetSeconds < 598 || st.ClockOffsetSeconds > 602 {
		t.Fatalf("status %+v, want clock_offset raised at ~600 s", st)
	}
	if d := e.up.Now().Sub(time.Now()); d < 598*time.Second || d > 602*time.Second {
		t.Fatalf("Now is %s ahead of the local clock, want ~10m", d)
	}
	if !strings.Contains(e.logs.String(), `"reason":"clock_offset"`) {
		t.Fatal("clock_offset not logged")
	}
	// 60 s is within the 120 s limit: back to the local clock.
	skew.Store(int64(60 * time.Second))
	e.appendN(1)
	waitFor(t, 10*time.Second, "clock_offset cleared", func() bool { return !e.up.Status().ClockOffset })
	if d := e.up.Now().Sub(time.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("Now still off by %s after the clocks agreed", d)
	}
}

// The local clock ran 10 minutes slow, so the platform's time was taken (clock_offset);
// then NTP fixed the local clock while the platform could not be reached. The trusted
// time stays the platform's, carried on by the monotonic clock: it must not become the
// fixed local clock plus the old offset, 10 minutes ahead, which would turn every
// dynamic code away as expired until the platform answered again.
func TestClockStepWhileOffsetRaised(t *testing.T) { // not parallel: it sets the uplink's wall clock
	var step atomic.Int64
	step.Store(int64(-10 * time.Minute))
	// Restored in a cleanup registered before newEnv's, so after its goroutines stopped.
	t.Cleanup(uplink.SetWallClock(func() time.Time { return time.Now().Add(time.Duration(step.Load())) }))
	e := newEnv(t, envOptions{up: uplink.Options{MinBackoff: 10 * time.Millisecond}})
	e.appendN(1)
	e.run()
	waitFor(t, 10*time.Second, "delivered", func() bool { return e.ob.Stats().Pending == 0 })
	if !e.up.Status().ClockOffset {
		t.Fatal("a local clock 10 minutes slow did not raise clock_offset")
	}
	if d := e.up.Now().Sub(time.Now()); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("trusted time is %s off the platform's while the local clock is slow", d)
	}
	e.sim.SetFaults(platformsim.Faults{ResetRate: 1}) // the platform cannot be reached
	step.Store(0)                                     // NTP steps the local clock right
	time.Sleep(200 * time.Millisecond)
	if d := e.up.Now().Sub(time.Now()); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("after the local clock was stepped right, trusted time is %s off", d)
	}
}

// 429 with Retry-After: the uplink waits what the platform asked, not its own backoff.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{up: uplink.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}})
	e.sim.SetFaults(platformsim.Faults{ThrottleRate: 1, RetryAfter: 2 * time.Second})
	e.appendN(1)
	e.run()
	waitFor(t, 5*time.Second, "throttled", func() bool { return e.sim.Stats().Throttled == 1 })
	start := time.Now()
	e.sim.SetFaults(platformsim.Faults{})
	waitFor(t, 10*time.Second, "delivered", func() bool { return e.ob.Stats().Pending == 0 })
	if d := time.Since(start); d < 1800*time.Millisecond {
		t.Fatalf("retried after %s; Retry-After said 2 s", d)
	}
	if n := e.sim.Stats().Throttled; n != 1 {
		t.Fatalf("%d throttled attempts: the uplink retried before Retry-After", n)
	}
}

// The outbox file holds no plaintext name or ID number, before or after delivery, and
// the platform did get them (so they were there to leak); the photo never left.
func TestOutboxHoldsNoPlaintext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.appendN(20)
	e.db.Sync()
	path := filepath.Join(e.dir, "agent.db")
	for _, s := range []string{testIDNumber, testName, "SECRETPHOTO"} {
		if fileContains(t, path, s) {
			t.Fatalf("outbox file holds %q in plaintext (pending)", s)
		}
	}
	e.run()
	waitFor(t, 10*time.Second, "delivered", func() bool { return e.ob.Stats().Pending == 0 })
	e.stop()
	e.db.Sync()
	for _, s := range []string{testIDNumber, testName, "SECRETPHOTO"} {
		if fileContains(t, path, s) {
			t.Fatalf("outbox file holds %q in plaintext (delivered)", s)
		}
	}
	ev := e.sim.Events()[0]
	var got event.Event
	if err := json.Unmarshal(ev.JSON, &got); err != nil {
		t.Fatal(err)
	}
	if got.Identity == nil || got.Identity.IDNumber != testIDNumber || got.Identity.Name != testName {
		t.Fatalf("platform got identity %+v", got.Identity)
	}
	if e.sim.Stats().PhotoLeaks != 0 || bytes.Contains(ev.JSON, []byte("SECRETPHOTO")) {
		t.Fatal("the photo reached the platform")
	}
}

// Notify wakes the idle loop at once: with a one-hour idle poll, an event appended
// while idle is still delivered within a fraction of a second.
func TestNotifyWakesIdleLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{up: uplink.Options{IdlePoll: time.Hour}})
	e.run()
	time.Sleep(100 * time.Millisecond) // idle now
	start := time.Now()
	e.appendN(1)
	waitFor(t, 2*time.Second, "delivered after Notify", func() bool { return len(e.sim.Events()) == 1 })
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %s", d)
	}
	if n := e.sim.Stats().Requests; n != 1 {
		t.Fatalf("%d requests for one event while idle: the idle loop polls", n)
	}
}
