package api_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/daemon"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runDaemon writes cfgYAML to dir/agent.yaml and runs the whole daemon on it until the
// test ends (its log shown if the test failed). It waits, up to 10 s, for the API's
// token file (state_dir must be dir/state) and for ready, which is asked again every
// 20 ms with the log so far until it says true.
func runDaemon(t *testing.T, dir, cfgYAML string, ready func(logs string) bool) (token string, logs *logtest.Buffer) {
	t.Helper()
	cfgPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs = &logtest.Buffer{}
	d, err := daemon.New(cfgPath, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("agent did not stop")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	isReady := false
	for deadline := time.Now().Add(10 * time.Second); token == "" || !isReady; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent not up (token %v, ready %v):\n%s", token != "", isReady, logs.String())
		}
		if b, err := os.ReadFile(filepath.Join(dir, "state", "api.token")); err == nil {
			token = strings.TrimSpace(string(b))
		}
		if !isReady {
			isReady = ready(logs.String())
		}
	}
	return token, logs
}
