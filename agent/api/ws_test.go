package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/drivers/device"
)

func TestWebSocketReplayThenLive(t *testing.T) {
	h := start(t, nil)
	for s := uint64(1); s <= 5; s++ {
		h.srv.Event(testEvent(s, 0))
	}
	c := dial(t, h, "?after=2")
	if m := read(t, c); m.Type != "status" || !bytes.Contains(m.Status, []byte(`"terminal_id":"T-TEST"`)) {
		t.Fatalf("first message %+v, want the status", m)
	}
	for want := uint64(3); want <= 5; want++ {
		m := read(t, c)
		if m.Type != "event" || m.Seq != want || !m.Replay || m.Event == nil || m.Event.Seq != want {
			t.Fatalf("replay: got %+v, want event %d marked replay", m, want)
		}
		if m.Event.Identity == nil || m.Event.Identity.Name != holderName {
			t.Fatalf("identity not delivered: %+v", m.Event)
		}
	}
	h.srv.Event(testEvent(6, 0))
	if m := read(t, c); m.Type != "event" || m.Seq != 6 || m.Replay {
		t.Fatalf("live: got %+v, want event 6 not marked replay", m)
	}
	h.srv.DeviceState(device.State{Device: "front-scanner", State: device.StateDisconnected, Reason: "port_closed", At: time.Now()})
	if m := read(t, c); m.Type != "device" || m.Device.Device != "front-scanner" || m.Device.State != "disconnected" || m.Device.Reason != "port_closed" {
		t.Fatalf("device: got %+v", m)
	}

	// Without after: live only, nothing replayed.
	c2 := dial(t, h, "")
	read(t, c2) // status
	h.srv.Event(testEvent(7, 0))
	if m := read(t, c2); m.Type != "event" || m.Seq != 7 {
		t.Fatalf("live-only client got %+v, want event 7", m)
	}

	// after older than the ring: told what is missing, then given what is there.
	h2 := start(t, func(o *api.Options) { o.RingSize = 3; o.StartSeq = 10 })
	for s := uint64(11); s <= 16; s++ {
		h2.srv.Event(testEvent(s, 0))
	}
	c3 := dial(t, h2, "?after=11")
	read(t, c3) // status
	if m := read(t, c3); m.Type != "error" || m.Error != "events_missed" || m.FirstSeq != 14 {
		t.Fatalf("got %+v, want error events_missed first_seq 14", m)
	}
	for want := uint64(14); want <= 16; want++ {
		if m := read(t, c3); m.Seq != want {
			t.Fatalf("got %+v, want event %d", m, want)
		}
	}
}

// eventSeq reads the seq of an event message without decoding the whole message (a
// photo makes it large): messages are {"type":"event","seq":N,...}.
var seqPrefix = regexp.MustCompile(`^\{"type":"(\w+)"(?:,"seq":(\d+))?`)

func eventSeq(b []byte) (typ string, seq uint64) {
	m := seqPrefix.FindSubmatch(b)
	if m == nil {
		return "", 0
	}
	seq, _ = strconv.ParseUint(string(m[2]), 10, 64)
	return string(m[1]), seq
}

// liveClient reads every message and records when each event arrived.
type liveClient struct {
	got   []uint64
	at    []time.Time
	err   error
	close websocket.StatusCode
}

func (lc *liveClient) run(c *websocket.Conn) {
	for {
		_, b, err := c.Read(context.Background())
		if err != nil {
			lc.err, lc.close = err, websocket.CloseStatus(err)
			return
		}
		if typ, seq := eventSeq(b); typ == "event" {
			lc.got = append(lc.got, seq)
			lc.at = append(lc.at, time.Now())
		}
	}
}

