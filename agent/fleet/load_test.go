package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/emmansun/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/agent/fleet/fleettest"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// The fleet under load (issue 14): N terminals — each a real Client with its own TLS
// client certificate and connection, all in this process — against one real
// mosquitto configured as docs/FLEET.md recommends (TLS, ACL, persistence). runLoad measures, in order:
//
//  1. connect storm: all N started at once, until all are connected and until an
//     operator has seen every one's first status;
//  2. status fan-in: every terminal's state changes every 100 ms, so each publishes
//     as often as the 1/s limit lets it; an operator subscribed to P/+/status counts
//     what arrives and how late (status "at" → receipt);
//  3. `fleet status`: a fresh operator dials, reads all retained statuses (the CLI's
//     quiet time included) and renders the table, as the command does;
//  4. commands: signed `doctor` round trips to random terminals, one at a time;
//  5. broker restart: mosquitto stopped (SIGTERM) for an outage and started again;
//     the terminals' reconnection attempts are read from their own log records, so
//     the spread (and the absence of a thundering herd) is what the clients did, not
//     what the broker managed to accept.
type loadConfig struct {
	Terminals int
	FanIn     time.Duration // length of phase 2
	Commands  int           // round trips in phase 4
	Outage    time.Duration // broker down in phase 5
	// Backoff, when set, replaces the terminals' own (the baseline of
	// BenchmarkFleetRestartHerd); phases 2 and 4 are skipped when FanIn or Commands is 0.
	Backoff func(attempt int) time.Duration
}

type loadResult struct {
	Terminals int

	ConnectAll       time.Duration // Run started → every client connected
	ConnectSeen      time.Duration // → an operator saw every first status
	ConnectSeenCount int           // terminals whose first status the operator saw
	ConnectPeak100   int           // most connections completed within one 100 ms window
	ConnectFailures  int           // attempts that failed during the storm

	FanInOffered   int // statuses the terminals sent during the phase (their own count)
	FanInReceived  int // statuses the operator received in it
	FanInPerSecond float64
	FanInLagP50    time.Duration
	FanInLagP99    time.Duration
	FanInLagMax    time.Duration

	ListTook   time.Duration // dial + all retained statuses + quiet + table
	ListQuiet  time.Duration // of which the quiet wait
	ListLastAt time.Duration // dial → the last status in
	Listed     int

	CmdP50, CmdP99, CmdMax time.Duration
	CmdFailed              int

	OutageAttempts    int           // failed connection attempts while the broker was down
	ReconnectAll      time.Duration // broker listening again → every client connected
	ReconnectFirst    time.Duration // → the first one
	ReconnectPeak100  int           // most reconnections completed within one 100 ms window
	RepublishedAll    time.Duration // → a fresh subscriber saw every terminal's new status
	ReconnectFailures int           // attempts that failed after the broker came back
	ReconnectAttempts int           // attempts begun after it came back
	// ReconnectAttemptPeak100 is the most attempts begun within one 100 ms window after
	// the broker came back: what the broker had to take at once.
	ReconnectAttemptPeak100 int
	HeapMiB, RSSMiB         float64 // this process, with N clients connected
	BrokerRSSMiB            float64
	Goroutines              int
	GoroutinesPerTerm       float64
	HeapPerTerminalKiB      float64
}

// attemptLog is every client's logger: it records when each connection attempt ended
// (the client logs one record per failed attempt, one per connection) — nothing else.
type attemptLog struct {
	mu       sync.Mutex
	failed   []time.Time
	connects []time.Time
	starts   []time.Time // when each attempt began: asked for its backoff, plus the backoff
}

// wrap returns backoff, noting when each attempt it delays will begin.
func (a *attemptLog) wrap(backoff func(int) time.Duration) func(int) time.Duration {
	return func(attempt int) time.Duration {
		d := backoff(attempt)
		a.mu.Lock()
		a.starts = append(a.starts, time.Now().Add(d))
		a.mu.Unlock()
		return d
	}
}

// startsSince returns the attempts that began at or after t0.
func (a *attemptLog) startsSince(t0 time.Time) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Time
	for _, t := range a.starts {
		if !t.Before(t0) {
			out = append(out, t)
		}
	}
	return out
}

