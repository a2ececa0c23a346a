package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/agent/fleet"
	"github.com/ehc-agent/ehc-agent/agent/fleet/fleettest"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

const fleetPrefix = "ehc/test"

// fleetSite is a broker with terminals K-0001 and K-0002 online (K-0002 with a device
// down and stale trust), K-0003 offline (stopped), the fleet key, and the operator's
// flags.
type fleetSite struct {
	b       *fleettest.Broker
	keyFile string
	flags   []string // broker, prefix, CA, operator certificate
	mu      sync.Mutex
	ran     []string
}

func startFleetSite(t *testing.T) *fleetSite {
	t.Helper()
	s := &fleetSite{b: fleettest.Start(t, fleettest.NewPKI(t), fleettest.Options{Prefix: fleetPrefix})}
	key, err := sm2sig.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := sm2sig.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	s.keyFile = filepath.Join(t.TempDir(), "fleet.key")
	os.WriteFile(s.keyFile, pemKey, 0o600)
	cert, ckey := s.b.PKI.Client(t, fleettest.Operators)
	s.flags = []string{"--broker", s.b.URL(), "--prefix", fleetPrefix, "--ca-file", s.b.PKI.CAFile(), "--client-cert", cert, "--client-key", ckey}

	run := func(id string, st fleet.Status) (stop func()) {
		c, err := fleet.New(fleet.Options{Broker: s.b.URL(), TLS: s.b.PKI.TLS(t, id), Prefix: fleetPrefix, TerminalID: id,
			CommandKey: sm2sig.Public(key), Status: func() fleet.Status { return st },
			Handle: func(_ context.Context, c *fleet.Command) (any, error) {
				s.mu.Lock()
				s.ran = append(s.ran, c.TerminalID+" "+c.Verb+" "+string(c.Args))
				s.mu.Unlock()
				if c.Verb == fleet.VerbTrigger {
					var a struct{ Device string }
					if json.Unmarshal(c.Args, &a) != nil || a.Device != "front-scanner" {
						return nil, fleet.Refuse("unknown_device", "no running device %q", a.Device)
					}
					return map[string]string{"device": a.Device}, nil
				}
				return map[string]int{"devices": 1}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		var once sync.Once
		stop = func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(stop)
		return stop
	}
	now := time.Now()
	up := map[string]device.State{"front-scanner": {Device: "front-scanner", State: device.StateConnected, At: now}}
	run("K-0001", fleet.Status{Devices: up, Trust: &trust.Versions{KeySet: 7, HasKeySet: true}, Outbox: &fleet.Outbox{}})
	run("K-0002", fleet.Status{
		Devices: map[string]device.State{
			"front-scanner": {Device: "front-scanner", State: device.StateConnected, At: now},
			"id-reader":     {Device: "id-reader", State: device.StateDisconnected, Reason: "not_found", At: now},
		},
		Trust:  &trust.Versions{KeySet: 6, HasKeySet: true, Stale: true, NextUpdate: now.Add(-3 * time.Hour)},
		Outbox: &fleet.Outbox{Depth: 3, Oldest: now.Add(-5 * time.Minute)},
	})
	stop3 := run("K-0003", fleet.Status{Devices: up})
	// K-0003 goes away cleanly once it is seen online; the others answer commands.
	s.waitStatuses(t, func(all []fleet.Status) bool { return count(all, fleet.StateOnline) == 3 })
	stop3()
	s.waitStatuses(t, func(all []fleet.Status) bool { return count(all, fleet.StateOnline) == 2 && len(all) == 3 })
	return s
}

func count(all []fleet.Status, state string) int {
	n := 0
	for _, s := range all {
		if s.State == state {
			n++
		}
	}
	return n
}

func (s *fleetSite) waitStatuses(t *testing.T, ok func([]fleet.Status) bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := runFleet(t, newFleetStatusCmd(), append(s.flags, "--json", "--quiet", "200ms")...)
		var all []fleet.Status
		if err == nil && json.Unmarshal([]byte(out), &all) == nil && ok(all) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet status never as wanted; last: %v\n%s", err, out)
		}
	}
}

// runFleet runs a fleet subcommand in-process, as rootCmd would.
func runFleet(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return out.String() + errOut.String(), err
}

// `fleet status` lists every terminal as a table (state, devices, trust, outbox, last
// seen) or as JSON, and narrows to an id or a pattern.
func TestFleetStatusCommand(t *testing.T) {
	s := startFleetSite(t)
	out, err := runFleet(t, newFleetStatusCmd(), s.flags...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("fleet status:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", out)
	}
	for i, want := range [][]string{
		{"TERMINAL", "STATE", "DEVICES", "TRUST", "OUTBOX", "LAST SEEN"},
		{"K-0001", "online", "1/1 connected", "v7", " 0 ", "s ago"},
		{"K-0002", "online", "1/2 connected; id-reader disconnected (not_found)", "v6 STALE 3h", "3 oldest 5m", "s ago"},
		{"K-0003", "offline (stopped)", "-", "s ago"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("row %d lacks %q:\n%s", i, w, out)
			}
		}
	}

	out, err = runFleet(t, newFleetStatusCmd(), append(s.flags, "--json", "--terminal", "K-000[12]")...)
	var all []fleet.Status
	if err != nil || json.Unmarshal([]byte(out), &all) != nil || len(all) != 2 || all[0].TerminalID != "K-0001" || all[1].TerminalID != "K-0002" {
		t.Fatalf("--json --terminal 'K-000[12]': %v\n%s", err, out)
	}
	if all[1].Outbox.Depth != 3 || !all[1].Trust.Stale {
		t.Fatalf("JSON lost the status: %+v", all[1])
	}
	out, err = runFleet(t, newFleetStatusCmd(), append(s.flags, "--json", "--terminal", "K-0009")...)
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("no such terminal: %v %q", err, out)
	}
	if _, err := runFleet(t, newFleetStatusCmd(), append(s.flags, "--terminal", "K/1")...); exitCode(err) != 2 {
		t.Fatalf("a terminal id with / : %v, want exit 2", err)
	}
}

