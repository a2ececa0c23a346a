//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// The local API's server takes the pipeline's verification times.
var _ pipeline.VerifyObserver = (*api.Server)(nil)

// TestVerifyTimesReachMetrics scans two valid codes through the whole daemon and reads
// /metrics: ehc_agent_verify_seconds counts one observation per offline verification.
func TestVerifyTimesReachMetrics(t *testing.T) {
	dir := t.TempDir()
	keys, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "scanner")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`terminal_id: K-0001
state_dir: %s
log: {level: info, format: text}
trust: {dir: %s}
api: {listen: %s, allowed_origins: []}
devices:
  - name: front-scanner
    driver: sim
    sim: {file: %s, interval: 1ms}
`, filepath.Join(dir, "state"), filepath.Join(dir, "keys"), apiAddr, fifo)), 0o600)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	d, err := New(cfgPath, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	var scanner *os.File
	t.Cleanup(func() {
		if scanner != nil {
			scanner.Close()
		}
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
	var token string
	for deadline := time.Now().Add(10 * time.Second); token == "" || scanner == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent not up:\n%s", logs.String())
		}
		if b, err := os.ReadFile(filepath.Join(dir, "state", "api.token")); err == nil {
			token = strings.TrimSpace(string(b))
		}
		if scanner == nil {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				scanner = f
			} else if !errors.Is(err, syscall.ENXIO) { // no reader yet
				t.Fatal(err)
			}
		}
	}
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
