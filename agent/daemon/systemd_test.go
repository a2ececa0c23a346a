package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// notifySocket is a real sd_notify socket, as systemd provides one: a unixgram socket
// named by NOTIFY_SOCKET. Every datagram the agent sends arrives on msgs.
type notifySocket struct {
	msgs chan notifyMsg
	conn *net.UnixConn
}

type notifyMsg struct {
	at   time.Time
	text string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// sun_path holds 108 bytes: t.TempDir() under a long test name may not fit.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &notifySocket{msgs: make(chan notifyMsg, 1024), conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return // closed by cleanup
			}
			s.msgs <- notifyMsg{time.Now(), string(buf[:n])}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	t.Setenv("NOTIFY_SOCKET", path)
	return s
}

// waitFor returns the first message containing want, failing after within.
func (s *notifySocket) waitFor(t *testing.T, want string, within time.Duration) notifyMsg {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case m := <-s.msgs:
			if strings.Contains(m.text, want) {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}

// quiet waits for a gap of at least gap between two pings, failing if pings go on past
// within: the watchdog has gone silent. It returns the messages seen meanwhile.
func (s *notifySocket) quiet(t *testing.T, gap, within time.Duration) []string {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(within)
	last := time.Now()
	for {
		wait := time.Until(last.Add(gap))
		if wait <= 0 {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("watchdog pings did not stop within %v: %q", within, seen)
		}
		select {
		case m := <-s.msgs:
			seen = append(seen, m.text)
			if strings.Contains(m.text, "WATCHDOG=1") {
				last = m.at
			}
		case <-time.After(wait):
		}
	}
}

// newTestDaemon is a real agent: configuration file, trust anchor, bbolt state, outbox,
// verifier and pipeline; no devices and no local API.
func newTestDaemon(t *testing.T) *Daemon {
	t.Helper()
	dir := t.TempDir()
	if _, err := issuer.GenerateKeys(filepath.Join(dir, "trust"), issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf("state_dir: %s\ntrust:\n  dir: %s\napi:\n  listen: \"\"\nlog:\n  level: error\ndevices: []\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "trust"))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(path, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *Daemon) submitTest(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := d.pipe.Submit(ctx, device.Read{Device: "front", Driver: "serial", Kind: "qr", Data: []byte("6225881234567890123"), At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

// The watchdog test of the issue: READY=1, periodic WATCHDOG=1, no pings once the
// pipeline hangs on a journal write, pings again once it completes, STOPPING=1 at the end.
func TestSystemdWatchdogFollowsPipelineHealth(t *testing.T) {
	sock := listenNotify(t)
	const watchdog = 400 * time.Millisecond // pings every 200 ms
	t.Setenv("WATCHDOG_USEC", fmt.Sprint(watchdog.Microseconds()))
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	d := newTestDaemon(t)
	defer d.db.Close()

	pctx, pcancel := context.WithCancel(context.Background())
	pdone := make(chan struct{})
	go func() { defer close(pdone); d.pipe.Run(pctx) }()
	defer func() { pcancel(); <-pdone }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	if err := d.runSystemd(ctx, &wg); err != nil {
		t.Fatal(err)
	}
	sock.waitFor(t, "READY=1", 2*time.Second)
	first := sock.waitFor(t, "WATCHDOG=1", 2*time.Second)
	d.submitTest(t) // a working pipeline: the event commits and pings go on
	var last notifyMsg
	for range 3 {
		last = sock.waitFor(t, "WATCHDOG=1", 2*time.Second)
	}
	if n := d.pipe.Snapshot().Events; n != 1 {
		t.Fatalf("events: %d, want 1", n)
	}
	if every := last.at.Sub(first.at) / 3; every < watchdog/4 || every > watchdog {
		t.Errorf("pings every %v, want about %v", every, watchdog/2)
	}

	// Hang the journal: bbolt's single writer lock, held as by a commit stuck in fsync.
	tx, err := d.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	hung := time.Now()
	d.submitTest(t)
	seen := sock.quiet(t, 3*watchdog, 3*watchdog)
	silentAfter := time.Since(hung) - 3*watchdog
	if !strings.Contains(strings.Join(seen, "\n"), "STATUS=pipeline stuck") {
		t.Errorf("no STATUS telling systemd why pings stopped: %q", seen)
	}
	if n := d.pipe.Snapshot().Events; n != 1 {
		t.Fatalf("the hung write completed after all: %d events", n)
	}
	t.Logf("last ping %v after the hang (WatchdogSec %v)", silentAfter.Round(time.Millisecond), watchdog)

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	sock.waitFor(t, "WATCHDOG=1", 2*time.Second)
	if n := d.pipe.Snapshot().Events; n != 2 {
		t.Fatalf("events after the hang cleared: %d, want 2", n)
	}

	cancel()
	sock.waitFor(t, "STOPPING=1", 2*time.Second)
	wg.Wait()
}

func TestSystemdWithoutWatchdogOnlyReadyAndStopping(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "")
	d := newTestDaemon(t)
	defer d.db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if err := d.runSystemd(ctx, &wg); err != nil {
		t.Fatal(err)
	}
	if m := sock.waitFor(t, "READY=1", 2*time.Second); strings.Contains(m.text, "WATCHDOG") {
		t.Errorf("watchdog ping without WatchdogSec: %q", m.text)
	}
	cancel()
	sock.waitFor(t, "STOPPING=1", 2*time.Second)
	wg.Wait()
}

func TestSystemdNotStartedBySystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	d := newTestDaemon(t)
	defer d.db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	if err := d.runSystemd(ctx, &wg); err != nil {
		t.Fatal(err)
	}
	// No goroutine was started: Wait returns at once although ctx is still live.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(time.Second):
		t.Fatal("runSystemd started work without NOTIFY_SOCKET")
	}
}

func TestSystemdUnreachableSocketIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	d := newTestDaemon(t)
	defer d.db.Close()
	var wg sync.WaitGroup
	err := d.runSystemd(context.Background(), &wg)
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("err = %v, want the dial error", err)
	}
}

// Run itself tells systemd: READY=1 once running, STOPPING=1 when its context ends.
// This checks the wiring in daemon.Run, not only runSystemd.
func TestRunNotifiesSystemd(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "")
	d := newTestDaemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	sock.waitFor(t, "READY=1", 5*time.Second)
	cancel()
	sock.waitFor(t, "STOPPING=1", 5*time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
