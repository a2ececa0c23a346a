package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/reserve"
)

// runChecks runs the installation checks for the configuration at path and returns the
// rows by check name.
func runChecks(t *testing.T, e *doctorEnv) map[string]doctorResult {
	t.Helper()
	rows := map[string]doctorResult{}
	checks := []doctorCheck{e.checkConfig, e.checkStateDir, e.checkTrust, e.checkPCSC, e.checkAgent, e.checkDevices, e.checkAPIPort, e.checkPrinter}
	for _, c := range checks {
		for _, r := range c(context.Background()) {
			if _, dup := rows[r.Check]; dup {
				t.Errorf("two rows for %q", r.Check)
			}
			rows[r.Check] = r
		}
	}
	return rows
}

func wantRow(t *testing.T, rows map[string]doctorResult, check, status, detail string) {
	t.Helper()
	r, ok := rows[check]
	if !ok {
		t.Errorf("no %q row; rows: %v", check, rows)
		return
	}
	if r.Status != status || !strings.Contains(r.Detail, detail) {
		t.Errorf("%s: %s %q, want %s containing %q", check, r.Status, r.Detail, status, detail)
	}
}

type doctorFixture struct {
	dir, cfg, state, trust string
}

func newDoctorFixture(t *testing.T, api string, devices string) *doctorFixture {
	t.Helper()
	dir := t.TempDir()
	f := &doctorFixture{dir: dir, cfg: filepath.Join(dir, "agent.yaml"), state: filepath.Join(dir, "state"), trust: filepath.Join(dir, "trust")}
	if _, err := issuer.GenerateKeys(f.trust, issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The environment would win over the file (TestMain sets an ephemeral API port).
	t.Setenv("EHC_AGENT_API_LISTEN", api)
	yaml := fmt.Sprintf("terminal_id: T-DOC\nstate_dir: %s\ntrust: {dir: %s}\napi: {listen: %q}\ndevices:\n%s", f.state, f.trust, api, devices)
	if err := os.WriteFile(f.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *doctorFixture) env(now time.Time, pcsc string) *doctorEnv {
	return &doctorEnv{path: f.cfg, now: func() time.Time { return now }, pcscSocket: pcsc}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestDoctorBadConfigFailsAndStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(path, []byte("terminal_idd: x\n"), 0o600)
	rows := runChecks(t, &doctorEnv{path: path, now: time.Now})
	wantRow(t, rows, "configuration", doctorFail, "terminal_idd: unknown key")
	if !strings.Contains(rows["configuration"].Detail, "fix:") {
		t.Errorf("no fix hint: %q", rows["configuration"].Detail)
	}
	if len(rows) != 1 {
		t.Errorf("checks ran on a refused configuration: %v", rows)
	}
}

func TestDoctorStoppedAgent(t *testing.T) {
	addr := freePort(t)
	f := newDoctorFixture(t, addr, "  - {name: desk-reader, driver: pcsc, pcsc: {reader: 'Virtual PCD 00 00'}}\n")
	now := time.Now()

	// pcscd: a real unix socket accepting connections, as pcscd's does.
	sock := filepath.Join(f.dir, "pcscd.comm")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	rows := runChecks(t, f.env(now, sock))
	wantRow(t, rows, "configuration", doctorPass, "terminal T-DOC, 1 device(s)")
	wantRow(t, rows, "state_dir", doctorWarn, "does not exist yet")
	wantRow(t, rows, "trust anchor", doctorPass, "anchor.pub")
	wantRow(t, rows, "trust store", doctorPass, f.trust+": key set v")
	wantRow(t, rows, "pcscd", doctorPass, "reachable at "+sock+", for desk-reader")
	wantRow(t, rows, "agent", doctorInfo, "not running")
	wantRow(t, rows, "local API", doctorPass, addr+" is free")

	// Another program on the port, a world-readable state directory, no pcscd, a stale
	// key set, a missing anchor: each is reported with a fix.
	taken, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.state, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(f.state, 0o755)
	rows = runChecks(t, f.env(now.Add(10*365*24*time.Hour), filepath.Join(f.dir, "no-pcscd")))
	wantRow(t, rows, "local API", doctorFail, fmt.Sprintf("api_port_taken: api.listen %s: port taken by ehc-agent.test (pid %d) — fix: Another program", addr, os.Getpid()))
	wantRow(t, rows, "state_dir", doctorWarn, "chmod 700")
	wantRow(t, rows, "pcscd", doctorFail, "pcsc_service_unavailable: not reachable")
	wantRow(t, rows, "pcscd", doctorFail, "fix: The smart-card service is not running")
	wantRow(t, rows, "trust store", doctorWarn, "stale: key set v1 is stale")
	wantRow(t, rows, "trust store", doctorWarn, "fix: The key set has not been renewed")

	taken.Close()
	os.Chmod(f.state, 0o700)
	os.Remove(filepath.Join(f.trust, "anchor.pub"))
	rows = runChecks(t, f.env(now, sock))
	wantRow(t, rows, "state_dir", doctorPass, "is writable")
	// The storage row times real durable writes in the state_dir; whether this
	// machine's disk counts as slow is storageRow's to judge (TestStorageRow).
	if r := rows["storage"]; (r.Status != doctorPass && r.Status != doctorWarn) || !strings.Contains(r.Detail, "a durable write (4 KiB + flush) takes") {
		t.Errorf("storage: %s %q", r.Status, r.Detail)
	}
	wantRow(t, rows, "trust anchor", doctorFail, "fix: put the platform's trust anchor")
	// The free space is this machine's: its row names the state_dir's filesystem.
	if r := rows["disk"]; r.Status == doctorInfo || !strings.Contains(r.Detail, " free of ") || !strings.Contains(r.Detail, f.state) {
		t.Errorf("disk: %s %q", r.Status, r.Detail)
	}
	if entries, _ := os.ReadDir(f.state); len(entries) != 0 {
		t.Errorf("doctor left files in the state directory: %v", entries)
	}
}

// With the agent running, doctor reads its status through the local API: outbox,
// platform and the trust store it actually uses.
func TestDoctorRunningAgent(t *testing.T) {
	addr := freePort(t)
	f := newDoctorFixture(t, addr, "  []\n")
	a := startAgent(t, f.cfg)
	a.waitFor("agent ready", false, 15*time.Second) // logs are on stdout without console

	rows := runChecks(t, f.env(time.Now(), ""))
	wantRow(t, rows, "agent", doctorPass, "running, terminal T-DOC")
	wantRow(t, rows, "outbox", doctorPass, "0 pending, 0 dead letter(s)")
	wantRow(t, rows, "platform", doctorInfo, "no platform configured")
	wantRow(t, rows, "trust store", doctorPass, "the running agent: key set v")
	wantRow(t, rows, "local API", doctorPass, "answered by the running agent")
	wantRow(t, rows, "pcscd", doctorInfo, "no card reader configured")
	a.stop(10 * time.Second)
}

func TestDoctorInstallChecksAreRegistered(t *testing.T) {
	if n := len(doctorInstallChecks("")); n != 8 {
		t.Fatalf("%d checks", n)
	}
}

// `ehc-agent doctor --config X` shows the installation rows in its one table, and
// exits 1 when one fails.
func TestDoctorCommandShowsInstallRows(t *testing.T) {
	f := newDoctorFixture(t, freePort(t), "  []\n")
	os.Remove(filepath.Join(f.trust, "anchor.pub"))
	cmd := exec.Command(agentBin, "doctor", "--config", f.cfg)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want 1 (a check failed)\n%s", err, out)
	}
	for _, want := range []string{"configuration  ", "pass", f.cfg + ": terminal T-DOC", "trust anchor", "fail", "fix: put the platform's trust anchor"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// Storage is judged by the median of the durable writes timed: fast passes with the
// figures, slow warns with the fix, a failed write fails.
func TestStorageRow(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x*float64(time.Millisecond)))
		}
		return d
	}
	for _, c := range []struct {
		d      []time.Duration
		err    error
		status string
		detail string
	}{
		{ms(0.4, 0.9, 0.5, 12, 0.6), nil, doctorPass, "takes 600µs, at most 12ms (5 tried)"},
		{ms(35.2, 41, 30, 1, 90), nil, doctorWarn, "slow_storage: a durable write (4 KiB + flush) takes 35.2ms, at most 90ms (5 tried) — fix: Every scan waits"},
		{ms(35.2, 41, 30, 1, 90), nil, doctorWarn, "put state_dir on the machine's internal SSD"},
		{ms(0.4, 25, 26, 0.5), nil, doctorWarn, "takes 25ms"}, // the upper median of an even count
		{nil, errors.New("input/output error"), doctorFail, "/var/lib/ehc-agent: a durable write failed: input/output error — fix: check the disk"},
	} {
		rows := map[string]doctorResult{}
		for _, r := range storageRow("/var/lib/ehc-agent", c.d, c.err) {
			rows[r.Check] = r
		}
		wantRow(t, rows, "storage", c.status, c.detail)
	}
}

