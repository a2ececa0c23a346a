package fleet

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/ehc-agent/ehc-agent/agent/fleet/fleettest"
)

// testPrefix is the prefix every test uses; the broker's ACL confines terminals below it.
const testPrefix = "ehc/test"

const opsUser = fleettest.Operators

func startBroker(t testing.TB, persist bool) *fleettest.Broker {
	t.Helper()
	return fleettest.Start(t, fleettest.NewPKI(t), fleettest.Options{Prefix: testPrefix, Persist: persist})
}

// operator connects to b as cn (opsUser may do everything) until the test ends.
func operator(t testing.TB, b *fleettest.Broker, cn string, o OperatorOptions) *Operator {
	t.Helper()
	o.Broker, o.TLS, o.Prefix = b.URL(), b.PKI.TLS(t, cn), testPrefix
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	op, err := DialOperator(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op
}

// watch subscribes op to filter and passes every message to the returned channel.
func watch(t testing.TB, op *Operator, filter string) <-chan *paho.Publish {
	t.Helper()
	ch := make(chan *paho.Publish, 256)
	remove := op.addSink(sink{match: func(s string) bool { return topicMatches(filter, s) }, f: func(p *paho.Publish) {
		select {
		case ch <- p:
		default:
		}
	}})
	t.Cleanup(remove)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := op.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	return ch
}

// nextStatus waits for a status on ch that satisfies ok.
func nextStatus(t testing.TB, ch <-chan *paho.Publish, within time.Duration, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case p := <-ch:
			var st Status
			if err := json.Unmarshal(p.Payload, &st); err != nil {
				t.Fatalf("status is not JSON: %v: %s", err, p.Payload)
			}
			if ok(st) {
				return st
			}
		case <-deadline:
			t.Fatalf("no matching status within %s", within)
		}
	}
}
