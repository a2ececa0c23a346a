package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/fleet"
	"github.com/ehc-agent/ehc-agent/agent/fleet/fleettest"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// TestFleetThroughTheDaemon runs the whole agent (sim scanner on a FIFO, verifier,
// journal, local API) with the fleet client against a real mosquitto: the status shows
// the device, each verb gets its answer, verdicts reach the events topic without
// identity — and with the broker stopped, identity events still reach the local API
// without delay.
func TestFleetThroughTheDaemon(t *testing.T) {
	const prefix = "ehc/test"
	b := fleettest.Start(t, fleettest.NewPKI(t), fleettest.Options{Prefix: prefix})
	dir := t.TempDir()
	vs, err := vscanner.New(vscanner.Config{Link: filepath.Join(dir, "counter")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close() })
	a := startSimAgent(t, dir, "debug", fmt.Sprintf(`  - name: counter-scanner
    driver: serial
    serial: {path: %s}
`, vs.Link()))
	d, keys, scanner, apiAddr, token := a.d, a.keys, a.scanner, a.apiAddr, a.token
	// Registered after the agent's own clean-up, so the fleet client stops first.
	fctx, stopFleet := context.WithCancel(context.Background())
	var fwg sync.WaitGroup
	t.Cleanup(func() {
		stopFleet()
		fwg.Wait()
	})

	fleetKey, _ := sm2sig.GenerateKey()
	cert, key := b.PKI.Client(t, "K-0001")
	fc := config.Fleet{Broker: b.URL(), Prefix: prefix, CAFile: b.PKI.CAFile(), ClientCert: cert, ClientKey: key,
		CommandKey: sm2sig.Public(fleetKey).Hex(), Events: true, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}
	if err := d.startFleet(fctx, &fwg, fc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	op, err := fleet.DialOperator(ctx, fleet.OperatorOptions{Broker: b.URL(), TLS: b.PKI.TLS(t, fleettest.Operators), Prefix: prefix, Key: fleetKey})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()

	// The status shows the scanner connected.
	var st fleet.Status
	for deadline := time.Now().Add(10 * time.Second); st.Devices["front-scanner"].State != device.StateConnected; {
		if time.Now().After(deadline) {
			t.Fatalf("no status with the scanner connected; last %+v", st)
		}
		all, err := op.Statuses(ctx, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == 1 {
			st = all[0]
		}
	}
	if b, err := json.Marshal(st); err == nil {
		t.Logf("retained status of a terminal with one device and no platform: %d bytes", len(b))
	}
	if st.State != fleet.StateOnline || st.Trust == nil || !st.Trust.HasKeySet || st.Outbox == nil || st.Build["go"] == "" {
		t.Fatalf("status %+v", st)
	}

	// Every verb answers.
	for _, tc := range []struct {
		verb   string
		args   any
		reason string // "" = ok
	}{
		{fleet.VerbDoctor, nil, ""},
		{fleet.VerbTrigger, map[string]string{"device": "front-scanner"}, "not_triggerable"},
		{fleet.VerbUntrigger, map[string]string{"device": "nowhere"}, "unknown_device"},
		{fleet.VerbTrigger, nil, fleet.ReasonBadArgs},
		{fleet.VerbLend, map[string]any{"device": "front-scanner", "seconds": 10}, "not_lendable"},
		{fleet.VerbLend, map[string]any{"device": "nowhere", "seconds": 10}, "unknown_device"},
		{fleet.VerbLend, map[string]any{"device": "front-scanner", "seconds": 601}, "bad_seconds"},
		{fleet.VerbLend, map[string]string{"device": "front-scanner"}, fleet.ReasonBadArgs},
		{fleet.VerbReclaim, map[string]string{"device": "front-scanner"}, "not_lendable"},
		{fleet.VerbReclaim, nil, fleet.ReasonBadArgs},
		{fleet.VerbLend, map[string]any{"device": "counter-scanner", "seconds": 30}, ""},
		{fleet.VerbLend, map[string]any{"device": "counter-scanner", "seconds": 30}, "already_lent"},
		{fleet.VerbReclaim, map[string]string{"device": "counter-scanner"}, ""},
		{fleet.VerbReclaim, map[string]string{"device": "counter-scanner"}, "not_lent"},
		{fleet.VerbResyncTrust, nil, "no_platform"},
		{fleet.VerbReload, nil, ""},
	} {
		r, err := op.Send(ctx, "K-0001", tc.verb, tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != (tc.reason == "") || r.Reason != tc.reason {
			t.Errorf("%s %v: %+v, want reason %q", tc.verb, tc.args, r, tc.reason)
		}
		if tc.verb == fleet.VerbLend && r.OK {
			var res struct{ Device, State string }
			if err := json.Unmarshal(r.Result, &res); err != nil || res.Device != "counter-scanner" || res.State != device.StateLent {
				t.Errorf("lend result %s", r.Result)
			}
			if st := d.DeviceStates()["counter-scanner"]; st.State != device.StateLent {
				t.Errorf("after the fleet's lend: %+v", st)
			}
		}
		if tc.verb == fleet.VerbDoctor && !strings.Contains(string(r.Result), `"check":"device front-scanner","status":"pass"`) {
			t.Errorf("doctor: %s", r.Result)
		}
	}

	// A scan: the kiosk sees the identity on the local API, the events topic a verdict
	// without it.
	verdicts := make(chan []byte, 16)
	stopWatch, err := op.Watch(ctx, fleet.Topics{Prefix: prefix, Terminal: "K-0001"}.Events(), func(_ string, p []byte) {
		select {
		case verdicts <- p:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch()
	var seq uint64
	scan := func(n uint32) time.Duration {
		t.Helper()
		code, err := keys.NewCode(issuer.CodeOptions{Sequence: n})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := scanner.WriteString(code + "\r\n"); err != nil {
			t.Fatal(err)
		}
		evs := longPoll(t, apiAddr, token, seq)
		took := time.Since(t0)
		if len(evs) != 1 || evs[0].Identity == nil || evs[0].Identity.EHCID != keys.EHCID {
			t.Fatalf("local API gave %+v", evs)
		}
		seq = evs[0].Seq
		return took
	}
	scan(1)
	select {
	case p := <-verdicts:
		if strings.Contains(string(p), keys.EHCID) || !strings.Contains(string(p), `"status":"valid"`) {
			t.Fatalf("verdict %s", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no verdict on the events topic")
	}

	var upWorst time.Duration
	for i := uint32(2); i < 7; i++ {
		upWorst = max(upWorst, scan(i))
	}

	// The broker goes away: identity events do not wait for it. (A fleet in the way
	// would cost seconds: each publish may wait 10 s.)
	b.Stop()
	var downWorst time.Duration
	for i := uint32(7); i < 17; i++ {
		downWorst = max(downWorst, scan(i))
	}
	t.Logf("scan to local API, worst: %s with the broker up, %s with it down", upWorst, downWorst)
	if downWorst > 2*time.Second {
		t.Errorf("an identity event took %s to reach the local API with the broker down", downWorst)
	}
}

// longPoll waits for the events after seq on the local API.
func longPoll(t *testing.T, addr, token string, after uint64) []struct {
	Seq      uint64 `json:"seq"`
	Identity *struct {
		EHCID string `json:"ehc_id"`
	} `json:"identity"`
} {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/events?after=%d&wait=5s", addr, after), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []struct {
		Seq      uint64 `json:"seq"`
		Identity *struct {
			EHCID string `json:"ehc_id"`
		} `json:"identity"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil {
		t.Fatalf("events: %d %v", resp.StatusCode, err)
	}
	return evs
}

// The fleet section as config.Load reads it.
func TestFleetConfig(t *testing.T) {
	dir := t.TempDir()
	key, _ := sm2sig.GenerateKey()
	load := func(fleetYAML string) (*config.Config, error) {
		p := filepath.Join(dir, "agent.yaml")
		os.WriteFile(p, []byte("state_dir: "+dir+"\ntrust: {dir: "+dir+"}\n"+fleetYAML), 0o600)
		return config.Load(p)
	}
	cfg, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	if f := &cfg.Fleet; f.Broker != "" || f.Prefix != "ehc" || f.Heartbeat != fleet.DefaultHeartbeat || f.KeepAlive != fleet.DefaultKeepAlive {
		t.Fatalf("defaults: %+v", f)
	}
	cfg, err = load(fmt.Sprintf("fleet: {broker: 'mqtts://mqtt.hospital.example', prefix: ehc/hz, ca_file: /ca.pem, client_cert: /c.pem, client_key: /c.key, command_key: %s, events: true}\n", sm2sig.Public(key).Hex()))
	if err != nil {
		t.Fatal(err)
	}
	if f := &cfg.Fleet; f.Prefix != "ehc/hz" || !f.Events {
		t.Fatalf("%+v", f)
	}
	for yaml, want := range map[string]string{
		"fleet: {broker: 'mqtt://10.1.2.3'}":              "fleet.broker: ",
		"fleet: {broker: 'mqtts://b'}":                    "fleet.ca_file: required",
		"fleet: {broker: 'mqtts://b', ca_file: /ca}":      "fleet.client_cert: required",
		"fleet: {prefix: 'ehc/+'}":                        "fleet.prefix: ",
		"fleet: {command_key: '04ABCD'}":                  "fleet.command_key: ",
		"fleet: {heartbeat: 1s}":                          "fleet.heartbeat: 1s is outside",
		"fleet: {reconnect_min: 30s, reconnect_max: 10s}": "fleet.reconnect_max: 10s is below",
		"fleet: {client_cert: /c.pem}":                    "fleet.client_cert: client_cert and client_key go together",
		"fleet: {brokers: 'mqtts://b'}":                   "fleet.brokers: unknown key",
	} {
		_, err := load(yaml + "\n")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", yaml, err, want)
		}
	}
}
