package daemon

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// stateTest is one terminal's directory, started and stopped several times in a test.
type stateTest struct {
	t       *testing.T
	dir     string
	apiAddr string
}

func newStateTest(t *testing.T) *stateTest {
	dir := t.TempDir()
	if _, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &stateTest{t: t, dir: dir, apiAddr: freeAddr(t)}
}

func (s *stateTest) state(name string) string { return filepath.Join(s.dir, "state", name) }

// config writes the configuration: a sim scanner reading codes (none: no device) and,
// with platform set, the platform's URL and terminal key.
func (s *stateTest) config(codes []string, platform string) string {
	s.t.Helper()
	devices := "devices: []\n"
	if len(codes) > 0 {
		f := filepath.Join(s.dir, fmt.Sprintf("codes-%d.txt", time.Now().UnixNano()))
		if err := os.WriteFile(f, []byte(strings.Join(codes, "\n")+"\n"), 0o600); err != nil {
			s.t.Fatal(err)
		}
		devices = fmt.Sprintf("devices:\n  - name: front-scanner\n    driver: sim\n    sim: {file: %s, interval: 1ms}\n", f)
	}
	if platform != "" {
		platform = fmt.Sprintf("platform: {url: %s, terminal_key: %s}\n", platform, filepath.Join(s.dir, "terminal.key"))
	}
	p := filepath.Join(s.dir, "agent.yaml")
	err := os.WriteFile(p, []byte(fmt.Sprintf("terminal_id: K-0001\nstate_dir: %s\nlog: {level: info, format: text}\ntrust: {dir: %s}\napi: {listen: %s, allowed_origins: []}\n%s%s",
		filepath.Join(s.dir, "state"), filepath.Join(s.dir, "keys"), s.apiAddr, platform, devices)), 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// start runs the daemon on cfgPath; stop stops it and waits (also at the test's end).
func (s *stateTest) start(cfgPath string) (d *Daemon, logs *logtest.Buffer, stop func()) {
	s.t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		s.t.Fatal(err)
	}
	logs = &logtest.Buffer{}
	d, err = New(cfgPath, cfg, logs)
	if err != nil {
		s.t.Fatalf("agent does not start: %v\n%s", err, logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				s.t.Errorf("agent: %v", err)
			}
		case <-time.After(10 * time.Second):
			s.t.Errorf("agent did not stop")
		}
		if s.t.Failed() {
			s.t.Logf("agent log:\n%s", logs.String())
		}
	}
	s.t.Cleanup(stop)
	return d, logs, stop
}

// waitSeq waits until the outbox's last seq is want.
func waitSeq(t *testing.T, d *Daemon, want uint64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := d.outbox.Stats()
		if st.LastSeq == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %+v, want last seq %d", st, want)
		}
	}
}

func codes(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i) // distinct: no double reads
	}
	return out
}

// corruptHead overwrites the first 8 KiB of agent.db (both meta pages at bbolt's 4 KiB
// page size) with random bytes, as a card that lied about a flush leaves it, and
// returns the file's bytes.
func (s *stateTest) corruptHead() []byte {
	s.t.Helper()
	f, err := os.OpenFile(s.state("agent.db"), os.O_WRONLY, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	junk := make([]byte, 8<<10)
	rand.Read(junk)
	if _, err := f.WriteAt(junk, 0); err != nil {
		s.t.Fatal(err)
	}
	f.Close()
	b, err := os.ReadFile(s.state("agent.db"))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// corruptFiles returns the damaged files kept in state_dir (not their reports).
func (s *stateTest) corruptFiles() []string {
	all, _ := filepath.Glob(s.state("agent.db.corrupt-*"))
	var out []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".json") {
			out = append(out, f)
		}
	}
	return out
}

