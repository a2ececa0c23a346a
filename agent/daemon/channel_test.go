//go:build linux

package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
)

// The local API's server takes the codes routed to their own channel.
var _ pipeline.Channeler = (*api.Server)(nil)

// TestPaymentAndInsuranceChannels scans a payment code and an insurance voucher through
// the whole daemon: a kiosk connected to the WebSocket gets each masked event and then,
// right after it and with its seq, the code itself in a "payment" / "insurance"
// message (CODES.md: routed to its channel; PLATFORM.md: unmasked only there). The code
// is nowhere else: not in /v1/events, not on a replaying connection, not in the log and
// not in the state directory's files.
func TestPaymentAndInsuranceChannels(t *testing.T) {
	dir := t.TempDir()
	a := startSimAgent(t, dir, "debug", "codes: {insurance_patterns: ['^YB[0-9]{16}$']}\n")
	const pay, voucher = "6225881234567890123", "YB1234567890123456"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(after string) *websocket.Conn {
		t.Helper()
		ws, _, err := websocket.Dial(ctx, "ws://"+a.apiAddr+"/v1/ws"+after, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + a.token}}})
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	type msg struct {
		Type    string          `json:"type"`
		Seq     uint64          `json:"seq"`
		EventID string          `json:"event_id"`
		Device  string          `json:"device"`
		Scheme  string          `json:"scheme"`
		Code    string          `json:"code"`
		Event   json.RawMessage `json:"event"`
	}
	// next returns the next message that is not a status or device message.
	next := func(ws *websocket.Conn) (msg, []byte) {
		t.Helper()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("websocket: %v", err)
			}
			var m msg
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m.Type != "status" && m.Type != "device" {
				return m, b
			}
		}
	}
	ws := dial("")
	defer ws.CloseNow()
	for _, line := range []string{pay, voucher} {
		if _, err := a.scanner.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var ids []string
	for range 4 {
		m, b := next(ws)
		switch m.Type {
		case "event":
			var e struct {
				EventID string `json:"event_id"`
				Code    struct{ Type, Masked string }
			}
			json.Unmarshal(m.Event, &e)
			if strings.Contains(string(b), pay) || strings.Contains(string(b), voucher) {
				t.Errorf("event carries the code unmasked: %s", b)
			}
			ids = append(ids, e.EventID)
			got = append(got, "event "+e.Code.Type)
		default:
			if m.EventID != ids[len(ids)-1] || m.Seq == 0 || m.Device != "front-scanner" {
				t.Errorf("%s message not tied to the event just before it: %s (events %v)", m.Type, b, ids)
			}
			got = append(got, m.Type+" "+m.Scheme+" "+m.Code)
		}
	}
	want := []string{"event payment", "payment unionpay " + pay, "event insurance", "insurance  " + voucher}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A kiosk that connects later, or polls, gets the events only.
	late := dial("?after=0")
	defer late.CloseNow()
	for range 2 {
		if m, b := next(late); m.Type != "event" || strings.Contains(string(b), pay) || strings.Contains(string(b), voucher) {
			t.Errorf("replay: %s", b)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+a.apiAddr+"/v1/events?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "6225***********0123") || strings.Contains(string(body), pay) || strings.Contains(string(body), voucher) {
		t.Errorf("/v1/events: %s", body)
	}
	if l := a.logs.String(); strings.Contains(l, pay) || strings.Contains(l, voucher) {
		t.Errorf("the log has a code unmasked:\n%s", l)
	}
	filepath.WalkDir(filepath.Join(dir, "state"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && (strings.Contains(string(b), pay) || strings.Contains(string(b), voucher)) {
			t.Errorf("%s holds a code unmasked", path)
		}
		return nil
	})
}
