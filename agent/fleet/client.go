package fleet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Defaults of the Options durations left zero.
const (
	DefaultKeepAlive      = 30 * time.Second
	DefaultSessionExpiry  = time.Hour
	DefaultReconnectMin   = time.Second
	DefaultReconnectMax   = 2 * time.Minute
	DefaultHeartbeat      = 5 * time.Minute
	DefaultMinInterval    = time.Second
	DefaultCommandTimeout = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// Bounds of the client's queues. Both are drained by the client's own goroutines; a
// full queue drops (and counts) rather than make the pipeline or paho's reader wait.
const (
	commandQueue = 16
	eventQueue   = 256
)

// publishTimeout bounds one publish: a broker that takes longer is treated as away.
const publishTimeout = 10 * time.Second

// Options configure a Client.
type Options struct {
	Broker     string      // mqtts://host[:8883], or mqtt:// on loopback; see ParseBroker
	TLS        *tls.Config // broker CA pinned, client certificate; required for mqtts
	Prefix     string      // topic prefix, see CheckPrefix
	TerminalID string      // this terminal; also the MQTT client id

	// CommandKey is the fleet's pinned public key. Nil: every command is answered
	// commands_disabled.
	CommandKey *sm2sig.PublicKey
	// Status returns the agent's part of the status (devices, trust, outbox, uplink).
	// It is called from the client's goroutine about once per MinInterval.
	Status func() Status
	// Handle runs a verified command and returns its result (marshalled to JSON) or an
	// error; a *Refusal error gives the reply's reason. It runs on the client's command
	// goroutine, one command at a time, and must return once ctx ends. Nil: every
	// verified command is answered unsupported.
	Handle func(ctx context.Context, c *Command) (any, error)
	// Events publishes a verdict summary for each event given to Event.
	Events bool
	Build  map[string]string // shown in every status; nil: the binary's build info

	KeepAlive      time.Duration // MQTT keep-alive
	SessionExpiry  time.Duration // how long the broker keeps the session (and queued commands) while away
	ReconnectMin   time.Duration // backoff base, see backoff
	ReconnectMax   time.Duration // backoff cap
	Heartbeat      time.Duration // the status is republished at least this often
	MinInterval    time.Duration // …and at most once per this
	CommandTimeout time.Duration // one command's time to run
	ConnectTimeout time.Duration // one connection attempt

	Now    func() time.Time // trusted time for command freshness; nil: time.Now
	Logger *slog.Logger
}

// Client is one terminal's connection to the fleet broker. Create with New, run with
// Run; Event may be called at any time, from any goroutine.
type Client struct {
	o      Options
	broker *url.URL
	topics Topics
	ver    *verifier
	bo     backoff
	// plainBackoff replaces bo.delay when set: for the load benchmark, which notes when
	// each attempt begins, and whose baseline is autopaho's default backoff.
	plainBackoff func(attempt int) time.Duration
	log          *slog.Logger

	up     chan struct{} // a connection came up: subscribe and publish now
	cmds   chan *paho.Publish
	events chan Verdict // nil when Options.Events is off

	started     atomic.Bool
	connected   atomic.Bool
	onlineSince atomic.Pointer[time.Time]
	downLogged  atomic.Bool // one warning per outage, not one per attempt

	commands, refused, eventsDropped atomic.Uint64
	statusesSent                     atomic.Uint64 // stamped and handed to the broker; for BenchmarkFleetLoad
}

// New checks o and builds a client; nothing connects until Run.
func New(o Options) (*Client, error) {
	u, err := ParseBroker(o.Broker)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if IsTLS(u) && o.TLS == nil {
		return nil, errors.New("broker: mqtts needs a TLS configuration (pinned CA, client certificate)")
	}
	if err := CheckPrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("prefix: %w", err)
	}
	if err := CheckID(o.TerminalID); err != nil {
		return nil, fmt.Errorf("terminal id: %w", err)
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&o.KeepAlive, DefaultKeepAlive}, {&o.SessionExpiry, DefaultSessionExpiry},
		{&o.ReconnectMin, DefaultReconnectMin}, {&o.ReconnectMax, DefaultReconnectMax},
		{&o.Heartbeat, DefaultHeartbeat}, {&o.MinInterval, DefaultMinInterval},
		{&o.CommandTimeout, DefaultCommandTimeout}, {&o.ConnectTimeout, DefaultConnectTimeout},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	o.ReconnectMax = max(o.ReconnectMax, o.ReconnectMin)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Build == nil {
		o.Build = buildInfo()
	}
	c := &Client{
		o: o, broker: u, topics: Topics{Prefix: o.Prefix, Terminal: o.TerminalID},
		ver: newVerifier(o.TerminalID, o.CommandKey, o.Now()),
		bo:  backoff{min: o.ReconnectMin, max: o.ReconnectMax},
		log: o.Logger.With("component", "fleet"),
		up:  make(chan struct{}, 1), cmds: make(chan *paho.Publish, commandQueue),
	}
	start := time.Now() // with its monotonic reading
	c.ver.uptime = func() time.Duration { return time.Since(start) }
	if o.Events {
		c.events = make(chan Verdict, eventQueue)
	}
	return c, nil
}

