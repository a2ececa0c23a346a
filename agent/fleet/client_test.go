package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/emmansun/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/agent/fleet/fleettest"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// fakeAgent is the agent's side of the status: devices whose state a test changes.
type fakeAgent struct {
	mu      sync.Mutex
	devices map[string]device.State
}

func (a *fakeAgent) set(name, state string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.devices == nil {
		a.devices = map[string]device.State{}
	}
	a.devices[name] = device.State{Device: name, State: state, At: time.Now()}
}

func (a *fakeAgent) status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := make(map[string]device.State, len(a.devices))
	for k, v := range a.devices {
		d[k] = v
	}
	return Status{Devices: d, Outbox: &Outbox{Depth: 2, Oldest: time.Now().Add(-time.Minute)}}
}

type running struct {
	*Client
	stop func() // cancels Run and waits for it
	logs *logtest.Buffer
}

// runClient runs a fleet client for terminal against b until the test ends (or stop).
func runClient(t *testing.T, b *fleettest.Broker, terminal string, edit func(*Options)) *running {
	t.Helper()
	logs := &logtest.Buffer{}
	o := Options{Broker: b.URL(), TLS: b.PKI.TLS(t, terminal), Prefix: testPrefix, TerminalID: terminal,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second, ConnectTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10 s of its context ending")
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", terminal, logs.String())
		}
	})
	return &running{Client: c, stop: stop, logs: logs}
}