// `fleet send` signs and sends a command to one terminal or to every online terminal a
// pattern matches, prints the replies, and says in its exit status how it went.
func TestFleetSendCommand(t *testing.T) {
	s := startFleetSite(t)
	send := func(args ...string) (string, error) {
		return runFleet(t, newFleetSendCmd(), append(append(append([]string{}, s.flags...), "--key", s.keyFile, "--timeout", "5s"), args...)...)
	}
	out, err := send("--terminal", "K-0001", "trigger", "device=front-scanner")
	if err != nil || !strings.Contains(out, "K-0001  ok") || !strings.Contains(out, `"device": "front-scanner"`) {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	out, err = send("--terminal", "K-0001", "--json", "--args", `{"device":"back"}`, "trigger")
	var r sendResult
	if exitCode(err) != 1 || json.Unmarshal([]byte(out), &r) != nil || r.Reply == nil || r.Reply.OK || r.Reply.Reason != "unknown_device" {
		t.Fatalf("refused trigger: exit %d\n%s", exitCode(err), out)
	}

	// A pattern: the two online terminals run it, the stopped one is skipped.
	out, err = send("--terminal", "K-*", "--json", "reload")
	if exitCode(err) != 1 {
		t.Fatalf("pattern with an offline terminal: exit %d, want 1\n%s", exitCode(err), out)
	}
	got := map[string]sendResult{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r sendResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got[r.TerminalID] = r
	}
	if len(got) != 3 || got["K-0003"].Skipped != "offline" || got["K-0001"].Reply == nil || !got["K-0001"].Reply.OK ||
		got["K-0002"].Reply == nil || !got["K-0002"].Reply.OK {
		t.Fatalf("pattern send:\n%s", out)
	}
	if out, err := send("--terminal", "K-000[12]", "reload"); err != nil || strings.Count(out, "  ok") != 2 {
		t.Fatalf("online ones only: %v\n%s", err, out)
	}
	if _, err := send("--terminal", "X-*", "reload"); exitCode(err) != 2 {
		t.Fatalf("pattern matching nothing: %v, want exit 2", err)
	}
	// A terminal that is not there: no reply, exit 2.
	out, err = runFleet(t, newFleetSendCmd(), append(append([]string{}, s.flags...), "--key", s.keyFile, "--timeout", "1500ms", "--terminal", "K-0009", "doctor")...)
	if exitCode(err) != 2 || !strings.Contains(out, "no reply") {
		t.Fatalf("absent terminal: exit %d\n%s", exitCode(err), out)
	}

	s.mu.Lock()
	ran := strings.Join(s.ran, "|")
	s.mu.Unlock()
	for _, want := range []string{`K-0001 trigger {"device":"front-scanner"}`, `K-0001 trigger {"device":"back"}`, "K-0001 reload", "K-0002 reload"} {
		if !strings.Contains(ran, want) {
			t.Errorf("terminals ran %q, missing %q", ran, want)
		}
	}
	if strings.Contains(ran, "K-0003") {
		t.Errorf("the stopped terminal ran something: %q", ran)
	}
}

// --config supplies the connection from the agent configuration's fleet section, and
// a --key that is not fleet.command_key's pair is refused before anything is sent.
func TestFleetCommandsConfig(t *testing.T) {
	s := startFleetSite(t)
	dir := t.TempDir()
	cert, key := s.b.PKI.Client(t, fleettest.Operators)
	priv, err := sm2sig.ParsePrivateKey(must(os.ReadFile(s.keyFile)))
	if err != nil {
		t.Fatal(err)
	}
	writeCfg := func(commandKey string) string {
		p := filepath.Join(dir, "agent.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`terminal_id: ops-desk
state_dir: %s
trust: {dir: %s}
fleet:
  broker: %s
  prefix: %s
  ca_file: %s
  client_cert: %s
  client_key: %s
  command_key: %s
`, dir, dir, s.b.URL(), fleetPrefix, s.b.PKI.CAFile(), cert, key, commandKey)), 0o600)
		return p
	}
	cfg := writeCfg(sm2sig.Public(priv).Hex())
	out, err := runFleet(t, newFleetStatusCmd(), "--config", cfg)
	if err != nil || !strings.Contains(out, "K-0002") {
		t.Fatalf("status from --config: %v\n%s", err, out)
	}
	// A flag wins over the file: another prefix has no terminals.
	out, err = runFleet(t, newFleetStatusCmd(), "--config", cfg, "--prefix", "ehc/elsewhere", "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("--prefix over --config: %v\n%s", err, out)
	}
	out, err = runFleet(t, newFleetSendCmd(), "--config", cfg, "--key", s.keyFile, "--terminal", "K-0002", "doctor")
	if err != nil || !strings.Contains(out, "K-0002  ok") {
		t.Fatalf("send from --config: %v\n%s", err, out)
	}
	other, _ := sm2sig.GenerateKey()
	out, err = runFleet(t, newFleetSendCmd(), "--config", writeCfg(sm2sig.Public(other).Hex()), "--key", s.keyFile, "--terminal", "K-0002", "doctor")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "not the private key of fleet.command_key") {
		t.Fatalf("mismatched key: %v\n%s", err, out)
	}
	if _, err := runFleet(t, newFleetStatusCmd(), "--config", filepath.Join(dir, "missing.yaml")); exitCode(err) != 2 {
		t.Fatalf("missing config: %v, want exit 2", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// The binary: `ehc-agent fleet send` exits 1 on a refusal and 2 without a broker.
func TestFleetCommandsExitStatus(t *testing.T) {
	s := startFleetSite(t)
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := runAgent(t, &out, &out, args...)
		return code, out.String()
	}
	base := append([]string{"fleet", "send", "--key", s.keyFile, "--timeout", "5s"}, s.flags...)
	if code, out := run(append(base, "--terminal", "K-0001", "trigger", "device=nowhere")...); code != 1 || !strings.Contains(out, "refused: unknown_device") {
		t.Fatalf("refusal: exit %d\n%s", code, out)
	}
	if code, out := run(append([]string{"fleet", "status"}, s.flags...)...); code != 0 || !strings.Contains(out, "K-0003") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if code, out := run("fleet", "status", "--broker", "mqtt://127.0.0.1:1", "--timeout", "1s"); code != 2 || !strings.Contains(out, "broker") {
		t.Fatalf("no broker: exit %d\n%s", code, out)
	}
	// One way to do each thing: the fleet tools left sim.
	if _, out := run("sim", "--help"); strings.Contains(out, "fleet") {
		t.Fatalf("sim still lists fleet tools:\n%s", out)
	}
}
