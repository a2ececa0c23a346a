package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// lendAgent is an agent process with a serial scanner on a virtual pty and a local API
// on a known port, and the helpers a lend test needs.
type lendAgent struct {
	*agentProc
	t           *testing.T
	cfg, addr   string
	token       string
	vs          *vscanner.Scanner
	seq         int
	consoleNext int // console event number expected next
}

func startLendAgent(t *testing.T) *lendAgent {
	dir := t.TempDir()
	keys := simKeys(t, agentBin, dir)
	vs, err := vscanner.New(vscanner.Config{Link: filepath.Join(dir, "scanner")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The agent and the CLI both read api.listen; the environment wins over the file
	// (TestMain set it to port 0 for every other test).
	t.Setenv("EHC_AGENT_API_LISTEN", addr)
	codes := filepath.Join(dir, "codes.txt")
	os.WriteFile(codes, nil, 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	state := filepath.Join(dir, "state")
	writeConfig(t, cfg, state, keys, fmt.Sprintf(`  - {name: front-scanner, driver: serial, serial: {path: %s}, framing: {type: line, suffix: cr}}
  - {name: sim-b, driver: sim, sim: {file: %s, interval: 10ms}}
`, vs.Link(), codes))
	a := &lendAgent{agentProc: startAgent(t, cfg), t: t, cfg: cfg, addr: addr, vs: vs, consoleNext: 1}
	a.waitFor(`"local API listening"`, true, 15*time.Second)
	tb, err := os.ReadFile(filepath.Join(state, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	a.token = strings.TrimSpace(string(tb))
	a.waitState("front-scanner", "connected", 10*time.Second)
	return a
}

// scan sends a payment code whose last four digits are n; scanned says whether the
// agent must show it (as its next console event) or must not.
func (a *lendAgent) send(n int) string {
	a.t.Helper()
	code := fmt.Sprintf("622588123456789%04d", n)
	if err := a.vs.Send(context.Background(), []byte(code)); err != nil {
		a.t.Fatal(err)
	}
	return code
}

func (a *lendAgent) expectScan(n int) {
	a.t.Helper()
	a.waitFor(fmt.Sprintf("#%d front-scanner payment/unionpay 6225***********%04d", a.consoleNext, n), false, 10*time.Second)
	a.consoleNext++
}

func (a *lendAgent) consoleLines() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.lines, "\n")
}

// api calls the local API and returns the status and the decoded JSON object.
func (a *lendAgent) api(method, path, body string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, "http://"+a.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &m); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	} else {
		m = map[string]any{"text": string(b)}
	}
	return resp.StatusCode, m
}

func (a *lendAgent) state(name string) map[string]any {
	a.t.Helper()
	code, st := a.api("GET", "/v1/status", "")
	if code != 200 {
		a.t.Fatalf("status: %d %v", code, st)
	}
	devs, _ := st["devices"].(map[string]any)
	d, _ := devs[name].(map[string]any)
	return d
}

func (a *lendAgent) waitState(name, want string, within time.Duration) map[string]any {
	a.t.Helper()
	var d map[string]any
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if d = a.state(name); d["state"] == want {
			return d
		}
	}
	a.t.Fatalf("%s not %s within %s: %v\n%s", name, want, within, d, a.stderr.String())
	return nil
}

// cli runs `ehc-agent device …` against the running agent.
func (a *lendAgent) cli(args ...string) (string, string, int) {
	a.t.Helper()
	var out, errb bytes.Buffer
	code := runAgent(a.t, &out, &errb, append([]string{"device", "--config", a.cfg}, args...)...)
	return out.String(), errb.String(), code
}

func (a *lendAgent) metric(line string) bool {
	a.t.Helper()
	_, m := a.api("GET", "/metrics", "")
	text, _ := m["text"].(string)
	return strings.Contains(text, line)
}

