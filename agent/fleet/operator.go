package fleet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/emmansun/gmsm/sm2"
)

// OperatorOptions configure an Operator: the other end of the fleet, for tools, tests
// and IT's own scripts.
type OperatorOptions struct {
	Broker   string      // as for Options.Broker
	TLS      *tls.Config // the operator's client certificate, broker CA pinned
	Prefix   string
	Key      *sm2.PrivateKey // the fleet key that signs commands; nil: Send refuses
	ClientID string          // "": a random one, so that tools never take each other's session
	Now      func() time.Time
}

// Operator reads statuses and sends signed commands. Its methods are safe for
// concurrent use.
type Operator struct {
	o  OperatorOptions
	cm *autopaho.ConnectionManager

	mu    sync.Mutex
	sinks map[int]sink
	next  int
	cerr  error // the last connection error, for a useful message when Dial gives up
}

type sink struct {
	match func(topic string) bool
	f     func(*paho.Publish) // must not block: it runs on paho's goroutine
}

// DialOperator connects and returns once the broker accepted the connection, or with
// an error when ctx ends first.
func DialOperator(ctx context.Context, o OperatorOptions) (*Operator, error) {
	u, err := ParseBroker(o.Broker)
	if err != nil {
		return nil, err
	}
	if err := CheckPrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("prefix: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.ClientID = "ehc-fleet-op-" + hex.EncodeToString(b[:])
	}
	op := &Operator{o: o, sinks: map[int]sink{}}
	cfg := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, TlsCfg: o.TLS, KeepAlive: 30,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              autopaho.NewConstantBackoff(500 * time.Millisecond),
		ConnectTimeout:                5 * time.Second,
		OnConnectError: func(err error) {
			op.mu.Lock()
			op.cerr = err
			op.mu.Unlock()
		},
		ClientConfig: paho.ClientConfig{
			ClientID: o.ClientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				op.mu.Lock()
				var fs []func(*paho.Publish)
				for _, s := range op.sinks {
					if s.match(pr.Packet.Topic) {
						fs = append(fs, s.f)
					}
				}
				op.mu.Unlock()
				for _, f := range fs {
					f(pr.Packet)
				}
				return len(fs) > 0, nil
			}},
		},
	}
	// The connection lives until Close, not until the dial's ctx ends.
	cm, err := autopaho.NewConnection(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	op.cm = cm
	if err := cm.AwaitConnection(ctx); err != nil {
		dctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = cm.Disconnect(dctx)
		cancel()
		op.mu.Lock()
		defer op.mu.Unlock()
		if op.cerr != nil {
			return nil, fmt.Errorf("no connection to %s: %w", u.Host, op.cerr)
		}
		return nil, fmt.Errorf("no connection to %s: %w", u.Host, err)
	}
	return op, nil
}

// Close disconnects.
func (op *Operator) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return op.cm.Disconnect(ctx)
}

func (op *Operator) addSink(s sink) (remove func()) {
	op.mu.Lock()
	id := op.next
	op.next++
	op.sinks[id] = s
	op.mu.Unlock()
	return func() {
		op.mu.Lock()
		delete(op.sinks, id)
		op.mu.Unlock()
	}
}

// Send signs a command for terminal and waits for its reply (until ctx ends). args
// is marshalled to JSON; nil sends none.
func (op *Operator) Send(ctx context.Context, terminal, verb string, args any) (*Reply, error) {
	if op.o.Key == nil {
		return nil, errors.New("no fleet key to sign with")
	}
	c, err := NewCommand(terminal, verb, args, op.o.Now())
	if err != nil {
		return nil, err
	}
	if err := c.Sign(op.o.Key); err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return op.Exchange(ctx, terminal, verb, c.RequestID, b)
}

