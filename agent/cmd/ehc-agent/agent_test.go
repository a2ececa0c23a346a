package main

// End-to-end tests of the binary as a process: exit statuses, signals, reload, restart.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ehc-agent-bin")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "ehc-agent")
	// Agents started by these tests inherit this: an ephemeral local API port, so that
	// they never collide with each other, with other packages' tests or with a real
	// agent on 17485.
	os.Setenv("EHC_AGENT_API_LISTEN", "127.0.0.1:0")
	out, err := exec.Command("go", "build", "-race", "-o", agentBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVersionNamesDrivers(t *testing.T) {
	out, err := exec.Command(agentBin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ehc-agent ", "commit: ", "go: go1.", "drivers: ", "serial"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestBadConfigExitsTwoNamingKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("devices:\n  - {name: s, driver: serial, serial: {path: /dev/null, baud: 1234567}}\n"), 0o600)
	cmd := exec.Command(agentBin, "run", "--config", bad)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	if !strings.Contains(stderr.String(), "devices[0].serial.baud: 1234567 is not a supported rate") {
		t.Fatalf("stderr does not name the key:\n%s", stderr.String())
	}
}

// agentProc is a running agent whose stdout lines (console events) are collected.
type agentProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer
	done   chan error
}

func startAgent(t *testing.T, cfg string) *agentProc {
	t.Helper()
	return startAgentArgs(t, agentBin, "run", "--config", cfg)
}

// startAgentArgs starts the agent as the command args (the agent binary, or a program
// that runs it) and collects its output until the test ends.
func startAgentArgs(t *testing.T, args ...string) *agentProc {
	t.Helper()
	a := &agentProc{t: t, cmd: exec.Command(args[0], args[1:]...), done: make(chan error, 1)}
	a.cmd.Stderr = &lockedWriter{w: &a.stderr, mu: &a.mu}
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			a.mu.Lock()
			a.lines = append(a.lines, sc.Text())
			a.mu.Unlock()
		}
		a.done <- a.cmd.Wait()
	}()
	t.Cleanup(func() { a.cmd.Process.Kill() })
	return a
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitFor waits until some stdout line (or, with logs, stderr) contains s.
func (a *agentProc) waitFor(s string, logs bool, within time.Duration) {
	a.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		a.mu.Lock()
		hay := strings.Join(a.lines, "\n")
		if logs {
			hay = a.stderr.String()
		}
		a.mu.Unlock()
		if strings.Contains(hay, s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t.Fatalf("no %q within %s\nstdout:\n%s\nstderr:\n%s", s, within, strings.Join(a.lines, "\n"), a.stderr.String())
}

func (a *agentProc) stop(within time.Duration) time.Duration {
	a.t.Helper()
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		if err != nil {
			a.t.Fatalf("agent exited with %v\n%s", err, a.stderr.String())
		}
	case <-time.After(within):
		a.t.Fatalf("agent did not stop within %s", within)
	}
	return time.Since(start)
}

func writeConfig(t *testing.T, path, stateDir, trustDir string, devices string) {
	t.Helper()
	cfg := fmt.Sprintf("terminal_id: T-1\nstate_dir: %s\nconsole: true\nlog: {level: info, format: json}\napi: {listen: \"\"}\ntrust: {dir: %s}\ndevices:\n%s", stateDir, trustDir, devices)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRunReloadStopRestart(t *testing.T) {
	dir := t.TempDir()
	keys := simKeys(t, agentBin, dir)
	code, err := exec.Command(agentBin, "sim", "code", "--keys", keys).Output()
	if err != nil {
		t.Fatal(err)
	}
	codesA := filepath.Join(dir, "a.txt")
	os.WriteFile(codesA, []byte(strings.TrimSpace(string(code))+"\n6225881234567890123\nHELLO\n"), 0o600)
	codesB := filepath.Join(dir, "b.txt")
	os.WriteFile(codesB, []byte("E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1:1\n"), 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	state := filepath.Join(dir, "state")
	writeConfig(t, cfg, state, keys, fmt.Sprintf("  - {name: sim-a, driver: sim, sim: {file: %s, interval: 10ms}}\n", codesA))

	a := startAgent(t, cfg)
	a.waitFor("#1 sim-a ehc_offline valid", false, 15*time.Second)
	a.waitFor("#2 sim-a payment/unionpay 6225***********0123", false, 5*time.Second)
	a.waitFor("#3 sim-a unknown invalid (unrecognised)", false, 5*time.Second)

	// An invalid configuration is refused and the agent keeps running.
	good, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte("devices: [{name: x, driver: serial, serial: {path: /dev/null, baud: 7}}]\n"), 0o600)
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("configuration reload refused", true, 5*time.Second)

	// A valid one re-creates the devices that changed.
	os.WriteFile(cfg, good, 0o600)
	writeConfig(t, cfg, state, keys, fmt.Sprintf("  - {name: sim-b, driver: sim, sim: {file: %s, interval: 10ms}}\n", codesB))
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("#4 sim-b ehc_online E1D1…D1:1 pending (online_required)", false, 5*time.Second)
	if took := a.stop(5 * time.Second); took > 5*time.Second {
		t.Fatalf("stop took %s", took)
	}

	// seq continues across a restart, and the replay cache survives it: the same EHC1
	// code from another device is a replay. (From the same device within the
	// duplicate window it would be a double read: no event at all.)
	writeConfig(t, cfg, state, keys, fmt.Sprintf("  - {name: sim-c, driver: sim, sim: {file: %s, interval: 10ms}}\n", codesA))
	b := startAgent(t, cfg)
	b.waitFor("#5 sim-c ehc_offline invalid (replayed)", false, 15*time.Second)
	b.waitFor("#7 sim-c unknown", false, 5*time.Second)
	b.stop(5 * time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.Contains(b.stderr.String(), "6225881234567890123") {
		t.Fatal("a payment code reached the log unmasked")
	}
}

// simKeys makes a trust store with `<bin> sim keys` in dir/keys and gives its path.
func simKeys(tb testing.TB, bin, dir string) string {
	tb.Helper()
	keys := filepath.Join(dir, "keys")
	if out, err := exec.Command(bin, "sim", "keys", "--out", keys).CombinedOutput(); err != nil {
		tb.Fatalf("sim keys: %v\n%s", err, out)
	}
	return keys
}

// startPlatform runs the platform emulator with o on loopback until the test ends,
// knowing terminal T-1 by the key an agent with this state_dir uses (made here if
// there is none yet).
func startPlatform(tb testing.TB, state string, o platformsim.Options) *platformsim.Server {
	tb.Helper()
	key, _, err := uplink.LoadOrCreateKey(filepath.Join(state, "terminal.key"))
	if err != nil {
		tb.Fatal(err)
	}
	o.Terminals = map[string]*sm2sig.PublicKey{"T-1": sm2sig.Public(key)}
	sim, err := platformsim.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sim.Close() })
	return sim
}

// runAgent runs the agent binary with args to its end, its stdout and stderr to the
// writers given (one for both: combined, as CombinedOutput does), and gives its exit
// status; failing to run it at all fails the test.
func runAgent(t *testing.T, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	cmd := exec.Command(agentBin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}