func waitConnected(t *testing.T, c *Client, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for c.Connected() != want {
		if time.Now().After(deadline) {
			t.Fatalf("connected=%v not reached within %s", want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func online(st Status) bool { return st.State == StateOnline }

// A status is retained: a subscriber that arrives after it was published still gets
// it, and sees later changes — at most one a second however fast the agent changes.
func TestStatusRetainedAndUpdated(t *testing.T) {
	b := startBroker(t, false)
	agent := &fakeAgent{}
	agent.set("front-scanner", device.StateConnected)
	c := runClient(t, b, "K-0001", func(o *Options) { o.Status = agent.status })
	waitConnected(t, c.Client, true, 5*time.Second)

	// Each Statuses call is a fresh subscription, served from the retained messages;
	// the first status goes out right after the connection, so a few may come too early.
	op := operator(t, b, opsUser, OperatorOptions{})
	var all []Status
	for deadline := time.Now().Add(5 * time.Second); len(all) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no retained status for a fresh subscriber")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		all, err = op.Statuses(ctx, 200*time.Millisecond)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(all) != 1 || all[0].TerminalID != "K-0001" || all[0].State != StateOnline {
		t.Fatalf("fresh subscriber got %+v, want K-0001 online", all)
	}
	if st := all[0]; st.Devices["front-scanner"].State != device.StateConnected || st.Outbox == nil ||
		st.Outbox.Depth != 2 || st.Outbox.OldestAgeSeconds < 59 || st.OnlineSince.IsZero() || st.Fleet == nil {
		t.Fatalf("status lacks what the agent reported: %+v", st)
	}

	ch := watch(t, op, Topics{testPrefix, "K-0001"}.Status())
	nextStatus(t, ch, 2*time.Second, online) // the retained one, again
	agent.set("front-scanner", device.StateDisconnected)
	st := nextStatus(t, ch, 3*time.Second, func(s Status) bool {
		return s.Devices["front-scanner"].State == device.StateDisconnected
	})
	if st.State != StateOnline {
		t.Fatalf("state %q", st.State)
	}

	// Twenty changes in two seconds: at most one status per second goes out. The gap is
	// measured between the statuses' own times, which the broker's delivery cannot skew.
	var got []Status
	stopFlap := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(stopFlap); i++ {
		agent.set("front-scanner", []string{device.StateConnected, device.StateDisconnected}[i%2])
		time.Sleep(100 * time.Millisecond)
	drain:
		for {
			select {
			case p := <-ch:
				var s Status
				if err := json.Unmarshal(p.Payload, &s); err != nil {
					t.Fatal(err)
				}
				got = append(got, s)
			default:
				break drain
			}
		}
	}
	if len(got) < 1 || len(got) > 3 {
		t.Fatalf("%d statuses for 20 changes in 2 s, want 1..3", len(got))
	}
	prev := st.At
	for _, s := range got {
		if d := s.At.Sub(prev); d < 990*time.Millisecond {
			t.Fatalf("two statuses %s apart: the rate limit is 1/s", d)
		}
		prev = s.At
	}
}

// Without change, the status is republished every heartbeat.
func TestStatusHeartbeat(t *testing.T) {
	b := startBroker(t, false)
	c := runClient(t, b, "K-0001", func(o *Options) {
		o.Heartbeat, o.MinInterval = 700*time.Millisecond, 100*time.Millisecond
	})
	waitConnected(t, c.Client, true, 5*time.Second)
	ch := watch(t, operator(t, b, opsUser, OperatorOptions{}), Topics{testPrefix, "K-0001"}.Status())
	first := nextStatus(t, ch, 2*time.Second, online)
	second := nextStatus(t, ch, 2*time.Second, online)
	third := nextStatus(t, ch, 2*time.Second, online)
	for _, gap := range []time.Duration{second.At.Sub(first.At), third.At.Sub(second.At)} {
		if gap < 690*time.Millisecond || gap > 2500*time.Millisecond {
			t.Fatalf("heartbeat gap %s, want about 700ms", gap)
		}
	}
}

// A clean stop leaves "offline, stopped" retained.
func TestCleanStopPublishesStopped(t *testing.T) {
	b := startBroker(t, false)
	c := runClient(t, b, "K-0001", nil)
	waitConnected(t, c.Client, true, 5*time.Second)
	ch := watch(t, operator(t, b, opsUser, OperatorOptions{}), Topics{testPrefix, "K-0001"}.Status())
	nextStatus(t, ch, 2*time.Second, online)
	c.stop()
	st := nextStatus(t, ch, 3*time.Second, func(s Status) bool { return s.State == StateOffline })
	if st.Reason != OfflineStopped {
		t.Fatalf("offline reason %q, want %q", st.Reason, OfflineStopped)
	}
}

// commandHarness is a terminal that runs commands, and an operator holding the key.
type commandHarness struct {
	b       *fleettest.Broker
	c       *running
	op      *Operator
	key     *sm2.PrivateKey
	mu      sync.Mutex
	handled []string
}

func newCommandHarness(t *testing.T, edit func(*Options)) *commandHarness {
	h := &commandHarness{b: startBroker(t, false)}
	var err error
	if h.key, err = sm2sig.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	h.c = runClient(t, h.b, "K-0001", func(o *Options) {
		o.CommandKey = sm2sig.Public(h.key)
		o.CommandTimeout = 300 * time.Millisecond
		o.Handle = func(ctx context.Context, c *Command) (any, error) {
			h.mu.Lock()
			h.handled = append(h.handled, c.Verb+" "+string(c.Args))
			h.mu.Unlock()
			var a struct{ Device, Mode string }
			_ = json.Unmarshal(c.Args, &a)
			switch a.Mode {
			case "fail":
				return nil, errors.New("port closed")
			case "hang":
				<-ctx.Done()
				return nil, ctx.Err()
			case "panic":
				panic("handler bug")
			}
			return map[string]string{"device": a.Device, "did": c.Verb}, nil
		}
		if edit != nil {
			edit(o)
		}
	})
	waitConnected(t, h.c.Client, true, 5*time.Second)
	h.op = operator(t, h.b, opsUser, OperatorOptions{Key: h.key})
	waitAnswering(t, h.op, "K-0001")
	return h
}

// waitAnswering returns once terminal answers commands: it subscribes to them right
// after connecting. The probes are unsigned, so they never reach a handler.
func waitAnswering(t *testing.T, op *Operator, terminal string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		rid := fmt.Sprintf("probe-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := op.Exchange(ctx, terminal, VerbDoctor, rid, []byte(`{"request_id":"`+rid+`"}`))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer commands: %v", terminal, err)
		}
	}
}

func (h *commandHarness) exchange(t *testing.T, verb string, c *Command) *Reply {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return h.exchangeRaw(t, verb, c.RequestID, b)
}

func (h *commandHarness) exchangeRaw(t *testing.T, verb, rid string, payload []byte) *Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := h.op.Exchange(ctx, "K-0001", verb, rid, payload)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *commandHarness) signed(t *testing.T, terminal, verb string, args any, ts time.Time, key *sm2.PrivateKey) *Command {
	t.Helper()
	c, err := NewCommand(terminal, verb, args, ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}
	return c
}

