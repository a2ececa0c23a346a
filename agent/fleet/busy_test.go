package fleet

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// A burst of commands while one runs: 16 wait, the rest are dropped (fleet_busy,
// no reply), and the connection stays up — the terminal announces a receive maximum
// of 16, which the broker must respect, and paho must not take the burst for a
// protocol error.
func TestCommandBurstWhileBusy(t *testing.T) {
	b := startBroker(t, false)
	key, _ := sm2sig.GenerateKey()
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	c := runClient(t, b, "K-0001", func(o *Options) {
		o.CommandKey, o.CommandTimeout = sm2sig.Public(key), 20*time.Second
		o.Handle = func(ctx context.Context, cmd *Command) (any, error) {
			if strings.Contains(string(cmd.Args), "block") {
				entered <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return "done", nil
		}
	})
	op := operator(t, b, opsUser, OperatorOptions{Key: key})
	waitAnswering(t, op, "K-0001")
	since := *c.onlineSince.Load()
	replies := watch(t, op, Topics{testPrefix, "K-0001"}.Reply("+"))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	publish := func(args any) {
		cmd, err := NewCommand("K-0001", VerbDoctor, args, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Sign(key); err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(cmd)
		if _, err := op.cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: Topics{testPrefix, "K-0001"}.Command(VerbDoctor), Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	publish(map[string]string{"mode": "block"})
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocking command never ran")
	}
	refusedBefore := c.refused.Load()
	const burst = 40
	for i := range burst {
		publish(map[string]int{"n": i})
	}
	// Every one of the burst reaches the terminal: queued or dropped.
	for deadline := time.Now().Add(10 * time.Second); c.refused.Load()-refusedBefore < burst-commandQueue; {
		if time.Now().After(deadline) {
			t.Fatalf("%d dropped, want %d: the burst did not all arrive", c.refused.Load()-refusedBefore, burst-commandQueue)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	got := 0
	for timeout := time.After(10 * time.Second); got < 1+commandQueue; got++ {
		select {
		case <-replies:
		case <-timeout:
			t.Fatalf("%d replies, want %d (the running command and the %d queued)", got, 1+commandQueue, commandQueue)
		}
	}
	select {
	case p := <-replies:
		t.Fatalf("a reply for a dropped command: %s", p.Payload)
	case <-time.After(500 * time.Millisecond):
	}
	if n := c.refused.Load() - refusedBefore; n != burst-commandQueue {
		t.Errorf("%d dropped, want %d", n, burst-commandQueue)
	}
	if !c.Connected() || !c.onlineSince.Load().Equal(since) {
		t.Fatalf("the burst cost the connection (online since %v, was %v)", c.onlineSince.Load(), since)
	}
	if !strings.Contains(c.logs.String(), "fleet_busy") {
		t.Error("no fleet_busy in the log")
	}
}