// statusJSON reads /v1/status's state_reset over the local API.
func (s *stateTest) statusReset() *StateReset {
	s.t.Helper()
	tok, err := os.ReadFile(s.state("api.token"))
	if err != nil {
		s.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+s.apiAddr+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var st struct {
				StateReset *StateReset `json:"state_reset"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return st.StateReset
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("/v1/status: %v", err)
		}
	}
}

// stateGauge returns the ehc_agent_state_reset line of /metrics.
func (s *stateTest) stateGauge() string {
	s.t.Helper()
	tok, _ := os.ReadFile(s.state("api.token"))
	req, _ := http.NewRequest("GET", "http://"+s.apiAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return regexp.MustCompile(`(?m)^ehc_agent_state_reset .*$`).FindString(string(b))
}

// TestStateResetCorruptDatabase: an agent queues 30 events (no platform), stops, and
// its agent.db gets 8 KiB of garbage over both meta pages. The agent starts anyway: the
// damaged file is kept byte for byte as agent.db.corrupt-<time>, the 30 pending events
// are salvaged under their own seqs, a new scan gets a seq above the floor (never one
// used before), an error line with reason state_reset is logged, /v1/status says
// state_reset with where the file went and a hint, and /metrics ehc_agent_state_reset is
// 1. The status keeps saying so after a clean restart (which continues seq without a
// gap) until the damaged file is removed.
func TestStateResetCorruptDatabase(t *testing.T) {
	s := newStateTest(t)
	d, _, stop := s.start(s.config(codes("BEFORE", 30), ""))
	waitSeq(t, d, 30)
	before, err := d.outbox.Pending(100, 1<<20)
	if err != nil || len(before) != 30 {
		t.Fatalf("pending before: %d, %v", len(before), err)
	}
	stop()
	floor, err := outbox.ReadFloor(s.state("seq.floor"))
	if err != nil || floor < 30 {
		t.Fatalf("seq floor %d, %v: want one at or above the 30 seqs used", floor, err)
	}
	bad := s.corruptHead()

	d, logs, stop := s.start(s.config(codes("AFTER", 5), ""))
	waitSeq(t, d, floor+5)
	kept := s.corruptFiles()
	if len(kept) != 1 || !strings.HasPrefix(filepath.Base(kept[0]), "agent.db.corrupt-20") {
		t.Fatalf("damaged files kept: %v, want one agent.db.corrupt-<time>", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || string(b) != string(bad) {
		t.Fatalf("the kept file is not the damaged one byte for byte (%v)", err)
	}
	r := s.statusReset()
	if r == nil || r.Reason != "state_reset" || r.MovedTo != kept[0] || r.Salvaged != 30 || r.SalvageMethod != "page_scan" ||
		r.ResumedAbove != floor || r.Hint == "" || time.Since(r.At) > time.Minute {
		t.Fatalf("/v1/status state_reset = %+v, want the reset to %s with 30 salvaged above seq %d", r, kept[0], floor)
	}
	if g := s.stateGauge(); g != "ehc_agent_state_reset 1" {
		t.Fatalf("/metrics: %q, want ehc_agent_state_reset 1", g)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "reason=state_reset") {
		t.Fatalf("no error line with reason=state_reset:\n%s", logs.String())
	}
	after, err := d.outbox.Pending(100, 1<<20)
	if err != nil || len(after) != 35 {
		t.Fatalf("pending after: %d, %v; want the 30 salvaged and the 5 new", len(after), err)
	}
	for i, rec := range before {
		if after[i].Seq != rec.Seq || after[i].EventID != rec.EventID || string(after[i].JSON) != string(rec.JSON) {
			t.Fatalf("salvaged #%d: seq %d %s, want seq %d %s as queued", i, after[i].Seq, after[i].EventID, rec.Seq, rec.EventID)
		}
	}
	for i, rec := range after[30:] {
		if rec.Seq != floor+1+uint64(i) {
			t.Fatalf("new event #%d has seq %d, want %d: above every seq used before the reset", i, rec.Seq, floor+1+uint64(i))
		}
	}
	stop()

	// A clean restart: no new reset, seq continues by one, the status still tells.
	d, logs, stop = s.start(s.config(codes("LATER", 1), ""))
	waitSeq(t, d, floor+6)
	if r := s.statusReset(); r == nil || r.MovedTo != kept[0] || r.Salvaged != 30 {
		t.Fatalf("after a restart: state_reset = %+v, want the kept reset", r)
	}
	if len(s.corruptFiles()) != 1 || strings.Contains(logs.String(), "reason=state_reset") {
		t.Fatalf("a clean restart reset again: %v\n%s", s.corruptFiles(), logs.String())
	}
	stop()
	// Hospital IT has dealt with the file: the status is clear.
	os.Remove(kept[0])
	s.start(s.config(nil, ""))
	if r := s.statusReset(); r != nil {
		t.Fatalf("state_reset %+v after the damaged file was removed", r)
	}
	if g := s.stateGauge(); g != "ehc_agent_state_reset 0" {
		t.Fatalf("/metrics: %q after the damaged file was removed, want 0", g)
	}
}

// TestStateResetTruncatedFile: a file cut short behind its first meta page (bbolt says
// "file size too small" as text only) is damage too.
func TestStateResetTruncatedFile(t *testing.T) {
	s := newStateTest(t)
	d, _, stop := s.start(s.config(codes("BEFORE", 3), ""))
	waitSeq(t, d, 3)
	stop()
	if err := os.Truncate(s.state("agent.db"), 6000); err != nil {
		t.Fatal(err)
	}
	d, _, _ = s.start(s.config(codes("AFTER", 1), ""))
	r := s.statusReset()
	if r == nil || !strings.Contains(r.Cause, "file size too small") || len(s.corruptFiles()) != 1 {
		t.Fatalf("state_reset = %+v, kept %v; want a reset for the truncated file", r, s.corruptFiles())
	}
	if st := d.outbox.Stats(); st.LastSeq <= 3 && st.LastSeq != 0 {
		t.Fatalf("last seq %d reuses a seq of before the reset", st.LastSeq)
	}
}

// TestStateNotResetWhenHeldOrUnreadable: a database locked by a running agent, and a
// state_dir whose agent.db cannot be opened for a file-system reason, still stop the
// start with an error, and nothing is moved aside.
func TestStateNotResetWhenHeldOrUnreadable(t *testing.T) {
	s := newStateTest(t)
	cfgPath := s.config(nil, "")
	s.start(cfgPath)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfgPath, cfg, &logtest.Buffer{}); err == nil || !strings.Contains(err.Error(), "in use by another ehc-agent") {
		t.Fatalf("second agent on a held database: %v, want in use", err)
	}
	if kept := s.corruptFiles(); len(kept) != 0 {
		t.Fatalf("a held database was moved aside: %v", kept)
	}

	// agent.db is a directory: an open error of the file system, not damage.
	s2 := newStateTest(t)
	if err := os.MkdirAll(s2.state("agent.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgPath = s2.config(nil, "")
	if cfg, err = config.Load(cfgPath); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfgPath, cfg, &logtest.Buffer{}); err == nil {
		t.Fatal("an agent.db that cannot be opened was accepted")
	}
	if fi, err := os.Stat(s2.state("agent.db")); err != nil || !fi.IsDir() || len(s2.corruptFiles()) != 0 {
		t.Fatalf("an unreadable agent.db was moved aside: %v %v", err, s2.corruptFiles())
	}
}

// TestStateResetSalvagedEventsDelivered: events queued while the platform was away
// survive the damage of agent.db: after the reset they reach the platform emulator with
// their own event ids and seqs, and the outbox empties.
func TestStateResetSalvagedEventsDelivered(t *testing.T) {
	s := newStateTest(t)
	key, _, err := uplink.LoadOrCreateKey(filepath.Join(s.dir, "terminal.key"))
	if err != nil {
		t.Fatal(err)
	}
	d, _, stop := s.start(s.config(codes("QUEUED", 20), ""))
	waitSeq(t, d, 20)
	queued, err := d.outbox.Pending(100, 1<<20)
	if err != nil || len(queued) != 20 {
		t.Fatalf("pending: %d, %v", len(queued), err)
	}
	stop()
	s.corruptHead()

	sim, err := platformsim.New(platformsim.Options{TrustDir: filepath.Join(s.dir, "keys"), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sim.AddTerminal("K-0001", sm2sig.Public(key))
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	d, _, _ = s.start(s.config(nil, sim.URL()))
	for deadline := time.Now().Add(60 * time.Second); len(sim.Events()) < 20 || d.outbox.Stats().Pending > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("platform received %d events, outbox %+v; want the 20 salvaged delivered", len(sim.Events()), d.outbox.Stats())
		}
	}
	got := map[uint64]string{}
	for _, e := range sim.Events() {
		got[e.Seq] = e.EventID
	}
	for _, q := range queued {
		if got[q.Seq] != strings.ToLower(q.EventID) {
			t.Fatalf("seq %d reached the platform as %q, want %s", q.Seq, got[q.Seq], q.EventID)
		}
	}
	if r := s.statusReset(); r == nil || r.Salvaged != 20 {
		t.Fatalf("state_reset = %+v, want 20 salvaged", r)
	}
}

// TestStateResetInterruptedStart: the damaged file is moved aside and a fresh agent.db
// made, then the start fails before the salvage (here outbox.key readable by others,
// which the agent refuses). The next start finds a database that opens cleanly, so no
// reset of its own: it must still continue seq above the floor (never at 1 again), and
// finish the salvage the report says is pending.
func TestStateResetInterruptedStart(t *testing.T) {
	s := newStateTest(t)
	d, _, stop := s.start(s.config(codes("BEFORE", 30), ""))
	waitSeq(t, d, 30)
	stop()
	floor, err := outbox.ReadFloor(s.state("seq.floor"))
	if err != nil || floor < 30 {
		t.Fatalf("seq floor %d, %v", floor, err)
	}
	s.corruptHead()
	if err := os.Chmod(s.state("outbox.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := s.config(codes("AFTER", 5), "")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := New(cfgPath, cfg, io.Discard); err == nil {
		d.db.Close()
		t.Fatal("the agent started with outbox.key readable by others")
	}
	if kept := s.corruptFiles(); len(kept) != 1 {
		t.Fatalf("damaged files kept after the failed start: %v", kept)
	}
	if err := os.Chmod(s.state("outbox.key"), 0o600); err != nil {
		t.Fatal(err)
	}

	d, _, _ = s.start(cfgPath)
	waitSeq(t, d, floor+5)
	r := s.statusReset()
	if r == nil || r.Salvaged != 30 || r.SalvageMethod == salvagePending {
		t.Fatalf("state_reset after the interrupted start: %+v, want the 30 salvaged", r)
	}
	pending, err := d.outbox.Pending(100, 1<<20)
	if err != nil || len(pending) != 35 || pending[0].Seq != 1 || pending[34].Seq != floor+5 {
		t.Fatalf("pending: %d (%v), want the 30 salvaged and 5 new above seq %d", len(pending), err, floor)
	}
}
