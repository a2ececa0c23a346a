//go:build !windows

package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
)

// lostAgent is a whole daemon on a sim scanner (a FIFO) whose Run error the test reads.
type lostAgent struct {
	d       *Daemon
	logs    *logtest.Buffer
	done    chan error
	stop    context.CancelFunc
	scanner *os.File
	ws      *websocket.Conn
}

type lostMsg struct {
	Type   string `json:"type"`
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
	Hint   string `json:"hint"`
}

// startLostAgent starts a daemon on cfgPath, opens the scanner FIFO and the kiosk's
// WebSocket with the token in state_dir/api.token.
func startLostAgent(t *testing.T, ctx context.Context, cfgPath, fifo, apiAddr, stateDir string) *lostAgent {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a := &lostAgent{logs: &logtest.Buffer{}, done: make(chan error, 1)}
	if a.d, err = New(cfgPath, cfg, a.logs); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	a.stop = stop
	go func() { a.done <- a.d.Run(rctx, nil) }()
	t.Cleanup(func() {
		if a.scanner != nil {
			a.scanner.Close()
		}
		stop()
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			t.Errorf("agent did not stop")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs.String())
		}
	})
	var token string
	for deadline := time.Now().Add(10 * time.Second); token == "" || a.scanner == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent not up:\n%s", a.logs.String())
		}
		if b, err := os.ReadFile(filepath.Join(stateDir, "api.token")); err == nil {
			token = strings.TrimSpace(string(b))
		}
		if a.scanner == nil {
			if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				a.scanner = f
			} else if !errors.Is(err, syscall.ENXIO) {
				t.Fatal(err)
			}
		}
	}
	if a.ws, _, err = websocket.Dial(ctx, "ws://"+apiAddr+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.ws.CloseNow() })
	a.ws.SetReadLimit(1 << 20)
	return a
}

// scan scans code and returns what the kiosk got for it: an event or read_failed.
func (a *lostAgent) scan(t *testing.T, ctx context.Context, code string) lostMsg {
	t.Helper()
	if _, err := a.scanner.WriteString(code + "\n"); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := a.ws.Read(ctx)
		if err != nil {
			t.Fatalf("websocket: %v\n%s", err, a.logs.String())
		}
		var m lostMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "event" || m.Type == "read_failed" {
			return m
		}
	}
}

