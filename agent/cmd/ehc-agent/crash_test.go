package main

// The kill -9 test of the whole agent: scans go in, the agent is killed at random
// moments while it commits and delivers, and at the end the platform holds every event
// exactly once with seq 1..N and no gap.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

func TestKill9DeliversExactlyOnce(t *testing.T) {
	const (
		wantScans = 2000
		wantKills = 20
		chunk     = 150 // scans offered to one run; a kill ends most runs before the last
	)
	dir := t.TempDir()
	keys := simKeys(t, agentBin, dir)
	state := filepath.Join(dir, "state")
	sim := startPlatform(t, state, platformsim.Options{DataDir: filepath.Join(dir, "platform"), TrustDir: keys, Seed: 7})
	// Lost answers and errors make the agent resend batches the platform already
	// holds, which is what a kill between the platform's commit and ours does too.
	sim.SetFaults(platformsim.Faults{ErrorRate: 0.1, DropRate: 0.1})

	codes := filepath.Join(dir, "codes.txt")
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`terminal_id: T-1
state_dir: %s
console: true
log: {level: warn, format: json}
trust: {dir: %s}
platform: {url: %q}
devices:
  - {name: sim-a, driver: sim, sim: {file: %s, interval: 1ms}}
`, state, keys, sim.URL(), codes)), 0o600)

	rng := rand.New(rand.NewPCG(1, 2))
	scanned, kills, next := 0, 0, 0
	for scanned < wantScans || kills < wantKills {
		var b strings.Builder
		for i := 0; i < chunk; i++ {
			fmt.Fprintf(&b, "SCAN-%06d\n", next)
			next++
		}
		os.WriteFile(codes, []byte(b.String()), 0o600)
		a := startAgent(t, cfg)
		a.waitFor("sim-a", false, 20*time.Second) // the first event of this run is committed
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		if err := a.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-a.done
		kills++
		a.mu.Lock()
		scanned += len(a.lines) // events the agent reported committed (a few more may be)
		a.mu.Unlock()
	}
	t.Logf("%d kills, %d events reported before the kills, %d scans offered; platform holds %d so far",
		kills, scanned, next, len(sim.Events()))

	// A last, clean run with nothing to scan drains the queue.
	sim.SetFaults(platformsim.Faults{})
	os.WriteFile(codes, nil, 0o600)
	a := startAgent(t, cfg)
	// Drained when the platform holds at least what was reported and nothing more
	// arrived for 3 s (events committed but not reported before a kill go too). The
	// platform may already hold that many before this run delivers anything (a slow
	// start under load takes over a second), hence the longer quiet period.
	deadline := time.Now().Add(60 * time.Second)
	for last, stable := -1, time.Now(); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n := len(sim.Events())
		if n != last {
			last, stable = n, time.Now()
		}
		if n >= scanned && time.Since(stable) > 3*time.Second {
			break
		}
	}
	a.stop(10 * time.Second)

	db, err := bbolt.Open(filepath.Join(state, "agent.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ring, err := seal.LoadOrCreate(filepath.Join(state, "outbox.key"))
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.Open(db, ring, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := ob.Stats()
	if st.Pending != 0 || st.Dead != 0 {
		t.Fatalf("outbox after the drain: %+v", st)
	}
	if st.LastSeq < wantScans {
		t.Fatalf("only %d events committed over the runs, want at least %d", st.LastSeq, wantScans)
	}
	evs := sim.Events()
	if uint64(len(evs)) != st.LastSeq {
		t.Fatalf("platform holds %d events, the agent committed %d", len(evs), st.LastSeq)
	}
	ids := map[string]bool{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("platform's event #%d has seq %d: a gap, a repeat or out of order", i, e.Seq)
		}
		if ids[e.EventID] {
			t.Fatalf("event %s held twice", e.EventID)
		}
		ids[e.EventID] = true
	}
	ps := sim.Stats()
	t.Logf("platform: %d events (seq 1..%d), %d duplicates answered, %d conflicts, %d answers dropped, %d 503s",
		len(evs), st.LastSeq, ps.Duplicates, ps.Conflicts, ps.Drops, ps.Errors)
	if ps.Conflicts != 0 || len(ps.Rejected) != 0 || len(ps.Unauthorized) != 0 {
		t.Fatalf("platform stats %+v", ps)
	}
}

// BenchmarkAgentQueued100k runs the real agent (built without the race detector, whose
// shadow memory would be measured too) on a state_dir holding 100,000 queued events:
// first with the platform down, then draining to it. It reports the agent's peak
// resident memory (goal ≤ 64 MiB), split into anonymous memory and mapped file pages
// (bbolt's mmap of agent.db, page cache the kernel can take back), and the drain rate
// through the whole binary.
func BenchmarkAgentQueued100k(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	bin := filepath.Join(dir, "ehc-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	keys := simKeys(b, bin, dir)
	state := filepath.Join(dir, "state")
	sim := startPlatform(b, state, platformsim.Options{TrustDir: keys}) // makes state/terminal.key, and so state
	fillOutbox(b, state, n)
	sim.Down(time.Hour)
	codes := filepath.Join(dir, "codes.txt")
	os.WriteFile(codes, nil, 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("terminal_id: T-1\nstate_dir: %s\nlog: {level: warn}\ntrust: {dir: %s}\nplatform: {url: %q}\ndevices:\n  - {name: s, driver: sim, sim: {file: %s}}\n",
		state, keys, sim.URL(), codes)), 0o600)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "run", "--config", cfg)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(3 * time.Second) // started, retrying against the down platform
		idle := procMemory(b, cmd.Process.Pid)
		sim.Up()
		start := time.Now()
		for len(sim.Events()) < n*(i+1) {
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(start)
		peak := procMemory(b, cmd.Process.Pid)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
		b.ReportMetric(idle["VmRSS"], "MiB-rss-queued")
		b.ReportMetric(peak["VmHWM"], "MiB-peak-rss")
		b.ReportMetric(peak["RssAnon"], "MiB-anon")
		b.ReportMetric(peak["RssFile"], "MiB-file")
		if i+1 < b.N {
			b.StopTimer()
			sim.Down(time.Hour)
			fillOutbox(b, state, n)
			b.StartTimer()
		}
	}
}

