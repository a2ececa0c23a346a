package api_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ehc-agent/ehc-agent/internal/chromiumtest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

// TestDemoPageShowsScannedIdentity runs the whole agent (configuration, trust store,
// verifier, journal, pipeline, local API) with a scanner fed through a FIFO, and
// Chromium on the demo page: a valid code scanned shows its identity within a second.
func TestDemoPageShowsScannedIdentity(t *testing.T) {
	ctx := chromiumtest.Start(t)
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
	// The sim device opens the FIFO when it starts, and a writer can open it only then.
	var scanner *os.File
	t.Cleanup(func() { // before the daemon's stop: the clean-ups run last first
		if scanner != nil {
			scanner.Close()
		}
	})
	// allowed_origins is empty: the demo page is served by the API itself, on its own origin.
	token, _ := runDaemon(t, dir, fmt.Sprintf(`terminal_id: E2E-01
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
`, filepath.Join(dir, "state"), filepath.Join(dir, "keys"), port, fifo), func(string) bool {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			scanner = f
		} else if !errors.Is(err, syscall.ENXIO) { // ENXIO: no reader yet
			t.Fatal(err)
		}
		return scanner != nil
	})

	chromiumtest.Do(t, ctx, 20*time.Second, "open the demo page",
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
	chromiumtest.Do(t, ctx, 10*time.Second, "see the identity", chromedp.WaitVisible(chromedp.CSS(`#who .status-valid`)))
	took := time.Since(t0)
	t.Logf("scan to identity on the page: %s", took)
	if took > time.Second {
		t.Errorf("the identity took %s to show, want < 1s", took)
	}
	who := chromiumtest.Value(t, ctx, "read #who", chromedp.Evaluate[string](`document.getElementById("who").textContent`))
	page := chromiumtest.Value(t, ctx, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if !strings.Contains(who, mask.Number(keys.EHCID)) || !strings.Contains(who, "valid") {
		t.Errorf("page shows %q, want the masked EHC ID %s, valid", who, mask.Number(keys.EHCID))
	}
	if strings.Contains(strings.ToUpper(page), strings.ToUpper(keys.EHCID)) {
		t.Errorf("page shows the EHC ID unmasked")
	}
	png := chromiumtest.Value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	p := chromiumtest.Artifact(t, "demo-scanned-identity.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
