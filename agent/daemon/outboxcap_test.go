package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
)

// TestOutboxCapFromConfig runs a whole daemon with outbox.max_pending at its lowest,
// 1000, and no platform, so nothing is ever delivered, and scans 1005 codes: /v1/status
// says outbox_full with all 1005 events kept (nothing dropped at the cap), and exactly
// the five events over the cap are logged with reason outbox_full. With the built-in
// cap of 100,000 neither would happen. A reload that changes the cap says it needs a
// restart, and the running cap stays.
func TestOutboxCapFromConfig(t *testing.T) {
	const limit, scans = 1000, 1005
	dir := t.TempDir()
	if _, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	var codes strings.Builder
	for i := range scans {
		fmt.Fprintf(&codes, "OUTBOX-CAP-%04d\n", i) // distinct: no double reads
	}
	codesPath := filepath.Join(dir, "codes.txt")
	if err := os.WriteFile(codesPath, []byte(codes.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	apiAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "agent.yaml")
	writeCfg := func(maxPending int) {
		t.Helper()
		err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`terminal_id: K-0001
state_dir: %s
log: {level: info, format: text}
trust: {dir: %s}
api: {listen: %s, allowed_origins: []}
outbox: {max_pending: %d, retention: 1h}
devices:
  - name: front-scanner
    driver: sim
    sim: {file: %s, interval: 1ms}
`, filepath.Join(dir, "state"), filepath.Join(dir, "keys"), apiAddr, maxPending, codesPath)), 0o600)
		if err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(limit)
	d, logs := runDaemon(t, cfgPath)

	status := func() (outbox.Stats, error) {
		tok, err := os.ReadFile(filepath.Join(dir, "state", "api.token"))
		if err != nil {
			return outbox.Stats{}, err
		}
		req, _ := http.NewRequest("GET", "http://"+apiAddr+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return outbox.Stats{}, err
		}
		defer resp.Body.Close()
		var st struct{ Outbox outbox.Stats }
		if resp.StatusCode != http.StatusOK {
			return outbox.Stats{}, fmt.Errorf("/v1/status: %s", resp.Status)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		return st.Outbox, err
	}
	var st outbox.Stats
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err = status()
		if err == nil && st.LastSeq >= scans {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: outbox %+v, err %v; want %d events", st, err, scans)
		}
	}
	if st.LastSeq != scans || st.Pending != scans || !st.Full {
		t.Fatalf("/v1/status outbox %+v, want %d pending (none dropped) and outbox_full over a cap of %d", st, scans, limit)
	}
	// The warning is logged when the kiosk has been told of the event: wait for all.
	var over int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		over = strings.Count(logs.String(), "reason=outbox_full")
		if over >= scans-limit || time.Now().After(deadline) {
			break
		}
	}
	if over != scans-limit {
		t.Fatalf("%d events logged with reason outbox_full, want the %d over the cap of %d", over, scans-limit, limit)
	}

	// outbox.max_pending is taken when the outbox is opened: a reload says so.
	writeCfg(2 * limit)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.fleetReload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !strings.Contains(logs.String(), `msg="configuration change needs a restart to take effect" key=outbox`) {
		t.Fatalf("no restart notice for the outbox key in:\n%s", logs.String())
	}
	if st, err = status(); err != nil || !st.Full {
		t.Fatalf("after the reload: outbox %+v, err %v; want the running cap kept (full)", st, err)
	}
}