// fillOutbox appends n events with personal data to the outbox in state, without
// fsync (filling is the fixture).
func fillOutbox(b *testing.B, state string, n int) {
	db, err := bbolt.Open(filepath.Join(state, "agent.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ring, err := seal.LoadOrCreate(filepath.Join(state, "outbox.key"))
	if err != nil {
		b.Fatal(err)
	}
	ob, err := outbox.Open(db, ring, outbox.Options{MaxPending: 2 * n})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		id, _ := uuid.NewV7()
		e := &event.Event{EventID: id.String(), TerminalID: "T-1", OccurredAt: time.Now().UTC(),
			Source:       event.Source{Kind: "card", Device: "reader", Driver: "pcsc"},
			Card:         &event.Card{Kind: "resident_id_card"},
			Verification: &event.Verification{Status: "valid", Offline: true},
			Identity:     &event.Identity{IDType: "01", IDNumber: "110101198001011234", Name: "张三丰", Gender: "1", BirthDate: "19800101"}}
		if err := ob.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	db.Sync()
}

// procMemory reads a process's memory figures (VmRSS, VmHWM, RssAnon, RssFile) in MiB.
func procMemory(b *testing.B, pid int) map[string]float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		var name string
		var kb float64
		if _, err := fmt.Sscanf(line, "%s %f kB", &name, &kb); err == nil {
			out[strings.TrimSuffix(name, ":")] = kb / 1024
		}
	}
	return out
}

// queue status|dead|retry on a real state_dir: refused clearly while the agent runs;
// afterwards they show the dead letters the platform caused (masked) and put them
// back, and the next run delivers them.
func TestQueueCommands(t *testing.T) {
	dir := t.TempDir()
	keys := simKeys(t, agentBin, dir)
	state := filepath.Join(dir, "state")
	// A platform that finds every event too large: all are dead-lettered.
	strict := startPlatform(t, state, platformsim.Options{TrustDir: keys, MaxEventBytes: 10})
	codes := filepath.Join(dir, "codes.txt")
	os.WriteFile(codes, []byte("6225881234567890123\nHELLO\n"), 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	writeCfg := func(url string) {
		os.WriteFile(cfg, []byte(fmt.Sprintf("terminal_id: T-1\nstate_dir: %s\nconsole: true\nlog: {level: debug}\ntrust: {dir: %s}\nplatform: {url: %q}\ndevices:\n  - {name: s, driver: sim, sim: {file: %s, interval: 10ms}}\n",
			state, keys, url, codes)), 0o600)
	}
	writeCfg(strict.URL())
	queue := func(args ...string) (string, int) {
		var out bytes.Buffer
		code := runAgent(t, &out, &out, append([]string{"queue"}, append(args, "--config", cfg)...)...)
		return out.String(), code
	}

	a := startAgent(t, cfg)
	a.waitFor(`"reason":"too_large","seq":2`, true, 15*time.Second)
	out, code := queue("status")
	if code != 2 || !strings.Contains(out, "is in use by a running ehc-agent") {
		t.Fatalf("queue status on a running agent: exit %d\n%s", code, out)
	}
	a.stop(5 * time.Second)

	out, code = queue("status")
	if code != 0 || !strings.Contains(out, "last seq: 2") || !strings.Contains(out, "pending:  0") || !strings.Contains(out, "dead:     2") {
		t.Fatalf("queue status: exit %d\n%s", code, out)
	}
	out, _ = queue("dead")
	if strings.Count(out, "too_large") != 2 || !strings.Contains(out, "6225***********0123") || strings.Contains(out, "6225881234567890123") {
		t.Fatalf("queue dead (reasons, masked):\n%s", out)
	}
	if out, code = queue("retry", "--seq", "2", "--seq", "9"); code != 1 || !strings.Contains(out, "1 dead letter(s) back in the queue; 1 pending") {
		t.Fatalf("retry of seq 2 and a missing 9: exit %d\n%s", code, out)
	}
	if out, code = queue("retry"); code != 0 || !strings.Contains(out, "1 dead letter(s) back in the queue; 2 pending") {
		t.Fatalf("retry all: exit %d\n%s", code, out)
	}

	// With the cause fixed at the platform, the next run delivers both, in seq order.
	ok := startPlatform(t, state, platformsim.Options{TrustDir: keys})
	writeCfg(ok.URL())
	os.WriteFile(codes, nil, 0o600)
	b := startAgent(t, cfg)
	// Stopped only once the agent has recorded the platform's answer: stopped between the
	// platform's commit and that record, it would rightly send both again at its next start.
	b.waitFor(`"delivered_through":2`, true, 15*time.Second)
	b.stop(5 * time.Second)
	evs := ok.Events()
	if len(evs) != 2 || evs[0].Seq != 1 || evs[1].Seq != 2 {
		t.Fatalf("platform holds %+v after the retry", evs)
	}
	if out, _ = queue("status"); !strings.Contains(out, "pending:  0") || !strings.Contains(out, "dead:     0") {
		t.Fatalf("after delivery:\n%s", out)
	}
}
