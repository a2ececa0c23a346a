package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// stopAfterReady stands in for the Windows SCM: it starts the run, waits until the
// agent's log says it is ready, then sends the stop request (cancels the context).
type stopAfterReady struct {
	t       *testing.T
	log     string
	stopped time.Duration // from the stop request to run's return
}

func (m *stopAfterReady) Run(run func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(m.log)
		if bytes.Contains(b, []byte("agent ready")) {
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("run ended before ready: %v\n%s", err, b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("agent not ready:\n%s", b)
		}
	}
	stop := time.Now()
	cancel()
	select {
	case err := <-done:
		m.stopped = time.Since(stop)
		return err
	case <-time.After(10 * time.Second):
		// The run ignores its context; end it the only other way it listens to, so
		// that the test process is left clean, and fail.
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		<-done
		m.t.Error("a stop request did not end the run: run.go must derive its context from cmd.Context()")
		return nil
	}
}

// A service stop request ends `ehc-agent run` as SIGTERM does, the configuration comes
// from the default path, and the output goes to the log file.
func TestServiceStopEndsRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := issuer.GenerateKeys(filepath.Join(dir, "trust"), issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf("state_dir: %s\ntrust:\n  dir: %s\napi:\n  listen: \"\"\ndevices: []\n", filepath.Join(dir, "state"), filepath.Join(dir, "trust"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	run, _, err := rootCmd.Find([]string{"run"})
	if err != nil || run.Name() != "run" {
		t.Fatalf("no run command: %v", err)
	}
	orig := run.RunE
	flag := run.Flags().Lookup("config")
	t.Cleanup(func() {
		run.RunE = orig
		flag.Value.Set("")
		flag.Changed = false
		run.SetOut(nil)
		run.SetErr(nil)
	})
	logPath := filepath.Join(dir, "logs", "agent.log")
	m := &stopAfterReady{t: t, log: logPath}
	var logFile *rotatingLog
	runUnderService(run, m, cfg, func() (_ io.WriteCloser, err error) {
		logFile, err = openRotatingLog(logPath, serviceLogMax)
		return logFile, err
	})

	rootCmd.SetArgs([]string{"run"})
	defer rootCmd.SetArgs(nil)
	if err := rootCmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := flag.Value.String(); got != cfg {
		t.Errorf("config: %q, want the service default %q", got, cfg)
	}
	b, _ := os.ReadFile(logPath)
	for _, want := range []string{"agent ready", `"msg":"stopping"`, `"msg":"stopped"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("log file lacks %s:\n%s", want, b)
		}
	}
	if m.stopped > 5*time.Second {
		t.Errorf("stop took %v", m.stopped)
	}
	if _, err := logFile.Write([]byte("x")); err == nil {
		t.Error("the log file was left open after the run")
	}
}

func TestServiceConfigFlagWins(t *testing.T) {
	// An explicit --config (sc.exe create … binPath= "ehc-agent.exe run --config X")
	// is kept.
	run, _, _ := rootCmd.Find([]string{"run"})
	orig := run.RunE
	flag := run.Flags().Lookup("config")
	t.Cleanup(func() { run.RunE = orig; flag.Value.Set(""); flag.Changed = false })
	var seen string
	run.RunE = func(*cobra.Command, []string) error { seen = flag.Value.String(); return nil }
	runUnderService(run, managerFunc(func(f func(context.Context) error) error { return f(context.Background()) }), `C:\ProgramData\ehc-agent\agent.yaml`, nil)
	rootCmd.SetArgs([]string{"run", "--config", "/etc/x.yaml"})
	defer rootCmd.SetArgs(nil)
	if err := rootCmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if seen != "/etc/x.yaml" {
		t.Fatalf("config %q, want the flag's", seen)
	}
}

type managerFunc func(func(context.Context) error) error

func (f managerFunc) Run(run func(context.Context) error) error { return f(run) }

func TestRotatingLogStaysUnderItsCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "agent.log")
	const max = 100
	l, err := openRotatingLog(path, max)
	if err != nil {
		t.Fatal(err)
	}
	line := func(i int) string { return fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", 20)) } // 29 bytes
	for i := range 10 {
		if _, err := l.Write([]byte(line(i))); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) > max || len(old) > max {
		t.Fatalf("sizes %d and %d, cap %d", len(cur), len(old), max)
	}
	// 3 lines fit in 100 bytes: the last 10 lines went 0-2 | 3-5 | 6-8 | 9.
	if string(cur) != line(9) || string(old) != line(6)+line(7)+line(8) {
		t.Fatalf("current %q, previous %q", cur, old)
	}

	// Reopened (the agent restarted), it appends and counts what is there.
	l, err = openRotatingLog(path, max)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte(line(10)))
	l.Write([]byte(line(11)))
	l.Write([]byte(line(12)))
	cur, _ = os.ReadFile(path)
	old, _ = os.ReadFile(path + ".1")
	if string(old) != line(9)+line(10)+line(11) || string(cur) != line(12) {
		t.Fatalf("after reopen: current %q, previous %q", cur, old)
	}

	// A single line longer than the cap is written whole, not split or dropped.
	long := strings.Repeat("y", 3*max) + "\n"
	if n, err := l.Write([]byte(long)); err != nil || n != len(long) {
		t.Fatalf("long line: %d, %v", n, err)
	}
}
