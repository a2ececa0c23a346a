// Package chromiumtest runs Debian's headless Chromium for browser tests (the demo kiosk
// page, CORS, card applications). Only tests import it.
package chromiumtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start starts Chromium for the test, with extra options if given (a later option wins,
// e.g. another chromedp.WindowSize), and closes it when the test ends. Without chromium
// the test fails in CI (CI=true: scripts/install-deps.sh installs it) and is skipped
// elsewhere.
func Start(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; scripts/install-deps.sh installs it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium, or bash scripts/install-deps.sh); skipping the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI; the sandbox needs an unprivileged user
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() }) // closes the browser and waits for it to exit
	// The browser lives as long as the context of this first call, so it has no
	// timeout; the allocator bounds the start itself (reading the DevTools address).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// Do runs steps with a timeout of their own.
func Do(t *testing.T, ctx context.Context, timeout time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Value runs one action that returns a value, within 10 s.
func Value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Artifact is where a picture is kept after the test: $EHC_TEST_ARTIFACTS, or a
// directory in the system's temporary directory.
func Artifact(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("EHC_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ehc-agent-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}