// Free space is judged against the outbox's needs: plenty passes, little warns, almost
// none fails, each with the figures; an unknown figure is no verdict.
func TestDiskRow(t *testing.T) {
	for _, c := range []struct {
		free, size uint64
		err        error
		status     string
		detail     string
	}{
		{20 << 30, 64 << 30, nil, doctorPass, "20.0 GiB free of 64.0 GiB on the filesystem of /var/lib/ehc-agent"},
		{100 << 20, 8 << 30, nil, doctorWarn, "100.0 MiB free of 8.0 GiB on the filesystem of /var/lib/ehc-agent — fix: free some space"},
		{512 << 10, 8 << 30, nil, doctorFail, "512.0 KiB free of 8.0 GiB on the filesystem of /var/lib/ehc-agent — fix: free space now"},
		{0, 0, errors.New("no such device"), doctorInfo, "free space unknown (no such device)"},
	} {
		rows := map[string]doctorResult{}
		for _, r := range diskRow("/var/lib/ehc-agent", c.free, c.size, c.err) {
			rows[r.Check] = r
		}
		wantRow(t, rows, "disk", c.status, c.detail)
	}
}

// The reserve row: whole passes, short (the disk filled up and the agent is using it)
// fails with the disk_full hint, missing is only news.
func TestReserveRow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.reserve")
	rows := func() map[string]doctorResult {
		m := map[string]doctorResult{}
		for _, r := range reserveRow(path) {
			m[r.Check] = r
		}
		return m
	}
	wantRow(t, rows(), "reserve", doctorInfo, "does not exist yet")
	if _, err := reserve.Open(path, reserve.DefaultSize); err != nil {
		t.Fatal(err)
	}
	wantRow(t, rows(), "reserve", doctorPass, "keeps 16.0 MiB for a full disk")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	wantRow(t, rows(), "reserve", doctorFail, "is in use: the disk filled up and events are committed in the space kept for them — fix: The disk that holds state_dir is full")
}

// With the agent stopped, a configured serial or ID card reader path is looked at: a
// missing one fails with not_found and its hint, a present one that nobody holds passes.
func TestDoctorConfiguredPortsWhileStopped(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "ttyUSB0") // any file stands for an attached port here
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "ttyUSB9")
	f := newDoctorFixture(t, freePort(t), fmt.Sprintf("  - {name: front, driver: serial, serial: {path: %s}}\n  - {name: idr, driver: idcard, idcard: {path: %s}}\n", present, missing))
	rows := map[string]doctorResult{}
	for _, r := range f.env(time.Now(), "").checkDevices(context.Background()) {
		rows[r.Check] = r
	}
	wantRow(t, rows, "device front", doctorPass, present+" is attached, and no other program holds it")
	wantRow(t, rows, "device idr", doctorFail, "not_found: "+missing+": no such file or directory — fix: "+hints.For("not_found"))
}
