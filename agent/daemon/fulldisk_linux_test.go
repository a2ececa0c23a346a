package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/internal/tmpfstest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// TestFullDisk runs the whole agent with its state_dir on a real small disk (a tmpfs)
// and fills that disk up, as logs or a week's queue fill a kiosk's:
//   - scans go on becoming events, committed in the reserve, while the status, the
//     metrics and the log say disk_full with its hint;
//   - once the reserve is used up too, a scan is not told to anyone as an event (it is
//     not durable) but the kiosk gets read_failed, reason disk_full, at once;
//   - when space is freed, scans are events again, the reserve is taken back by itself,
//     and the seqs the kiosk saw have no gap.
func TestFullDisk(t *testing.T) {
	reserveSize, reserveRetry = 256<<10, 100*time.Millisecond
	// Restored in a cleanup registered before the daemon's, so after it stopped.
	t.Cleanup(func() { reserveSize, reserveRetry = int64(16<<20), 30*time.Second })
	dir := tmpfstest.Mount(t, 24<<20)
	a := startSimAgent(t, dir, "info", "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+a.apiAddr+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + a.token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)

	type msg struct {
		Type   string `json:"type"`
		Seq    uint64 `json:"seq"`
		Device string `json:"device"`
		Reason string `json:"reason"`
		Hint   string `json:"hint"`
	}
	sequence := uint32(0)
	// scan scans a new valid code and returns what the kiosk got for it: an event or
	// read_failed.
	scan := func() msg {
		t.Helper()
		sequence++
		code, err := a.keys.NewCode(issuer.CodeOptions{Sequence: sequence})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.scanner.WriteString(code + "\n"); err != nil {
			t.Fatal(err)
		}
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("websocket after %d scans: %v", sequence, err)
			}
			var m msg
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m.Type == "event" || m.Type == "read_failed" {
				return m
			}
		}
	}
	var seqs []uint64
	event := func(m msg, when string) {
		t.Helper()
		if m.Type != "event" {
			t.Fatalf("%s: got %+v, want an event", when, m)
		}
		seqs = append(seqs, m.Seq)
	}
	metric := func(name string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+a.apiAddr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}

	event(scan(), "before the disk filled")
	if j := a.d.Status().Journal; j.Reason != "" || j.ReserveInUseSince != nil {
		t.Fatalf("journal with room: %+v", j)
	}
	if got := metric("ehc_agent_storage_reserve_in_use"); got != "0" {
		t.Fatalf("reserve gauge with room: %q", got)
	}

	// bbolt may have a free page or two left from earlier commits: the scans that fit
	// in them need no reserve.
	filler := tmpfstest.Fill(t, dir, 0)
	for i := 0; a.d.Status().Journal.ReserveInUseSince == nil; i++ {
		if i == 100 {
			t.Fatal("100 scans on a full disk and the reserve is not in use")
		}
		event(scan(), "on the full disk")
	}
	j := a.d.Status().Journal
	if j.Reason != pipeline.ReasonDiskFull || j.ReserveInUseSince == nil || j.Hint == "" || j.Failures != 0 || j.Failing {
		t.Fatalf("journal on a full disk, in the reserve: %+v", j)
	}
	if got := metric("ehc_agent_storage_reserve_in_use"); got != "1" {
		t.Fatalf("reserve gauge on a full disk: %q", got)
	}

	var failed msg
	for i := 0; failed.Type == "" && i < 3000; i++ {
		if m := scan(); m.Type == "read_failed" {
			failed = m
		} else {
			event(m, "in the reserve")
		}
	}
	if failed.Type == "" {
		t.Fatal("3,000 scans fitted in a 256 KiB reserve on a full disk")
	}
	if failed.Reason != pipeline.ReasonDiskFull || failed.Device != "front-scanner" || failed.Hint == "" {
		t.Fatalf("read_failed: %+v", failed)
	}
	if j := a.d.Status().Journal; j.Reason != pipeline.ReasonDiskFull || !j.Failing || j.Failures != 1 || j.LastFailureAt == nil {
		t.Fatalf("journal once commits fail: %+v", j)
	}
	if got := metric(`ehc_agent_journal_failures_total{reason="disk_full"}`); got != "1" {
		t.Fatalf("failures metric: %q", got)
	}
	if !strings.Contains(a.logs.String(), "reason=disk_full") {
		t.Fatal("the full disk is not in the log")
	}
	t.Logf("%d events committed on the full disk before a read failed", len(seqs)-1)

	os.Remove(filler)
	event(scan(), "after space was freed")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		j := a.d.Status().Journal
		if j.Reason == "" && j.ReserveInUseSince == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserve not taken back with the disk free: %+v", j)
		}
	}
	if !strings.Contains(a.logs.String(), "the reserve is kept again") {
		t.Error("the reserve's return is not in the log")
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs the kiosk saw: %v: a gap at %d", seqs, i)
		}
	}
}
