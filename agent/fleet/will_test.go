package fleet

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
)

// TestHelperTerminal is not a test: TestLastWillOnKill runs the test binary with
// FLEET_HELPER set, to have a terminal in a process of its own that it can kill.
func TestHelperTerminal(t *testing.T) {
	if os.Getenv("FLEET_HELPER") != "1" {
		t.Skip("helper process for TestLastWillOnKill")
	}
	tlsCfg, err := uplink.LoadTLS(os.Getenv("FLEET_CA"), os.Getenv("FLEET_CERT"), os.Getenv("FLEET_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Broker: os.Getenv("FLEET_BROKER"), TLS: tlsCfg, Prefix: testPrefix, TerminalID: "K-0001"})
	if err != nil {
		t.Fatal(err)
	}
	// Killed long before this; the bound only keeps an orphan from living on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.Run(ctx)
}

// The agent killed (no DISCONNECT, no "stopped" status): the broker publishes the last
// will, and the retained status says offline, connection_lost.
func TestLastWillOnKill(t *testing.T) {
	b := startBroker(t, false)
	cert, key := b.PKI.Client(t, "K-0001")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTerminal$")
	cmd.Env = append(os.Environ(), "FLEET_HELPER=1", "FLEET_BROKER="+b.URL(),
		"FLEET_CA="+b.PKI.CAFile(), "FLEET_CERT="+cert, "FLEET_KEY="+key)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })

	op := operator(t, b, opsUser, OperatorOptions{})
	ch := watch(t, op, Topics{testPrefix, "K-0001"}.Status())
	up := nextStatus(t, ch, 10*time.Second, online)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-waited
	st := nextStatus(t, ch, 5*time.Second, func(s Status) bool { return s.State == StateOffline })
	if st.Reason != OfflineConnectionLost || st.TerminalID != "K-0001" || st.OnlineSince.Before(up.OnlineSince.Add(-time.Second)) {
		t.Fatalf("last will %+v after %+v", st, up)
	}
	// And it is what a newcomer reads.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := operator(t, b, opsUser, OperatorOptions{}).Statuses(ctx, 300*time.Millisecond)
	if err != nil || len(all) != 1 || all[0].State != StateOffline {
		t.Fatalf("retained after the kill: %+v %v", all, err)
	}
}