func (a *attemptLog) Enabled(context.Context, slog.Level) bool { return true }
func (a *attemptLog) WithAttrs([]slog.Attr) slog.Handler       { return a }
func (a *attemptLog) WithGroup(string) slog.Handler            { return a }
func (a *attemptLog) Handle(_ context.Context, r slog.Record) error {
	var list *[]time.Time
	switch r.Message {
	case "connected to the fleet broker":
		list = &a.connects
	case "cannot connect to the fleet broker; retrying with backoff", "fleet broker connection attempt failed":
		list = &a.failed
	default:
		return nil
	}
	a.mu.Lock()
	*list = append(*list, r.Time)
	a.mu.Unlock()
	return nil
}

// since returns the times recorded at or after t0, of failed attempts and connections.
func (a *attemptLog) since(t0 time.Time) (failed, connects []time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.failed {
		if !t.Before(t0) {
			failed = append(failed, t)
		}
	}
	for _, t := range a.connects {
		if !t.Before(t0) {
			connects = append(connects, t)
		}
	}
	return failed, connects
}

// peak100 is the most times that fall within one 100 ms window.
func peak100(ts []time.Time) int {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= 100*time.Millisecond {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// loadTerminal is one simulated terminal's state: a device whose state the fan-in
// phase flips, and the outbox depth.
type loadTerminal struct {
	c    *Client
	flip atomic.Int64
}

func (lt *loadTerminal) status() Status {
	state := device.StateConnected
	if lt.flip.Load()%2 == 1 {
		state = device.StateDisconnected
	}
	return Status{Devices: map[string]device.State{"front-scanner": {Device: "front-scanner", State: state}},
		Outbox: &Outbox{Depth: int(lt.flip.Load() % 5), LastSeq: uint64(lt.flip.Load())}}
}

func waitAll(tb testing.TB, what string, within time.Duration, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runLoad(tb testing.TB, cfg loadConfig) loadResult {
	tb.Helper()
	raiseFileLimit(tb, 2*cfg.Terminals+256)
	r := loadResult{Terminals: cfg.Terminals}
	pki := fleettest.NewPKI(tb)
	b := fleettest.Start(tb, pki, fleettest.Options{Prefix: testPrefix, Persist: true})
	key, err := sm2sig.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, cfg.Terminals)
	for i := range ids {
		ids[i] = fmt.Sprintf("K-%05d", i+1)
	}
	logs := &attemptLog{}
	log := slog.New(logs)
	terms := make([]*loadTerminal, len(ids))
	for i, id := range ids {
		lt := &loadTerminal{}
		c, err := New(Options{Broker: b.URL(), TLS: pki.TLS(tb, id), Prefix: testPrefix, TerminalID: id,
			CommandKey: sm2sig.Public(key), Logger: log, Status: lt.status,
			Handle: func(context.Context, *Command) (any, error) { return map[string]string{"terminal": id}, nil }})
		if err != nil {
			tb.Fatal(err)
		}
		lt.c = c
		backoff := c.bo.delay
		if cfg.Backoff != nil {
			backoff = cfg.Backoff
		}
		c.plainBackoff = logs.wrap(backoff)
		terms[i] = lt
	}
	opTLS := pki.TLS(tb, opsUser)
	dial := func(key *sm2.PrivateKey) *Operator {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		op, err := DialOperator(ctx, OperatorOptions{Broker: b.URL(), TLS: opTLS, Prefix: testPrefix, Key: key})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { op.Close() })
		return op
	}

	// A dashboard, subscribed before the storm: it records every status it receives.
	type seen struct {
		terminal string
		st       Status
		at       time.Time
	}
	var (
		mu       sync.Mutex
		received []seen
	)
	// record keeps each status the dashboard receives, with when.
	record := func(topic string, p []byte) {
		now := time.Now()
		var st Status
		if json.Unmarshal(p, &st) != nil {
			return
		}
		mu.Lock()
		received = append(received, seen{st.TerminalID, st, now})
		mu.Unlock()
	}
	dash := dial(nil)
	stopDash, err := dash.Watch(context.Background(), AllStatuses(testPrefix), record)
	if err != nil {
		tb.Fatal(err)
	}
	defer stopDash()
	// seenOnline counts the terminals whose online status, made at or after t0, has come.
	seenOnline := func(t0 time.Time, cut func(seen) bool) int {
		mu.Lock()
		defer mu.Unlock()
		got := map[string]bool{}
		for _, s := range received {
			if s.st.State == StateOnline && !s.st.At.Before(t0) && (cut == nil || cut(s)) {
				got[s.terminal] = true
			}
		}
		return len(got)
	}
	allConnected := func() bool {
		for _, lt := range terms {
			if !lt.c.Connected() {
				return false
			}
		}
		return true
	}

	// 1. Connect storm.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	t0 := time.Now()
	for _, lt := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lt.c.Run(ctx); err != nil {
				tb.Error(err)
			}
		}()
	}
	within := 60*time.Second + time.Duration(cfg.Terminals)*50*time.Millisecond
	waitAll(tb, "all connected", within, allConnected)
	r.ConnectAll = time.Since(t0)
	// Not fatal: a status the broker dropped is what this measures.
	for deadline := time.Now().Add(30 * time.Second); seenOnline(t0, nil) < cfg.Terminals && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	r.ConnectSeen, r.ConnectSeenCount = time.Since(t0), seenOnline(t0, nil)
	failed, connects := logs.since(t0)
	r.ConnectFailures, r.ConnectPeak100 = len(failed), peak100(connects)

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	r.HeapMiB = float64(after.HeapInuse) / (1 << 20)
	r.HeapPerTerminalKiB = (float64(after.HeapInuse) - float64(before.HeapInuse)) / 1024 / float64(cfg.Terminals)
	r.Goroutines = runtime.NumGoroutine()
	r.GoroutinesPerTerm = float64(r.Goroutines-goroutinesBefore) / float64(cfg.Terminals)
	r.RSSMiB = rssMiB(tb, os.Getpid())
	if p := os.Getenv("FLEET_HEAPPROFILE"); p != "" {
		f, _ := os.Create(p)
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	r.BrokerRSSMiB = rssMiB(tb, b.PID())

	// 2. Status fan-in: every terminal changes every 100 ms; the 1/s limit holds each to
	// one status a second.
	published := func() int {
		n := 0
		for _, lt := range terms {
			n += int(lt.c.statusesSent.Load())
		}
		return n
	}
	if cfg.FanIn > 0 {
		mu.Lock()
		mark := len(received)
		mu.Unlock()
		pub0, f0 := published(), time.Now()
		flipCtx, stopFlip := context.WithCancel(ctx)
		var fwg sync.WaitGroup
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-flipCtx.Done():
					return
				case <-tick.C:
					for _, lt := range terms {
						lt.flip.Add(1)
					}
				}
			}
		}()
		time.Sleep(cfg.FanIn)
		stopFlip()
		fwg.Wait()
		pub1 := published()
		// What was published in the phase arrives shortly after it: wait for it, then count
		// only statuses made within the phase.
		f1 := time.Now()
		time.Sleep(2 * time.Second)
		mu.Lock()
		var lags []time.Duration
		for _, s := range received[mark:] {
			if s.st.At.Before(f0) || s.st.At.After(f1) {
				continue
			}
			lags = append(lags, s.at.Sub(s.st.At))
		}
		mu.Unlock()
		r.FanInOffered, r.FanInReceived = pub1-pub0, len(lags)
		r.FanInPerSecond = float64(len(lags)) / f1.Sub(f0).Seconds()
		r.FanInLagP50, r.FanInLagP99, r.FanInLagMax = quantile(lags, .5), quantile(lags, .99), quantile(lags, 1)
	}

	// 3. `fleet status`: what the command does, timed from the dial.
	const quiet = 500 * time.Millisecond // the command's default --quiet
	l0 := time.Now()
	lister := dial(nil)
	lctx, lcancel := context.WithTimeout(context.Background(), 60*time.Second)
	var lastIn time.Time
	var lmu sync.Mutex
	stopLast, err := lister.Watch(lctx, AllStatuses(testPrefix), func(string, []byte) {
		lmu.Lock()
		lastIn = time.Now()
		lmu.Unlock()
	})
	if err != nil {
		tb.Fatal(err)
	}
	all, err := lister.Statuses(lctx, quiet)
	lcancel()
	if err != nil {
		tb.Fatal(err)
	}
	if err := WriteTable(io.Discard, all, time.Now()); err != nil {
		tb.Fatal(err)
	}
	r.ListTook, r.ListQuiet, r.Listed = time.Since(l0), quiet, len(all)
	stopLast()
	lmu.Lock()
	r.ListLastAt = lastIn.Sub(l0)
	lmu.Unlock()
	if r.Listed != cfg.Terminals {
		tb.Errorf("fleet status listed %d of %d terminals", r.Listed, cfg.Terminals)
	}

	// 4. Commands, one at a time, to random terminals.
	var op *Operator
	if cfg.Commands > 0 {
		op = dial(key)
	}
	var rtts []time.Duration
	for i := 0; i < cfg.Commands; i++ {
		id := ids[rand.N(len(ids))]
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		c0 := time.Now()
		rep, err := op.Send(cctx, id, VerbDoctor, nil)
		took := time.Since(c0)
		ccancel()
		if err != nil || !rep.OK || !strings.Contains(string(rep.Result), strconv.Quote(id)) {
			r.CmdFailed++
			tb.Errorf("command to %s: %+v %v", id, rep, err)
			continue
		}
		rtts = append(rtts, took)
	}
	r.CmdP50, r.CmdP99, r.CmdMax = quantile(rtts, .5), quantile(rtts, .99), quantile(rtts, 1)

	// 5. Broker restart.
	down0 := time.Now()
	b.Stop()
	waitAll(tb, "all see the broker gone", 30*time.Second, func() bool {
		for _, lt := range terms {
			if lt.c.Connected() {
				return false
			}
		}
		return true
	})
	time.Sleep(max(0, cfg.Outage-time.Since(down0)))
	up0 := time.Now()
	failed, _ = logs.since(down0)
	r.OutageAttempts = len(failed)
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	listening := time.Now()
	// The dashboard's session ended with the broker: a fresh subscriber stands in.
	mu.Lock()
	received = received[:0]
	mu.Unlock()
	dash2 := dial(nil)
	stop2, err := dash2.Watch(context.Background(), AllStatuses(testPrefix), record)
	if err != nil {
		tb.Fatal(err)
	}
	defer stop2()
	waitAll(tb, "all reconnected", within+cfg.Outage, allConnected)
	r.ReconnectAll = time.Since(listening)
	waitAll(tb, "every status republished", within, func() bool {
		return seenOnline(up0, func(s seen) bool { return s.st.OnlineSince.After(up0) }) == cfg.Terminals
	})
	r.RepublishedAll = time.Since(listening)
	failed, connects = logs.since(listening)
	r.ReconnectFailures, r.ReconnectPeak100 = len(failed), peak100(connects)
	starts := logs.startsSince(listening)
	r.ReconnectAttempts, r.ReconnectAttemptPeak100 = len(starts), peak100(starts)
	if len(connects) > 0 {
		slices.SortFunc(connects, func(a, b time.Time) int { return a.Compare(b) })
		r.ReconnectFirst = connects[0].Sub(listening)
	}
	return r
}