// The "must show", end to end through the agent binary: scans flow from a
// real pty scanner; a scan sent just before `ehc-agent device lend` still reaches the
// agent; while lent, the test itself opens the pty exclusively (TIOCEXCL, as the
// medical-insurance SDK does) and reads the next scan there, and the agent sees none;
// the state "lent" shows in /v1/status, on the WebSocket and in the metrics; a second
// lend is 409 already_lent, an unknown device 404, a sim device 409 not_lendable; after
// `ehc-agent device reclaim` the very next scan reaches the agent; a lend that is let
// run out reopens the port by itself.
func TestDeviceLendThroughAgent(t *testing.T) {
	a := startLendAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+a.addr+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + a.token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	wsStates := make(chan string, 64)
	go func() {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var m struct {
				Type   string `json:"type"`
				Device struct {
					Device, State, Reason string
				} `json:"device"`
			}
			if json.Unmarshal(b, &m) == nil && m.Type == "device" && m.Device.Device == "front-scanner" {
				wsStates <- m.Device.State + "/" + m.Device.Reason
			}
		}
	}()

	a.send(1)
	a.expectScan(1)

	// Sent, then lent at once.
	a.send(2)
	out, errOut, code := a.cli("lend", "front-scanner", "--for", "60s")
	if code != 0 || !strings.Contains(out, "front-scanner lent until ") {
		t.Fatalf("lend: exit %d\n%s%s", code, out, errOut)
	}
	a.expectScan(2)
	st := a.state("front-scanner")
	if st["state"] != "lent" || st["reason"] != "lent" || !strings.HasPrefix(fmt.Sprint(st["detail"]), "until ") {
		t.Fatalf("status while lent: %v", st)
	}
	for want := "lent/lent"; ; {
		select {
		case s := <-wsStates:
			if s != want {
				continue
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no WebSocket device message with the state lent")
		}
		break
	}
	if !a.metric(`ehc_agent_device_state{device="front-scanner",state="lent"} 1`) || !a.metric(`ehc_agent_device_lends_total{device="front-scanner"} 1`) {
		t.Fatalf("metrics while lent:\n%v", a.agentProc.stderr.String())
	}

	// Refusals.
	if _, errOut, code := a.cli("lend", "front-scanner", "--for", "10s"); code != 1 || !strings.Contains(errOut, "already_lent") {
		t.Fatalf("second lend from the CLI: exit %d: %s", code, errOut)
	}
	for _, tc := range []struct {
		path, body string
		code       int
		reason     string
	}{
		{"/v1/devices/front-scanner/lend", `{"seconds": 30}`, 409, "already_lent"},
		{"/v1/devices/nowhere/lend", `{"seconds": 30}`, 404, "unknown_device"},
		{"/v1/devices/nowhere/reclaim", ``, 404, "unknown_device"},
		{"/v1/devices/sim-b/lend", `{"seconds": 30}`, 409, "not_lendable"},
		{"/v1/devices/sim-b/reclaim", ``, 409, "not_lendable"},
		{"/v1/devices/front-scanner/lend", `{"seconds": 0}`, 400, "bad_seconds"},
		{"/v1/devices/front-scanner/lend", `{"seconds": 601}`, 400, "bad_seconds"},
		{"/v1/devices/front-scanner/lend", `{"for": 30}`, 400, "bad_body"},
	} {
		code, m := a.api("POST", tc.path, tc.body)
		if code != tc.code || m["error"] != tc.reason {
			t.Errorf("POST %s %s: %d %v, want %d %s", tc.path, tc.body, code, m, tc.code, tc.reason)
		}
	}

	// The SDK's turn: the port is free, it takes it exclusively and reads a scan.
	slave := a.vs.Path()
	sdk, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sdk.Close()
	if v, err := unix.IoctlGetInt(int(sdk.Fd()), unix.TIOCGEXCL); err != nil || v != 0 {
		t.Fatalf("the agent still holds the port exclusively while lent (TIOCGEXCL %d, %v)", v, err)
	}
	if err := unix.IoctlSetInt(int(sdk.Fd()), unix.TIOCEXCL, 0); err != nil {
		t.Fatal(err)
	}
	sent := a.send(3)
	sdk.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	for buf := make([]byte, 64); !bytes.HasSuffix(got, []byte("\r")); {
		n, err := sdk.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("the SDK read %q: %v", got, err)
		}
	}
	if string(got) != sent+"\r" {
		t.Fatalf("the SDK read %q, want %q", got, sent)
	}
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(a.consoleLines(), "0003") {
		t.Fatalf("the agent read the SDK's scan:\n%s", a.consoleLines())
	}
	sdk.Close()

	out, errOut, code = a.cli("reclaim", "front-scanner")
	if code != 0 || !strings.Contains(out, "front-scanner reclaimed") {
		t.Fatalf("reclaim: exit %d\n%s%s", code, out, errOut)
	}
	a.send(4) // at once: the port may not be open yet
	a.expectScan(4)
	if st := a.waitState("front-scanner", "connected", 5*time.Second); st["state"] != "connected" {
		t.Fatal(st)
	}
	if _, errOut, code := a.cli("reclaim", "front-scanner"); code != 1 || !strings.Contains(errOut, "not_lent") {
		t.Fatalf("reclaim of a device not lent: exit %d: %s", code, errOut)
	}
	if !a.metric(`ehc_agent_device_lend_ends_total{device="front-scanner",reason="reclaimed"} 1`) ||
		!a.metric(`ehc_agent_device_reconnects_total{device="front-scanner"} 0`) {
		t.Fatal("metrics after the reclaim")
	}

	// A lend that runs out: the agent opens the port again by itself, and the scan
	// sent meanwhile (nobody borrowed the port) waits in the tty for it.
	code, m := a.api("POST", "/v1/devices/front-scanner/lend", `{"seconds": 1}`)
	if code != 200 || m["state"] != "lent" || m["until"] == nil {
		t.Fatalf("lend for 1 s: %d %v", code, m)
	}
	a.send(5)
	a.waitState("front-scanner", "connected", 5*time.Second)
	a.expectScan(5)
	if !a.metric(`ehc_agent_device_lend_ends_total{device="front-scanner",reason="lend_expired"} 1`) {
		t.Fatal("metrics after the expiry")
	}
	a.waitFor(`"msg":"device lent"`, true, time.Second)
	a.waitFor(`"msg":"device reclaimed"`, true, time.Second)
	a.waitFor(`"reason":"lend_expired"`, true, time.Second)
	a.stop(10 * time.Second)
}