// Exchange publishes payload as is on terminal's cmd/<verb> topic and waits for the
// reply on reply/<requestID>: for commands built or altered by hand (tests, probing a
// deployment's ACLs).
func (op *Operator) Exchange(ctx context.Context, terminal, verb, requestID string, payload []byte) (*Reply, error) {
	if err := CheckID(terminal); err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	if err := CheckID(requestID); err != nil {
		return nil, fmt.Errorf("request id: %w", err)
	}
	if verb == "" || strings.ContainsAny(verb, "/+#") {
		return nil, fmt.Errorf("verb %q is not one topic level", verb)
	}
	t := Topics{Prefix: op.o.Prefix, Terminal: terminal}
	replyTopic := t.Reply(requestID)
	got := make(chan *paho.Publish, 1)
	defer op.addSink(sink{
		match: func(topic string) bool { return topic == replyTopic },
		f: func(p *paho.Publish) {
			select {
			case got <- p:
			default:
			}
		},
	})()
	// Subscribed before the command goes out, so that a fast reply is not missed.
	if _, err := op.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: replyTopic, QoS: 1}}}); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", replyTopic, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = op.cm.Unsubscribe(uctx, &paho.Unsubscribe{Topics: []string{replyTopic}})
		cancel()
	}()
	if _, err := op.cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: t.Command(verb), Payload: payload}); err != nil {
		return nil, fmt.Errorf("publish %s: %w", t.Command(verb), err)
	}
	select {
	case p := <-got:
		var r Reply
		if err := json.Unmarshal(p.Payload, &r); err != nil {
			return nil, fmt.Errorf("reply on %s is not JSON: %w", replyTopic, err)
		}
		return &r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no reply on %s: %w", replyTopic, ctx.Err())
	}
}

// statusQoS is the QoS of the operator's subscriptions to statuses (and of Watch). 0,
// because a broker bounds what it holds for one client at QoS 1 — mosquitto's
// max_queued_messages, 100 in docs/FLEET.md, EMQX's max_mqueue_len — and drops the
// rest: subscribed at QoS 1, Statuses listed 120 of BenchmarkFleetLoad's thousand
// terminals (mosquitto's 20 in flight and 100 queued; "Outgoing messages are being
// dropped"). At QoS 0 mosquitto hands them to the socket as fast as it takes them. A status is the latest word, not a message to
// deliver: one lost with a broken connection is replaced by the next read.
const statusQoS = 0

// Statuses reads the retained status of every terminal under the prefix. The broker
// sends retained messages right after the subscription; the list is complete once
// none has come for quiet (or when ctx ends), and is sorted by terminal id. A
// message that is not a status is skipped.
func (op *Operator) Statuses(ctx context.Context, quiet time.Duration) ([]Status, error) {
	filter := AllStatuses(op.o.Prefix)
	head := op.o.Prefix + "/"
	var (
		mu  sync.Mutex
		all = map[string]Status{}
	)
	got := make(chan struct{}, 1)
	defer op.addSink(sink{
		match: func(topic string) bool {
			rest, ok := strings.CutPrefix(topic, head)
			return ok && strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, "/status")
		},
		f: func(p *paho.Publish) {
			var st Status
			if json.Unmarshal(p.Payload, &st) != nil || st.TerminalID == "" {
				return
			}
			mu.Lock()
			all[strings.TrimSuffix(strings.TrimPrefix(p.Topic, head), "/status")] = st
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		},
	})()
	if _, err := op.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: statusQoS}}}); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", filter, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = op.cm.Unsubscribe(uctx, &paho.Unsubscribe{Topics: []string{filter}})
		cancel()
	}()
	timer := time.NewTimer(quiet)
	defer timer.Stop()
wait:
	for {
		select {
		case <-got:
			timer.Reset(quiet)
		case <-timer.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]Status, 0, len(all))
	for _, st := range all {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TerminalID < out[j].TerminalID })
	return out, nil
}

// Watch subscribes to filter (MQTT wildcards allowed) at QoS 0 (see statusQoS) and
// calls f for every message until the returned stop is called. f runs on the connection's goroutine and must
// not block.
func (op *Operator) Watch(ctx context.Context, filter string, f func(topic string, payload []byte)) (stop func(), err error) {
	remove := op.addSink(sink{match: func(topic string) bool { return topicMatches(filter, topic) }, f: func(p *paho.Publish) { f(p.Topic, p.Payload) }})
	if _, err := op.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: statusQoS}}}); err != nil {
		remove()
		return nil, fmt.Errorf("subscribe %s: %w", filter, err)
	}
	return func() {
		remove()
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = op.cm.Unsubscribe(uctx, &paho.Unsubscribe{Topics: []string{filter}})
		cancel()
	}, nil
}

// topicMatches reports whether topic matches the MQTT filter.
func topicMatches(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		switch {
		case level == "#":
			return true
		case i >= len(t):
			return false
		case level != "+" && level != t[i]:
			return false
		}
	}
	return len(f) == len(t)
}