// Topics returns the client's topics.
func (c *Client) Topics() Topics { return c.topics }

// Connected reports whether the broker connection is up now.
func (c *Client) Connected() bool { return c.connected.Load() }

// Event queues a masked verdict summary of e for the events topic. It never blocks
// (it is a pipeline.Subscriber): when the queue is full or the broker is away the
// summary is dropped and counted. It does nothing when Options.Events is off.
func (c *Client) Event(e *event.Event) {
	if c.events == nil {
		return
	}
	select {
	case c.events <- VerdictOf(e):
	default:
		c.eventsDropped.Add(1)
	}
}

// Run connects and keeps the terminal present on the broker until ctx ends: status
// published at once on every connection, then on change (at most once per
// MinInterval) and every Heartbeat; commands verified, run and answered; verdicts
// published. Then it publishes a retained "offline, stopped" status, disconnects (so
// the broker discards the last will) and returns once every goroutine it started has
// ended. It returns an error only when it cannot start; a broker that is away is
// retried for as long as ctx lasts.
func (c *Client) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("fleet: Run called twice")
	}
	// The connection outlives ctx by the "stopped" status, so it has its own context.
	mctx, mcancel := context.WithCancel(context.Background())
	defer mcancel()
	cm, err := autopaho.NewConnection(mctx, c.clientConfig())
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.statusLoop(ctx, cm) }()
	go func() { defer wg.Done(); c.commandLoop(ctx, cm) }()
	if c.events != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.eventLoop(ctx, cm) }()
	}
	<-ctx.Done()
	wg.Wait()

	if c.connected.Load() {
		st := c.base(StateOffline)
		st.Reason, st.At = OfflineStopped, c.o.Now()
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := c.publishStatus(pctx, cm, st); err != nil {
			c.log.Warn("could not publish the stopped status; the broker's last will stands in", "reason", "fleet_publish_failed", "err", err.Error())
		}
		cancel()
	}
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := cm.Disconnect(dctx); err != nil {
		c.log.Warn("broker connection did not close in time", "reason", "fleet_stop_timeout")
	}
	return nil
}

func (c *Client) clientConfig() autopaho.ClientConfig {
	keepAlive := uint16(min(c.o.KeepAlive/time.Second, 65535))
	return autopaho.ClientConfig{
		ServerUrls: []*url.URL{c.broker},
		TlsCfg:     c.o.TLS,
		KeepAlive:  keepAlive,
		// A persistent session: subscriptions and QoS 1 commands survive a short outage
		// (the ones that come too late are answered "stale").
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(c.o.SessionExpiry / time.Second),
		ReconnectBackoff:              c.reconnectBackoff(),
		ConnectTimeout:                c.o.ConnectTimeout,
		// The will is built anew for each attempt, so that it says since when this
		// connection was up.
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			st := c.base(StateOffline)
			st.Reason, st.OnlineSince = OfflineConnectionLost, c.o.Now()
			b, err := json.Marshal(st)
			if err != nil {
				return nil, err
			}
			cp.WillMessage = &paho.WillMessage{Retain: true, QoS: 1, Topic: c.topics.Status(), Payload: b}
			// A terminal receives only commands, run one at a time: the broker need not
			// have more in flight than wait in the queue. paho also sizes a buffer by it,
			// 65,535 slots (512 KiB) by default, per connection (BenchmarkFleetLoad).
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			rm := uint16(commandQueue)
			cp.Properties.ReceiveMaximum = &rm
			cp.WillProperties = &paho.WillProperties{ContentType: "application/json"}
			return cp, nil
		},
		OnConnectionUp: func(*autopaho.ConnectionManager, *paho.Connack) {
			now := c.o.Now()
			c.onlineSince.Store(&now)
			c.bo.connected.Store(true)
			c.connected.Store(true)
			c.downLogged.Store(false)
			c.log.Info("connected to the fleet broker", "broker", c.broker.Host)
			select {
			case c.up <- struct{}{}:
			default:
			}
		},
		OnConnectionDown: func() bool {
			c.connected.Store(false)
			c.log.Warn("fleet broker connection lost; reconnecting with backoff", "reason", "fleet_disconnected", "broker", c.broker.Host)
			c.downLogged.Store(true)
			return true
		},
		OnConnectError: func(err error) {
			if c.downLogged.CompareAndSwap(false, true) {
				c.log.Warn("cannot connect to the fleet broker; retrying with backoff", "reason", "fleet_unreachable", "broker", c.broker.Host, "err", err.Error())
			} else {
				c.log.Debug("fleet broker connection attempt failed", "err", err.Error())
			}
		},
		Errors: slogPrinter{c.log},
		ClientConfig: paho.ClientConfig{
			ClientID: c.o.TerminalID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					if c.topics.verbOf(pr.Packet.Topic) == "" {
						return false, nil
					}
					select {
					case c.cmds <- pr.Packet:
					default:
						c.commands.Add(1)
						c.refused.Add(1)
						c.log.Warn("fleet command dropped: too many waiting", "reason", "fleet_busy", "topic", pr.Packet.Topic)
					}
					return true, nil
				},
			},
			OnClientError: func(err error) { c.log.Debug("fleet client error", "err", err.Error()) },
		},
	}
}

