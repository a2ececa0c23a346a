package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// Statuses lists every retained status, however many more there are than the broker
// queues for one client at QoS 1 (fleettest runs mosquitto with max_queued_messages
// 100, as docs/FLEET.md recommends): a QoS 1 subscription listed 120 of 1,000.
func TestStatusesListsBeyondTheBrokerQueue(t *testing.T) {
	b := startBroker(t, false)
	ops := operator(t, b, opsUser, OperatorOptions{})
	const n = 400
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		id := fmt.Sprintf("K-%04d", i)
		p, _ := json.Marshal(Status{TerminalID: id, State: StateOnline, At: time.Now()})
		if _, err := ops.cm.Publish(ctx, &paho.Publish{QoS: 1, Retain: true, Topic: Topics{testPrefix, id}.Status(), Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := operator(t, b, opsUser, OperatorOptions{}).Statuses(ctx, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n || all[0].TerminalID != "K-0000" || all[n-1].TerminalID != fmt.Sprintf("K-%04d", n-1) {
		t.Fatalf("listed %d of %d statuses", len(all), n)
	}
}