// A signed command runs and replies; unsigned, badly signed, stale, replayed or
// misdirected ones are refused with a reason, and never reach the handler.
func TestCommandsSignedAcceptedOthersRefused(t *testing.T) {
	h := newCommandHarness(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := h.op.Send(ctx, "K-0001", VerbTrigger, map[string]string{"device": "front-scanner"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Verb != VerbTrigger || r.TerminalID != "K-0001" || string(r.Result) != `{"device":"front-scanner","did":"trigger"}` {
		t.Fatalf("signed trigger: %+v", r)
	}

	other, _ := sm2sig.GenerateKey()
	now := time.Now()
	tampered := h.signed(t, "K-0001", VerbTrigger, map[string]string{"device": "a"}, now, h.key)
	tampered.Args = json.RawMessage(`{"device":"b"}`)
	unsigned := h.signed(t, "K-0001", VerbTrigger, nil, now, h.key)
	unsigned.Sig = ""
	replayed := h.signed(t, "K-0001", VerbUntrigger, map[string]string{"device": "front-scanner"}, now, h.key)
	if r := h.exchange(t, VerbUntrigger, replayed); !r.OK {
		t.Fatalf("first use of a command refused: %+v", r)
	}
	for _, tc := range []struct {
		name, verb, reason string
		c                  *Command
	}{
		{"unsigned", VerbTrigger, ReasonUnsigned, unsigned},
		{"other key", VerbTrigger, ReasonBadSignature, h.signed(t, "K-0001", VerbTrigger, nil, now, other)},
		{"args changed after signing", VerbTrigger, ReasonBadSignature, tampered},
		{"61 s old", VerbTrigger, ReasonStale, h.signed(t, "K-0001", VerbTrigger, nil, now.Add(-61*time.Second), h.key)},
		// ts is whole seconds: 62 s ahead is at least 61 s ahead once truncated.
		{"62 s ahead", VerbTrigger, ReasonStale, h.signed(t, "K-0001", VerbTrigger, nil, now.Add(62*time.Second), h.key)},
		{"replayed", VerbUntrigger, ReasonReplayed, replayed},
		{"for another terminal", VerbTrigger, ReasonWrongTerminal, h.signed(t, "K-0002", VerbTrigger, nil, now, h.key)},
		{"on another verb's topic", VerbReload, ReasonVerbMismatch, h.signed(t, "K-0001", VerbTrigger, nil, now, h.key)},
		{"unknown verb", "explode", ReasonUnknownVerb, h.signed(t, "K-0001", "explode", nil, now, h.key)},
	} {
		r := h.exchange(t, tc.verb, tc.c)
		if r.OK || r.Reason != tc.reason || r.RequestID != tc.c.RequestID || r.Detail == "" {
			t.Errorf("%s: reply %+v, want refused %q", tc.name, r, tc.reason)
		}
	}
	if r := h.exchangeRaw(t, VerbTrigger, "r-garbage", []byte(`{"request_id":"r-garbage","sig":"!!"}`)); r.Reason != ReasonBadSignature {
		t.Errorf("garbage sig: %+v", r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := []string{`trigger {"device":"front-scanner"}`, `untrigger {"device":"front-scanner"}`}; strings.Join(h.handled, "|") != strings.Join(want, "|") {
		t.Fatalf("handler ran %q, want only %q", h.handled, want)
	}
}

// A handler's failure, timeout and panic each come back as a reply.
func TestCommandFailures(t *testing.T) {
	h := newCommandHarness(t, nil)
	for _, tc := range []struct{ mode, reason string }{{"fail", ReasonFailed}, {"hang", ReasonTimeout}, {"panic", ReasonFailed}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := h.op.Send(ctx, "K-0001", VerbTrigger, map[string]string{"device": "x", "mode": tc.mode})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if r.OK || r.Reason != tc.reason {
			t.Errorf("%s: %+v, want %q", tc.mode, r, tc.reason)
		}
	}
	// The terminal is still there after a panic.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := h.op.Send(ctx, "K-0001", VerbDoctor, nil); err != nil || !r.OK {
		t.Fatalf("after a panic: %+v %v", r, err)
	}
}

// Without a configured fleet key every command is refused, and says why.
func TestCommandsDisabledWithoutKey(t *testing.T) {
	h := newCommandHarness(t, func(o *Options) { o.CommandKey = nil })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := h.op.Send(ctx, "K-0001", VerbDoctor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || r.Reason != ReasonCommandsDisabled {
		t.Fatalf("%+v", r)
	}
}

// The broker's ACL (client certificate CN = terminal id) keeps a terminal to its own
// topics: K-0002 can neither publish K-0001's status — not even connected under
// K-0001's client id — nor read K-0001's commands.
func TestTerminalCannotActForAnother(t *testing.T) {
	b := startBroker(t, false)
	ops := operator(t, b, opsUser, OperatorOptions{})
	ch := watch(t, ops, Topics{testPrefix, "K-0001"}.Status())
	impostor := operator(t, b, "K-0002", OperatorOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	fake, _ := json.Marshal(Status{TerminalID: "K-0001", State: StateOnline})
	if _, err := impostor.cm.Publish(ctx, &paho.Publish{QoS: 1, Retain: true, Topic: Topics{testPrefix, "K-0001"}.Status(), Payload: fake}); err == nil {
		t.Error("the broker acknowledged K-0002 publishing K-0001's status")
	} else {
		t.Logf("K-0002 publishing K-0001's status: %v", err)
	}
	// Mosquitto grants the subscription but delivers nothing the ACL does not allow
	// (EMQX refuses it outright): either way, K-0002 never sees K-0001's commands.
	stolen := watch(t, impostor, Topics{testPrefix, "K-0001"}.Commands())
	rightful := watch(t, operator(t, b, "K-0001", OperatorOptions{}), Topics{testPrefix, "K-0001"}.Commands())
	if _, err := ops.cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: Topics{testPrefix, "K-0001"}.Command(VerbDoctor), Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rightful:
	case <-time.After(3 * time.Second):
		t.Fatal("K-0001 itself did not receive its command: the test proves nothing")
	}
	// Its own status it may publish.
	own, _ := json.Marshal(Status{TerminalID: "K-0002", State: StateOnline})
	if _, err := impostor.cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: Topics{testPrefix, "K-0002"}.Status(), Payload: own}); err != nil {
		t.Errorf("K-0002 publishing its own status: %v", err)
	}
	// Nor by taking K-0001's MQTT client id: the ACL goes by the certificate's CN.
	disguised := operator(t, b, "K-0002", OperatorOptions{ClientID: "K-0001"})
	if _, err := disguised.cm.Publish(ctx, &paho.Publish{QoS: 1, Retain: true, Topic: Topics{testPrefix, "K-0001"}.Status(), Payload: fake}); err == nil {
		t.Error("the broker acknowledged K-0002, as client id K-0001, publishing K-0001's status")
	}
	select {
	case p := <-ch:
		t.Fatalf("a subscriber of K-0001's status got %s", p.Payload)
	case p := <-stolen:
		t.Fatalf("K-0002 received K-0001's command on %s", p.Topic)
	case <-time.After(500 * time.Millisecond):
	}
}

// Verdicts on the events topic carry no identity, no code and no event id.
func TestEventsAreMaskedVerdicts(t *testing.T) {
	b := startBroker(t, false)
	c := runClient(t, b, "K-0001", func(o *Options) { o.Events = true })
	waitConnected(t, c.Client, true, 5*time.Second)
	ch := watch(t, operator(t, b, opsUser, OperatorOptions{}), Topics{testPrefix, "K-0001"}.Events())
	e := &event.Event{EventID: "0190f1e2-7c4a-7000-8000-000000000001", TerminalID: "K-0001", Seq: 7, OccurredAt: time.Now(),
		Source:       event.Source{Kind: "qr", Device: "front-scanner", Driver: "sim"},
		Code:         &event.Code{Type: "ehc_offline", Scheme: "ehc1", Masked: "EHC1:AB…YZ"},
		Verification: &event.Verification{Status: "valid", Offline: true},
		Identity:     &event.Identity{EHCID: "E110101199003071234", Name: "张三", IDNumber: "110101199003071234", Photo: "/9j/4AAQ"}}
	c.Event(e)
	select {
	case p := <-ch:
		for _, secret := range []string{"张三", "1101011990", "E1101", "EHC1:AB", "0190f1e2", "/9j/"} {
			if strings.Contains(string(p.Payload), secret) {
				t.Fatalf("verdict %s carries %q", p.Payload, secret)
			}
		}
		var v Verdict
		if err := json.Unmarshal(p.Payload, &v); err != nil || v.Seq != 7 || v.Status != "valid" || v.CodeType != "ehc_offline" || v.Device != "front-scanner" {
			t.Fatalf("verdict %s (%v)", p.Payload, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no verdict published")
	}
}

// The broker restarted: the terminal reconnects on its own, republishes its status
// (kept by the broker's persistence, then replaced) and answers commands again; while
// the broker is away, Event never waits.
func TestBrokerRestart(t *testing.T) {
	b := startBroker(t, true)
	key, _ := sm2sig.GenerateKey()
	c := runClient(t, b, "K-0001", func(o *Options) {
		o.Events = true
		o.CommandKey = sm2sig.Public(key)
		o.Handle = func(context.Context, *Command) (any, error) { return "ok", nil }
	})
	waitAnswering(t, operator(t, b, opsUser, OperatorOptions{}), "K-0001")

	b.Stop()
	waitConnected(t, c.Client, false, 5*time.Second)
	// Ten queues' worth of events: a client that waited on the broker would hang here
	// (each publish may wait 10 s); one that does not drops and counts the excess.
	e := &event.Event{Seq: 1, OccurredAt: time.Now(), Source: event.Source{Kind: "qr", Device: "d"}}
	t0 := time.Now()
	for i := 0; i < 10*eventQueue; i++ {
		c.Event(e)
	}
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("%d Event calls took %s with the broker away; Event must never wait", 10*eventQueue, took)
	}
	for deadline := time.Now().Add(2 * time.Second); c.eventsDropped.Load() < 9*eventQueue; {
		if time.Now().After(deadline) {
			t.Fatalf("%d verdicts dropped with the broker away, want at least %d", c.eventsDropped.Load(), 9*eventQueue)
		}
		time.Sleep(10 * time.Millisecond)
	}

	restarted := time.Now()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, c.Client, true, 10*time.Second)
	t.Logf("reconnected %s after the broker came back", time.Since(restarted).Round(time.Millisecond))
	op := operator(t, b, opsUser, OperatorOptions{Key: key})
	ch := watch(t, op, Topics{testPrefix, "K-0001"}.Status())
	nextStatus(t, ch, 3*time.Second, func(s Status) bool { return online(s) && s.OnlineSince.After(restarted) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := op.Send(ctx, "K-0001", VerbDoctor, nil)
	if err != nil || !r.OK {
		t.Fatalf("command after the restart: %+v %v", r, err)
	}
}

// Run returns only when every goroutine it started, autopaho's included, has ended.
func TestRunLeavesNoGoroutines(t *testing.T) {
	b := startBroker(t, false)
	key, _ := sm2sig.GenerateKey()
	op := operator(t, b, opsUser, OperatorOptions{Key: key})
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	c := runClient(t, b, "K-0001", func(o *Options) {
		o.Events, o.CommandKey = true, sm2sig.Public(key)
		o.Handle = func(context.Context, *Command) (any, error) { return nil, nil }
	})
	waitAnswering(t, op, "K-0001")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := op.Send(ctx, "K-0001", VerbDoctor, nil); err != nil || !r.OK {
		t.Fatalf("%+v %v", r, err)
	}
	during := runtime.NumGoroutine()
	c.stop()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d running, %d after stop:\n%s", before, during, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