func (c *Client) reconnectBackoff() func(int) time.Duration {
	if c.plainBackoff != nil {
		return c.plainBackoff
	}
	return c.bo.delay
}

// base is a status with the client's own fields filled in.
func (c *Client) base(state string) Status {
	st := Status{TerminalID: c.o.TerminalID, State: state, Build: c.o.Build}
	if t := c.onlineSince.Load(); t != nil && state == StateOnline {
		st.OnlineSince = *t
	}
	return st
}

// snapshot is the full status now, but for its time (stamp).
func (c *Client) snapshot() Status {
	var st Status
	if c.o.Status != nil {
		st = c.o.Status()
	}
	b := c.base(StateOnline)
	st.TerminalID, st.State, st.Reason, st.OnlineSince, st.Build = b.TerminalID, b.State, "", b.OnlineSince, b.Build
	st.Fleet = &Counters{Commands: c.commands.Load(), Refused: c.refused.Load(), EventsDropped: c.eventsDropped.Load()}
	return st
}

// stamp sets the fields that say when st was made.
func (c *Client) stamp(st *Status) {
	st.At = c.o.Now()
	if st.Outbox != nil && !st.Outbox.Oldest.IsZero() {
		st.Outbox.OldestAgeSeconds = max(0, st.At.Sub(st.Outbox.Oldest).Seconds())
	}
}

func (c *Client) publishStatus(ctx context.Context, cm *autopaho.ConnectionManager, st Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = cm.Publish(ctx, &paho.Publish{QoS: 1, Retain: true, Topic: c.topics.Status(), Payload: b,
		Properties: &paho.PublishProperties{ContentType: "application/json"}})
	return err
}

// statusLoop owns the session's setup after each connection (subscription, first
// status) and the status's publication. Changes are found by looking once per
// MinInterval: the agent's state has many sources (devices, outbox, trust, uplink) and
// a look is cheap, while hooks in each would couple them to the fleet.
func (c *Client) statusLoop(ctx context.Context, cm *autopaho.ConnectionManager) {
	timer := time.NewTimer(c.o.MinInterval)
	defer timer.Stop()
	var p statusPublisher
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.up:
			p.force, p.needSub = true, true
		case <-timer.C:
		}
		wait := c.o.MinInterval
		if c.connected.Load() {
			wait = c.statusStep(ctx, cm, &p)
		}
		timer.Reset(wait)
	}
}

// statusPublisher is statusLoop's memory between steps.
type statusPublisher struct {
	last           string    // fingerprint of the last status published
	lastAt         time.Time // when it went out (monotonic)
	force, needSub bool
}

// statusStep subscribes if needed and publishes the status if it is due and the rate
// limit allows; it returns when to look again.
func (c *Client) statusStep(ctx context.Context, cm *autopaho.ConnectionManager, p *statusPublisher) time.Duration {
	if p.needSub {
		sctx, cancel := context.WithTimeout(ctx, publishTimeout)
		_, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: c.topics.Commands(), QoS: 1}}})
		cancel()
		if err != nil {
			c.log.Warn("cannot subscribe to fleet commands; retrying", "reason", "fleet_subscribe_failed", "err", err.Error())
		} else {
			p.needSub = false
		}
	}
	st := c.snapshot()
	fp := fingerprint(st)
	if !p.force && fp == p.last && time.Since(p.lastAt) < c.o.Heartbeat {
		return c.o.MinInterval
	}
	if !p.lastAt.IsZero() {
		if since := time.Since(p.lastAt); since < c.o.MinInterval {
			return c.o.MinInterval - since // due: as soon as the rate limit allows
		}
	}
	// Stamped before lastAt is taken, so that two statuses' own times are never closer
	// than MinInterval either.
	c.stamp(&st)
	c.statusesSent.Add(1)
	p.lastAt = time.Now()
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	err := c.publishStatus(pctx, cm, st)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.log.Debug("status not published", "err", err.Error())
		}
		return c.o.MinInterval
	}
	p.last, p.force = fp, false
	return c.o.MinInterval
}

