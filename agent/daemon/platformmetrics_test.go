//go:build linux

package daemon

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// TestPlatformMetrics runs the whole daemon against the platform emulator over
// loopback HTTP and reads /metrics (PLATFORM.md: auth_failed "in status and metrics",
// clock_offset "in status, logs and metrics"):
//   - the emulator does not know the terminal's key, so it refuses every signature:
//     ehc_agent_platform_auth_failed is 1; the offset measured from those answers'
//     Date is about 0 and not beyond the limit;
//   - the terminal is registered: the next trust sync is accepted and the gauge is 0;
//   - the emulator's clock jumps 10 minutes ahead: the offset gauge shows ~600 s and
//     ehc_agent_clock_offset_exceeded is 1, the agent signing with the platform's time;
//   - the clocks agree again: exceeded is 0 and the offset ~0.
func TestPlatformMetrics(t *testing.T) {
	dir := t.TempDir()
	if _, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "terminal.key")
	key, _, err := uplink.LoadOrCreateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	sim, err := platformsim.New(platformsim.Options{
		TrustDir: filepath.Join(dir, "keys"), Seed: 1,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	apiAddr := freeAddr(t)
	// trust_sync_interval 1s: a trust sync every 5 s (the uplink's shortest pause),
	// the requests this test watches; no device, so no events to deliver.
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`terminal_id: K-0001
state_dir: %s
log: {level: debug, format: text}
trust: {dir: %s}
api: {listen: %s, allowed_origins: []}
platform: {url: %s, terminal_key: %s, trust_sync_interval: 1s, clock_offset_limit: 120s}
`, filepath.Join(dir, "state"), filepath.Join(dir, "keys"), apiAddr, sim.URL(), keyPath)), 0o600)
	_, logs := runDaemon(t, cfgPath)

	var token string
	for deadline := time.Now().Add(10 * time.Second); token == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent not up:\n%s", logs.String())
		}
		if b, err := os.ReadFile(filepath.Join(dir, "state", "api.token")); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	// gauges reads the three platform gauges of one scrape; a gauge that is absent is NaN.
	gauges := func() (authFailed, offset, exceeded float64) {
		req, _ := http.NewRequest("GET", "http://"+apiAddr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return math.NaN(), math.NaN(), math.NaN()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		get := func(name string) float64 {
			m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
			if m == nil {
				return math.NaN()
			}
			v, err := strconv.ParseFloat(string(m[1]), 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v
		}
		return get("ehc_agent_platform_auth_failed"), get("ehc_agent_clock_offset_seconds"), get("ehc_agent_clock_offset_exceeded")
	}
	// waitGauges polls /metrics until ok holds for one scrape.
	waitGauges := func(what string, ok func(authFailed, offset, exceeded float64) bool) {
		t.Helper()
		var a, o, x float64
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if a, o, x = gauges(); ok(a, o, x) {
				return
			}
		}
		t.Fatalf("%s: never seen; last scrape auth_failed %v, clock_offset_seconds %v, clock_offset_exceeded %v", what, a, o, x)
	}
	near := func(v, want float64) bool { return math.Abs(v-want) <= 3 } // Date has whole seconds; a loaded machine

	waitGauges("auth_failed 1 while the platform does not know the terminal", func(a, o, x float64) bool {
		return a == 1 && near(o, 0) && x == 0
	})
	if n := sim.Stats().Unauthorized[platformsim.ReasonUnknownTerminal]; n == 0 {
		t.Fatal("the emulator refused nothing: auth_failed raised without a 401")
	}
	sim.AddTerminal("K-0001", sm2sig.Public(key))
	waitGauges("auth_failed 0 once the platform accepts the signature", func(a, o, x float64) bool {
		return a == 0 && near(o, 0) && x == 0
	})
	skew.Store(int64(10 * time.Minute))
	waitGauges("clock offset ~600 s, exceeded", func(a, o, x float64) bool { return near(o, 600) && x == 1 })
	// The next attempt is signed with the platform's time and accepted.
	waitGauges("auth_failed 0 with the platform's time in use", func(a, o, x float64) bool { return a == 0 && x == 1 })
	if n := sim.Stats().Unauthorized[platformsim.ReasonStaleTimestamp]; n == 0 {
		t.Fatal("no stale_timestamp refusal: the clock jump was not seen by a request")
	}
	skew.Store(0)
	waitGauges("clock offset back to ~0, not exceeded", func(a, o, x float64) bool { return a == 0 && near(o, 0) && x == 0 })
}
