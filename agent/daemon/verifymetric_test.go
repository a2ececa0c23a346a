//go:build linux

package daemon

import (
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// The local API's server takes the pipeline's verification times.
var _ pipeline.VerifyObserver = (*api.Server)(nil)

// TestVerifyTimesReachMetrics scans two valid codes through the whole daemon and reads
// /metrics: ehc_agent_verify_seconds counts one observation per offline verification.
func TestVerifyTimesReachMetrics(t *testing.T) {
	a := startSimAgent(t, t.TempDir(), "info", "")
	keys, scanner, apiAddr, token := a.keys, a.scanner, a.apiAddr, a.token
	// The API may still be binding: wait for /metrics to answer.
	metrics := func() string {
		req, _ := http.NewRequest("GET", "http://"+apiAddr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	count := regexp.MustCompile(`(?m)^ehc_agent_verify_seconds_count (\d+)$`)
	for i := range 2 {
		code, err := keys.NewCode(issuer.CodeOptions{Sequence: uint32(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := scanner.WriteString(code + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m := count.FindStringSubmatch(metrics())
		if m != nil && m[1] == "2" {
			return
		}
		if m != nil {
			last = m[1]
		}
	}
	t.Fatalf("ehc_agent_verify_seconds_count is %q after two scans, want 2", last)
}