// commandLoop runs commands one at a time, in the order they arrived.
func (c *Client) commandLoop(ctx context.Context, cm *autopaho.ConnectionManager) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-c.cmds:
			c.serve(ctx, cm, p)
		}
	}
}

func (c *Client) serve(ctx context.Context, cm *autopaho.ConnectionManager, p *paho.Publish) {
	c.commands.Add(1)
	verb := c.topics.verbOf(p.Topic)
	cmd, err := parse(p.Payload)
	if err != nil {
		c.refused.Add(1)
		// Without a readable request id there is no reply topic to answer on.
		c.log.Warn("fleet command refused", "reason", ReasonMalformed, "verb", verb, "err", err.Error())
		return
	}
	r := Reply{RequestID: cmd.RequestID, TerminalID: c.o.TerminalID, Verb: verb}
	if err := c.ver.check(cmd, verb, c.o.Now()); err != nil {
		c.refused.Add(1)
		r.Reason, r.Detail = reasonOf(err)
		c.log.Warn("fleet command refused", "reason", r.Reason, "verb", verb, "request_id", cmd.RequestID, "detail", r.Detail)
		c.reply(ctx, cm, r)
		return
	}
	c.log.Info("fleet command", "verb", verb, "request_id", cmd.RequestID)
	res, err := c.run(ctx, cmd)
	if err == nil && res != nil {
		r.Result, err = json.Marshal(res)
	}
	if err != nil {
		r.Reason, r.Detail = reasonOf(err)
		c.log.Warn("fleet command failed", "reason", r.Reason, "verb", verb, "request_id", cmd.RequestID, "detail", r.Detail)
	} else {
		r.OK = true
	}
	c.reply(ctx, cm, r)
}

// run calls the handler within CommandTimeout; a panic in it fails the command
// instead of the agent.
func (c *Client) run(ctx context.Context, cmd *Command) (res any, err error) {
	if c.o.Handle == nil {
		return nil, &Refusal{ReasonUnsupported, "this agent runs no fleet commands"}
	}
	hctx, cancel := context.WithTimeout(ctx, c.o.CommandTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("fleet command panicked", "reason", "fleet_command_panic", "verb", cmd.Verb, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, &Refusal{ReasonFailed, "internal error"}
		}
	}()
	res, err = c.o.Handle(hctx, cmd)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && hctx.Err() != nil {
		err = fmt.Errorf("%w (%s)", errTimeout, c.o.CommandTimeout)
	}
	return res, err
}

func (c *Client) reply(ctx context.Context, cm *autopaho.ConnectionManager, r Reply) {
	r.At = c.o.Now()
	b, err := json.Marshal(r)
	if err != nil {
		c.log.Error("fleet reply not encodable", "reason", "fleet_reply_failed", "err", err.Error())
		return
	}
	expiry := uint32(CommandWindow / time.Second * 5)
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	_, err = cm.Publish(pctx, &paho.Publish{QoS: 1, Topic: c.topics.Reply(r.RequestID), Payload: b,
		Properties: &paho.PublishProperties{ContentType: "application/json", CorrelationData: []byte(r.RequestID), MessageExpiry: &expiry}})
	if err != nil {
		c.log.Warn("fleet reply not published", "reason", "fleet_publish_failed", "request_id", r.RequestID, "err", err.Error())
	}
}

// eventLoop publishes verdict summaries at QoS 0: they are for dashboards, and one
// lost while the broker is away is not worth a queue.
func (c *Client) eventLoop(ctx context.Context, cm *autopaho.ConnectionManager) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-c.events:
			if !c.connected.Load() {
				c.eventsDropped.Add(1)
				continue
			}
			b, _ := json.Marshal(v)
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			_, err := cm.Publish(pctx, &paho.Publish{QoS: 0, Topic: c.topics.Events(), Payload: b})
			cancel()
			if err != nil {
				c.eventsDropped.Add(1)
			}
		}
	}
}

// slogPrinter gives autopaho's error log to slog, at debug: the client logs what
// matters itself, with reason codes.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any)               { p.l.Debug(fmt.Sprint(v...)) }
func (p slogPrinter) Printf(format string, v ...any) { p.l.Debug(fmt.Sprintf(format, v...)) }

func buildInfo() map[string]string {
	b := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b["go"] = bi.GoVersion
		b["module_version"] = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b["commit"] = s.Value
			}
		}
	}
	return b
}