// TestStateDirLost deletes state_dir under a running agent, as `rm -rf
// /var/lib/ehc-agent` does:
//   - the next scan is not an event (its commit would go into an unlinked file) but
//     read_failed with reason state_dir_lost and its hint, and the status journal says so;
//   - Run returns ErrStateDirLost (the process exits non-zero, systemd restarts it);
//   - state_dir is back: a new daemon on the same configuration finds every event
//     committed before the deletion (same last_seq and pending), opens them with the
//     same outbox.key, accepts the same API token, and its next event's seq follows on.
func TestStateDirLost(t *testing.T) {
	c := writeSimConfig(t, t.TempDir(), "info", "")
	cfgPath, fifo, apiAddr, stateDir, keys := c.path, c.fifo, c.apiAddr, c.stateDir, c.keys
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sequence := uint32(0)
	code := func() string {
		sequence++
		c, err := keys.NewCode(issuer.CodeOptions{Sequence: sequence})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	a := startLostAgent(t, ctx, cfgPath, fifo, apiAddr, stateDir)
	var seqs []uint64
	for range 3 {
		m := a.scan(t, ctx, code())
		if m.Type != "event" {
			t.Fatalf("before the deletion: %+v", m)
		}
		seqs = append(seqs, m.Seq)
	}
	before := a.d.outbox.Stats()
	if before.LastSeq != seqs[2] || before.Pending != 3 {
		t.Fatalf("outbox before the deletion: %+v, seqs %v", before, seqs)
	}
	token, _ := os.ReadFile(filepath.Join(stateDir, "api.token"))
	obKey, _ := os.ReadFile(filepath.Join(stateDir, "outbox.key"))

	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	m := a.scan(t, ctx, code())
	if m.Type != "read_failed" || m.Reason != pipeline.ReasonStateDirLost || m.Hint == "" {
		t.Fatalf("scan after the deletion: got %+v, want read_failed %s with a hint", m, pipeline.ReasonStateDirLost)
	}
	if j := a.d.Status().Journal; j.Reason != ReasonStateDirLost || !j.Failing || j.Failures != 1 {
		t.Fatalf("journal after the deletion: %+v", j)
	}
	select {
	case err := <-a.done:
		if !errors.Is(err, ErrStateDirLost) {
			t.Fatalf("Run returned %v, want ErrStateDirLost", err)
		}
		a.done <- err // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after state_dir was lost")
	}
	if !strings.Contains(a.logs.String(), "reason="+ReasonStateDirLost) {
		t.Errorf("no error log line with the reason")
	}
	fi, err := os.Stat(stateDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state_dir written back: %v %v", fi, err)
	}
	for name, want := range map[string][]byte{"api.token": token, "outbox.key": obKey} {
		if got, err := os.ReadFile(filepath.Join(stateDir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s written back: %v, equal %v", name, err, bytes.Equal(got, want))
		}
	}
	if f, err := outbox.ReadFloor(filepath.Join(stateDir, "seq.floor")); err != nil || f < before.LastSeq {
		t.Errorf("seq.floor written back: %d, %v", f, err)
	}
	a.scanner.Close()
	a.scanner = nil

	// The restart: a new daemon on the same configuration and the same files.
	b := startLostAgent(t, ctx, cfgPath, fifo, apiAddr, stateDir)
	after := b.d.outbox.Stats()
	if after.LastSeq != before.LastSeq || after.Pending != before.Pending {
		t.Fatalf("outbox after the restart: %+v, before the deletion: %+v", after, before)
	}
	recs, err := b.d.outbox.Pending(10, 1<<20)
	if err != nil || len(recs) != 3 {
		t.Fatalf("pending after the restart (opened with outbox.key): %d, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Seq != seqs[i] || r.EventID == "" {
			t.Errorf("pending %d: seq %d event %q, want seq %d", i, r.Seq, r.EventID, seqs[i])
		}
	}
	if m := b.scan(t, ctx, code()); m.Type != "event" || m.Seq != before.LastSeq+1 {
		t.Fatalf("first scan after the restart: %+v, want the event with seq %d", m, before.LastSeq+1)
	}
	if j := b.d.Status().Journal; j.Failing || j.Reason != "" {
		t.Errorf("journal after the restart: %+v", j)
	}
}

// When state_dir cannot be written back (here a file stands where it was) and nothing
// could still be delivered from the open database (no platform), the agent does not
// wait out lostGrace refusing patients: Run returns at once with the write-back's
// failure, so systemd restarts it on a fresh state_dir.
func TestStateDirLostUnrecoverableExitsAtOnce(t *testing.T) {
	c := writeSimConfig(t, t.TempDir(), "info", "")
	cfgPath, fifo, apiAddr, stateDir, keys := c.path, c.fifo, c.apiAddr, c.stateDir, c.keys
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startLostAgent(t, ctx, cfgPath, fifo, apiAddr, stateDir)
	code, err := keys.NewCode(issuer.CodeOptions{Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m := a.scan(t, ctx, code); m.Type != "read_failed" || m.Reason != pipeline.ReasonStateDirLost {
		t.Fatalf("scan after the deletion: %+v", m)
	}
	select {
	case err := <-a.done:
		if !errors.Is(err, ErrStateDirLost) || !strings.Contains(err.Error(), "write-back failed") {
			t.Fatalf("Run returned %v, want ErrStateDirLost with the write-back's failure", err)
		}
		a.done <- err // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("Run kept refusing scans instead of exiting: nothing could be saved by waiting")
	}
}