// TestSlowClientDroppedOthersOnTime: 50 clients read every event in order while one
// client stops reading. The stuck client is dropped with a reason once its queue fills;
// the pipeline's call never waits for it, the 50 others are not held up by it, and the
// dropped client, once it reads again, learns why and resumes by seq without a gap.
func TestSlowClientDroppedOthersOnTime(t *testing.T) {
	const (
		live   = 50
		buffer = 32
		photo  = 1 << 10 // a card photo makes events large, as they are
	)
	h := start(t, func(o *api.Options) { o.WSBuffer = buffer })

	clients := make([]*liveClient, live)
	var wg sync.WaitGroup
	for i := range clients {
		c := dial(t, h, "")
		if m := read(t, c); m.Type != "status" {
			t.Fatalf("client %d: first message %+v", i, m)
		}
		clients[i] = &liveClient{}
		wg.Add(1)
		go func(lc *liveClient) { defer wg.Done(); lc.run(c) }(clients[i])
	}

	dropped := func() bool {
		_, body := h.do(t, "GET", "/metrics", auth())
		return bytes.Contains(body, []byte(`ehc_agent_api_websocket_dropped_total{reason="slow_consumer"} 1`))
	}
	published := map[uint64]time.Time{}
	var calls []time.Duration // how long each Event call took
	var seq uint64
	publish := func() {
		seq++
		e := testEvent(seq, photo)
		t0 := time.Now()
		h.srv.Event(e)
		calls = append(calls, time.Since(t0))
		published[seq] = t0
		time.Sleep(10 * time.Millisecond) // events are human-paced; 100/s is far beyond a kiosk
	}
	// Warm-up (excluded), then the baseline: the 50 clients alone.
	const warmup, baseline = 20, 80
	for seq < baseline {
		for range 5 {
			publish()
		}
		dropped() // as in the phase below, so that both publish at the same pace
	}
	baselineCalls := len(calls)

	// The stuck client takes its status message and then nothing: with a small receive
	// buffer its kernel queue fills after a few events, then its queue at the server.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stuck, _, err := websocket.Dial(ctx, h.ws, &websocket.DialOptions{
		Subprotocols: []string{api.SubprotocolV1, api.SubprotocolBearer + testToken},
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.CloseNow()
	stuck.SetReadLimit(1 << 20)
	if m := read(t, stuck); m.Type != "status" {
		t.Fatalf("stuck client: first message %+v", m)
	}

	for !dropped() {
		if seq >= 2000 {
			t.Fatalf("stuck client not dropped after %d events", seq)
		}
		for range 5 {
			publish()
		}
	}
	droppedAt := seq
	for range 50 {
		publish()
	}
	total := seq
	c50, c99 := percentiles(calls[baselineCalls:])
	t.Logf("stuck client dropped after %d events; %d published; Event call with it p50 %s p99 %s max %s",
		droppedAt, total, c50, c99, calls[len(calls)-1])
	// Waiting for the stuck client would take writeTimeout (5 s) or forever, and the
	// client was stuck for seconds: no call may come near that. (Finer timings here
	// measure the machine: 100 goroutines and the race detector share its CPUs.)
	if calls[len(calls)-1] > time.Second {
		t.Errorf("an Event call took %s with a stuck client: the pipeline must never wait for a client", calls[len(calls)-1])
	}

	// The stuck client reads again: what was queued for it, then the reason.
	last := uint64(baseline)
	var reason message
	for {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, b, err := stuck.Read(rctx)
		rcancel()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("stuck client closed with %v, want status 1008 (policy violation)", err)
			}
			var ce websocket.CloseError
			if ok := asCloseError(err, &ce); !ok || ce.Reason != "slow_consumer" {
				t.Fatalf("close reason %+v, want slow_consumer", ce)
			}
			break
		}
		typ, s := eventSeq(b)
		switch typ {
		case "event":
			if s != last+1 {
				t.Fatalf("stuck client: event %d after %d", s, last)
			}
			last = s
		case "error":
			reason = decode(t, b)
		}
	}
	if reason.Error != "slow_consumer" || reason.ResumeAfter != last {
		t.Fatalf("error message %+v, want slow_consumer with resume_after %d", reason, last)
	}
	if last >= total {
		t.Fatalf("stuck client got everything (%d): it was not dropped early", last)
	}

	// It resumes by seq and misses nothing.
	c := dial(t, h, fmt.Sprintf("?after=%d", last))
	read(t, c) // status
	for want := last + 1; want <= total; want++ {
		if m := read(t, c); m.Type != "event" || m.Seq != want {
			t.Fatalf("resumed client got %+v, want event %d", m, want)
		}
	}

	h.stop()
	wg.Wait()
	var before, during []time.Duration // without and with the stuck client connected
	for i, lc := range clients {
		if len(lc.got) != int(total) {
			t.Fatalf("client %d got %d events, want %d (closed: %v)", i, len(lc.got), total, lc.err)
		}
		for j, s := range lc.got {
			if s != uint64(j+1) {
				t.Fatalf("client %d: event %d at position %d: out of order", i, s, j)
			}
			d := lc.at[j].Sub(published[s])
			switch {
			case s <= warmup:
			case s <= baseline:
				before = append(before, d)
			default:
				during = append(during, d)
			}
		}
		if lc.close != websocket.StatusGoingAway {
			t.Errorf("client %d closed with %v at shutdown, want going away", i, lc.err)
		}
	}
	b50, b99 := percentiles(before)
	d50, d99 := percentiles(during)
	t.Logf("delivery to %d live clients: alone p50 %s p99 %s; with the stuck client p50 %s p99 %s", live, b50, b99, d50, d99)
	// The median, not the tail, is compared: the tail follows whatever else the machine
	// runs at that moment, while a client holding up the fan-out would shift every event.
	if d50-b50 > 10*time.Millisecond {
		t.Errorf("the stuck client delayed the others by %s (median), more than 10ms", d50-b50)
	}
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[len(ds)*99/100]
}

func asCloseError(err error, ce *websocket.CloseError) bool {
	for e := err; e != nil; {
		if c, ok := e.(websocket.CloseError); ok {
			*ce = c
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func decode(t *testing.T, b []byte) message {
	t.Helper()
	var m message
	if err := jsonUnmarshal(b, &m); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return m
}

func TestShutdownIsBoundedAndTellsClients(t *testing.T) {
	h := start(t, nil)
	c := dial(t, h, "")
	read(t, c) // status
	poll := make(chan error, 1)
	go func() {
		resp, body, err := h.try("GET", "/v1/events?wait=60s", auth())
		if err == nil && (resp.StatusCode != 200 || string(body) != "[]") {
			err = fmt.Errorf("long-poll at shutdown: %d %q", resp.StatusCode, body)
		}
		poll <- err
	}()
	time.Sleep(100 * time.Millisecond)
	took := h.stop()
	if took > api.ShutdownTimeout+200*time.Millisecond {
		t.Fatalf("Serve took %s to stop, want ≤ %s", took, api.ShutdownTimeout)
	}
	if err := <-poll; err != nil {
		t.Fatal(err)
	}
	m := read(t, c)
	if m.Type != "error" || m.Error != "agent_stopping" {
		t.Fatalf("got %+v, want error agent_stopping", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("close: %v, want going away", err)
	}
}
