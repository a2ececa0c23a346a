//go:build linux

package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// The local API's server takes the pipeline's verification and commit times.
var _ pipeline.TimingObserver = (*api.Server)(nil)

// TestTimingsReachMetrics scans two valid codes through the whole daemon and reads
// /metrics: ehc_agent_verify_seconds counts one observation per offline verification,
// and ehc_agent_journal_committed_events_total counts both events as made durable; the
// same commits are in /v1/status's journal, which doctor and the fleet judge.
func TestTimingsReachMetrics(t *testing.T) {
	a := startSimAgent(t, t.TempDir(), "info", "")
	keys, scanner, apiAddr, token := a.keys, a.scanner, a.apiAddr, a.token
	// The API may still be binding: wait for /metrics to answer.
	get := func(path string) string {
		req, _ := http.NewRequest("GET", "http://"+apiAddr+path, nil)
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
	committed := regexp.MustCompile(`(?m)^ehc_agent_journal_committed_events_total (\d+)$`)
	commits := regexp.MustCompile(`(?m)^ehc_agent_journal_commit_seconds_count (\d+)$`)
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
		text := get("/metrics")
		v, c := count.FindStringSubmatch(text), committed.FindStringSubmatch(text)
		if v != nil && v[1] == "2" && c != nil && c[1] == "2" {
			// Two events, made durable in one commit (group commit) or two.
			if n := commits.FindStringSubmatch(text); n == nil || (n[1] != "1" && n[1] != "2") {
				t.Fatalf("ehc_agent_journal_commit_seconds_count: %v, want 1 or 2", n)
			}
			var st struct{ Journal JournalStatus }
			if err := json.Unmarshal([]byte(get("/v1/status")), &st); err != nil {
				t.Fatal(err)
			}
			if j := st.Journal; j.Commits < 1 || j.Commits > 2 || j.RecentP50Ms <= 0 || j.RecentMaxMs < j.RecentP50Ms {
				t.Fatalf("/v1/status journal %+v after two events", j)
			}
			return
		}
		last = fmt.Sprintf("verifications %v, committed events %v", v, c)
	}
	t.Fatalf("after two scans: %s, want 2 and 2", last)
}