// rssMiB is the resident memory of a process.
func rssMiB(tb testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

func (r loadResult) String() string {
	var s strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(&s, "%d terminals, load average %s\n", r.Terminals, loadAvg())
	fmt.Fprintf(&s, "  connect storm: all connected %s, first statuses of %d seen %s, peak %d connections/100 ms, %d failed attempts\n",
		ms(r.ConnectAll), r.ConnectSeenCount, ms(r.ConnectSeen), r.ConnectPeak100, r.ConnectFailures)
	fmt.Fprintf(&s, "  memory: heap %.1f MiB (%.1f KiB/terminal), RSS %.1f MiB, broker RSS %.1f MiB, %d goroutines (%.1f/terminal)\n",
		r.HeapMiB, r.HeapPerTerminalKiB, r.RSSMiB, r.BrokerRSSMiB, r.Goroutines, r.GoroutinesPerTerm)
	fmt.Fprintf(&s, "  status fan-in: %d published, %d received, %.0f statuses/s, lag p50 %s p99 %s max %s\n",
		r.FanInOffered, r.FanInReceived, r.FanInPerSecond, ms(r.FanInLagP50), ms(r.FanInLagP99), ms(r.FanInLagMax))
	fmt.Fprintf(&s, "  fleet status: %d listed in %s (last status in at %s; then %s quiet)\n", r.Listed, ms(r.ListTook), ms(r.ListLastAt), r.ListQuiet)
	fmt.Fprintf(&s, "  command round trip: p50 %s p99 %s max %s, %d failed\n", ms(r.CmdP50), ms(r.CmdP99), ms(r.CmdMax), r.CmdFailed)
	fmt.Fprintf(&s, "  broker restart: %d failed attempts during the outage; after it listened: %d attempts, at most %d begun within 100 ms, %d failed; first back %s, all %s, peak %d reconnections/100 ms; all statuses republished %s\n",
		r.OutageAttempts, r.ReconnectAttempts, r.ReconnectAttemptPeak100, r.ReconnectFailures, ms(r.ReconnectFirst), ms(r.ReconnectAll), r.ReconnectPeak100, ms(r.RepublishedAll))
	return s.String()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// TestFleetLoad runs the load scenario small (50 terminals), as part of make test:
// every terminal connects and is listed, every command answered, and a broker restart
// is followed by every terminal back — spread by the backoff's jitter, not in one
// instant. The 1,000-terminal figures come from BenchmarkFleetLoad.
func TestFleetLoad(t *testing.T) {
	r := runLoad(t, loadConfig{Terminals: 50, FanIn: 3 * time.Second, Commands: 20, Outage: 2500 * time.Millisecond})
	t.Log(r)
	if r.Listed != 50 || r.ConnectSeenCount != 50 || r.CmdFailed != 0 {
		t.Fatalf("listed %d, first statuses of %d seen, %d commands failed", r.Listed, r.ConnectSeenCount, r.CmdFailed)
	}
	// Each terminal publishes at most once a second, and during the phase it changed
	// often enough to publish about that often.
	if max := 50 * 5; r.FanInOffered > max {
		t.Errorf("%d statuses published in 3 s by 50 terminals: more than 1/s each", r.FanInOffered)
	}
	if r.FanInOffered < 50 || r.FanInReceived < r.FanInOffered*9/10 {
		t.Errorf("fan-in: %d published, %d received", r.FanInOffered, r.FanInReceived)
	}
	// While the broker is down a terminal backs off: reconnect_min 1 s, doubling, so
	// about 3 attempts each in 2.5 s. A client without backoff would make thousands.
	if perTerminal := float64(r.OutageAttempts) / 50; perTerminal < 1 || perTerminal > 6 {
		t.Errorf("%.1f failed attempts per terminal during a 2.5 s outage, want 1..6", perTerminal)
	}
	// Without jitter all 50 would try again within a few ms of each other. (An attempt
	// that began just before the broker listened may have succeeded: not all 50 count.)
	if r.ReconnectAttempts < 25 || r.ReconnectAttemptPeak100 > 40 {
		t.Errorf("%d attempts after the broker came back, %d begun within one 100 ms window: a thundering herd", r.ReconnectAttempts, r.ReconnectAttemptPeak100)
	}
}

// BenchmarkFleetLoad is the load benchmark: 1,000 terminals (FLEET_TERMINALS
// to change it) against one local mosquitto. FLEET_HEAPPROFILE=FILE writes a heap
// profile with every terminal connected. One iteration is the whole scenario;
// its figures are reported as metrics and printed (see BENCHMARKS.md, Fleet).
//
//	go test -run '^$' -bench FleetLoad -benchtime 1x ./agent/fleet
func BenchmarkFleetLoad(b *testing.B) {
	n := benchTerminals(b)
	var last loadResult
	for i := 0; i < b.N; i++ {
		last = runLoad(b, loadConfig{Terminals: n, FanIn: 10 * time.Second, Commands: 200, Outage: 5 * time.Second})
		b.Log(last)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(last.ConnectAll), "connect-ms")
	b.ReportMetric(last.FanInPerSecond, "fanin-statuses/s")
	b.ReportMetric(ms(last.FanInLagP99), "fanin-p99-ms")
	b.ReportMetric(ms(last.ListTook), "list-ms")
	b.ReportMetric(ms(last.CmdP50), "cmd-p50-ms")
	b.ReportMetric(ms(last.CmdP99), "cmd-p99-ms")
	b.ReportMetric(ms(last.ReconnectAll), "reconnect-ms")
	b.ReportMetric(float64(last.ReconnectAttemptPeak100), "reconnect-attempts-peak/100ms")
}

// BenchmarkFleetRestartHerd is the baseline of the restart phase: the same terminals
// with autopaho's default backoff (the first attempt at once, then every 10 s, no
// jitter) in place of theirs, to show what the jitter spares the broker.
func BenchmarkFleetRestartHerd(b *testing.B) {
	n := benchTerminals(b)
	var last loadResult
	for i := 0; i < b.N; i++ {
		last = runLoad(b, loadConfig{Terminals: n, Outage: 5 * time.Second, Backoff: autopaho.NewConstantBackoff(10 * time.Second)})
		b.Log(last)
	}
	b.ReportMetric(float64(last.ReconnectAll)/float64(time.Millisecond), "reconnect-ms")
	b.ReportMetric(float64(last.ReconnectAttemptPeak100), "reconnect-attempts-peak/100ms")
	b.ReportMetric(float64(last.ReconnectFailures), "failed-after")
}

func benchTerminals(b *testing.B) int {
	v := os.Getenv("FLEET_TERMINALS")
	if v == "" {
		return 1000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("FLEET_TERMINALS=%q", v)
	}
	return n
}
