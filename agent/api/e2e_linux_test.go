package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/daemon"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

// lockedBuffer collects the daemon's log lines from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDemoPageShowsScannedIdentity runs the whole agent (configuration, trust store,
// verifier, journal, pipeline, local API) with a scanner fed through a FIFO, and
// Chromium on the demo page: a valid code scanned shows its identity within a second.
func TestDemoPageShowsScannedIdentity(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	keys, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "scanner")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfgPath := filepath.Join(dir, "agent.yaml")
	// allowed_origins is empty: the demo page is served by the API itself, on its own origin.
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`terminal_id: E2E-01
state_dir: %s
log: {level: info, format: text}
trust: {dir: %s}
api:
  listen: 127.0.0.1:%d
  allowed_origins: []
devices:
  - name: front-scanner
    driver: sim
    sim: {file: %s, interval: 10ms}
`, filepath.Join(dir, "state"), filepath.Join(dir, "keys"), port, fifo)), 0o600)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	d, err := daemon.New(cfgPath, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx, nil) }()
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

	// The token file appears when the API starts; the sim device opens the FIFO when it
	// starts, and a writer can open it only then.
	var token string
	deadline := time.Now().Add(10 * time.Second)
	for token == "" || scanner == nil {
		if time.Now().After(deadline) {
			t.Fatalf("agent not up (token %v, scanner %v):\n%s", token != "", scanner != nil, logs.String())
		}
		if b, err := os.ReadFile(filepath.Join(dir, "state", "api.token")); err == nil {
			token = strings.TrimSpace(string(b))
		}
		if scanner == nil {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				scanner = f
			} else if !errors.Is(err, syscall.ENXIO) { // ENXIO: no reader yet
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	do(t, ctx, 20*time.Second, "open the demo page",
		chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/demo/#token=%s", port, token)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="connected"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-device="front-scanner"] .state-connected`)),
	)
	code, err := keys.NewCode(issuer.CodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := scanner.WriteString(code + "\r\n"); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, 10*time.Second, "see the identity", chromedp.WaitVisible(chromedp.CSS(`#who .status-valid`)))
	took := time.Since(t0)
	t.Logf("scan to identity on the page: %s", took)
	if took > time.Second {
		t.Errorf("the identity took %s to show, want < 1s", took)
	}
	who := value(t, ctx, "read #who", chromedp.Evaluate[string](`document.getElementById("who").textContent`))
	page := value(t, ctx, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if !strings.Contains(who, mask.Number(keys.EHCID)) || !strings.Contains(who, "valid") {
		t.Errorf("page shows %q, want the masked EHC ID %s, valid", who, mask.Number(keys.EHCID))
	}
	if strings.Contains(strings.ToUpper(page), strings.ToUpper(keys.EHCID)) {
		t.Errorf("page shows the EHC ID unmasked")
	}
	png := value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	p := artifact(t, "demo-scanned-identity.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
