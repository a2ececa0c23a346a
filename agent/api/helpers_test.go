package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

const testToken = "test-token-0123456789abcdefghijklmnop"

// Personal data put into test events; none of it may appear in metrics.
const (
	idNumber   = "110101198001011234"
	holderName = "张三丰"
	ehcID      = "E44010000A1B2C3D4E5F"
	cardNo     = "D4401123456789"
	codeMasked = "EHC1:AB************XY"
)

type harness struct {
	srv   *api.Server
	url   string // http://127.0.0.1:PORT
	ws    string // ws://127.0.0.1:PORT/v1/ws
	devs  *fakeDevices
	stop  func() time.Duration // stops the server; returns how long Serve took to return
	depth float64
}

// start runs a real server on a loopback port until the test ends.
func start(t *testing.T, mod func(*api.Options)) *harness {
	t.Helper()
	h := &harness{devs: newFakeDevices(), depth: 7}
	o := api.Options{
		Listen:         "127.0.0.1:0",
		Token:          testToken,
		AllowedOrigins: []string{"http://kiosk.example:8080"},
		Devices:        h.devs,
		OutboxDepth:    func() float64 { return h.depth },
		Build:          map[string]string{"version": "test"},
		Status: func() any {
			return map[string]any{"terminal_id": "T-TEST", "devices": h.devs.DeviceStates()}
		},
	}
	if mod != nil {
		mod(&o)
	}
	srv, err := api.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h.srv, h.url, h.ws = srv, "http://"+ln.Addr().String(), "ws://"+ln.Addr().String()+"/v1/ws"
	var once sync.Once
	var took time.Duration
	h.stop = func() time.Duration {
		once.Do(func() {
			t0 := time.Now()
			cancel()
			select {
			case err := <-done:
				took = time.Since(t0)
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Serve did not return within 5 s of its context ending")
			}
		})
		return took
	}
	t.Cleanup(func() { h.stop() })
	return h
}

// do makes a request with the given headers ("token" is a shortcut for the
// Authorization header, "Host" sets the Host) and fails the test if it cannot.
func (h *harness) do(t *testing.T, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := h.try(method, path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// try is do for goroutines other than the test's.
func (h *harness) try(method, path string, hdr map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, h.url+path, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		switch k {
		case "token":
			req.Header.Set("Authorization", "Bearer "+v)
		case "Host":
			req.Host = v
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func auth() map[string]string { return map[string]string{"token": testToken} }

// testEvent is an identity event full of personal data, with an optional photo pad.
func testEvent(seq uint64, photo int) *event.Event {
	gen := time.Now().Add(-time.Second).UTC()
	exp := gen.Add(time.Minute)
	e := &event.Event{
		EventID: "0192f0c0-0000-7000-8000-" + strings.Repeat("0", 12), TerminalID: "T-TEST", Seq: seq,
		OccurredAt: time.Now().UTC(),
		Source:     event.Source{Kind: "qr", Device: "front-scanner", Driver: "serial"},
		Code:       &event.Code{Type: "ehc_offline", Masked: codeMasked},
		Verification: &event.Verification{Status: "valid", Offline: true, RootIndex: ptr(1), IssuerID: ptr[uint32](4401),
			GeneratedAt: &gen, ExpiresAt: &exp},
		Identity: &event.Identity{EHCID: ehcID, IDType: "01", IDNumber: idNumber, Name: holderName, CardNo: cardNo},
	}
	if photo > 0 {
		e.Identity.Photo = strings.Repeat("A", photo)
	}
	return e
}

// message is a WebSocket message as a client decodes it.
type message struct {
	Type        string          `json:"type"`
	Seq         uint64          `json:"seq"`
	Replay      bool            `json:"replay"`
	Event       *event.Event    `json:"event"`
	Device      api.DeviceState `json:"device"`
	Status      json.RawMessage `json:"status"`
	Error       string          `json:"error"`
	FirstSeq    uint64          `json:"first_seq"`
	ResumeAfter uint64          `json:"resume_after"`
}

func dial(t *testing.T, h *harness, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, h.ws+query, &websocket.DialOptions{
		Subprotocols: []string{api.SubprotocolV1, api.SubprotocolBearer + testToken},
	})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	if c.Subprotocol() != api.SubprotocolV1 {
		t.Fatalf("selected subprotocol %q, want %q", c.Subprotocol(), api.SubprotocolV1)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("message %q: %v", b, err)
	}
	return m
}

// fakeDevices stands in for the daemon behind the api.Devices interface.
type fakeDevices struct {
	mu     sync.Mutex
	devs   map[string]device.Device
	states map[string]device.State
}

func newFakeDevices() *fakeDevices {
	return &fakeDevices{devs: map[string]device.Device{}, states: map[string]device.State{}}
}

func (f *fakeDevices) add(d device.Device, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devs[d.Name()] = d
	f.states[d.Name()] = device.State{Device: d.Name(), State: state, At: time.Now()}
}

func (f *fakeDevices) Device(name string) (device.Device, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devs[name]
	return d, ok
}

func (f *fakeDevices) DeviceStates() map[string]device.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]device.State{}
	for k, v := range f.states {
		out[k] = v
	}
	return out
}

// plainDevice has no trigger.
type plainDevice struct{ name string }

func (d *plainDevice) Name() string                                 { return d.name }
func (d *plainDevice) Run(ctx context.Context, _ device.Sink) error { <-ctx.Done(); return nil }

// triggerDevice records trigger commands; fail makes them fail.
type triggerDevice struct {
	plainDevice
	mu    sync.Mutex
	calls []string
	fail  bool
}

func (d *triggerDevice) Trigger(ctx context.Context) error   { return d.record("trigger") }
func (d *triggerDevice) Untrigger(ctx context.Context) error { return d.record("untrigger") }

func (d *triggerDevice) record(c string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail {
		return errors.New("write /dev/ttyUSB0: input/output error")
	}
	d.calls = append(d.calls, c)
	return nil
}

func (d *triggerDevice) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func ptr[T any](v T) *T { return &v }
