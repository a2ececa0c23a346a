package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// simAgent is a whole daemon running in the test with a sim scanner fed through a
// FIFO, its own trust keys and the local API on a free loopback port.
type simAgent struct {
	d       *Daemon
	keys    *issuer.Keys
	apiAddr string
	token   string
	scanner *os.File // the FIFO's writing end: what is written here is scanned
	logs    *logtest.Buffer
}

// simConfig is a daemon's configuration file for terminal K-0001 with the sim scanner
// "front-scanner" fed through a FIFO, its own trust keys and the local API on a free
// loopback port.
type simConfig struct {
	path, fifo, apiAddr, stateDir string
	keys                          *issuer.Keys
}

// writeSimConfig writes it in dir, with moreDevices (YAML list items, indented as under
// devices:, or more top-level keys) after the scanner.
func writeSimConfig(t *testing.T, dir, logLevel, moreDevices string) simConfig {
	t.Helper()
	keys, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := simConfig{path: filepath.Join(dir, "agent.yaml"), fifo: filepath.Join(dir, "scanner"), apiAddr: freeAddr(t),
		stateDir: filepath.Join(dir, "state"), keys: keys}
	if err := syscall.Mkfifo(c.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(c.path, []byte(fmt.Sprintf(`terminal_id: K-0001
state_dir: %s
log: {level: %s, format: text}
trust: {dir: %s}
api: {listen: %s, allowed_origins: []}
devices:
  - name: front-scanner
    driver: sim
    sim: {file: %s, interval: 1ms}
%s`, c.stateDir, logLevel, filepath.Join(dir, "keys"), c.apiAddr, c.fifo, moreDevices)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startSimAgent writes a simConfig, runs the daemon until the test ends and waits for
// its API token and for the sim scanner to open the FIFO. The daemon's log is shown
// when the test fails.
func startSimAgent(t *testing.T, dir, logLevel, moreDevices string) *simAgent {
	t.Helper()
	c := writeSimConfig(t, dir, logLevel, moreDevices)
	keys, fifo, apiAddr, cfgPath := c.keys, c.fifo, c.apiAddr, c.path
	d, logs := runDaemon(t, cfgPath)
	a := &simAgent{d: d, keys: keys, apiAddr: apiAddr, logs: logs}
	t.Cleanup(func() { // runs before runDaemon's: the FIFO closes, then the agent stops
		if a.scanner != nil {
			a.scanner.Close()
		}
	})
	for deadline := time.Now().Add(10 * time.Second); a.token == "" || a.scanner == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent not up:\n%s", logs.String())
		}
		if b, err := os.ReadFile(filepath.Join(dir, "state", "api.token")); err == nil {
			a.token = strings.TrimSpace(string(b))
		}
		if a.scanner == nil {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				a.scanner = f
			} else if !errors.Is(err, syscall.ENXIO) { // no reader yet
				t.Fatal(err)
			}
		}
	}
	return a
}

// runDaemon loads the configuration at cfgPath and runs the daemon until the test ends;
// the test fails if it does not stop within 10 s or stops with an error, and its log is
// shown when the test failed.
func runDaemon(t *testing.T, cfgPath string) (*Daemon, *logtest.Buffer) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	d, err := New(cfgPath, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("agent did not stop")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	return d, logs
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
