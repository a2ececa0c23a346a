package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/internal/chromiumtest"
)

// seen is one request as the API server received and answered it.
type seen struct {
	method, path, origin, reqHeaders string
	status                           int
}

// recorder serves the API's handler on a loopback port of its own and keeps every request
// with its answer's status: what the browser really sent, preflights included.
type recorder struct {
	url string
	mu  sync.Mutex
	got []seen
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func serveRecorded(t *testing.T, origins ...string) *recorder {
	t.Helper()
	srv, err := api.New(api.Options{Listen: "127.0.0.1:0", Token: testToken, AllowedOrigins: origins,
		Status: func() any { return map[string]any{"terminal_id": "T-CORS"} }})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		srv.Handler().ServeHTTP(sw, r)
		rec.mu.Lock()
		rec.got = append(rec.got, seen{r.Method, r.URL.Path, r.Header.Get("Origin"), strings.ToLower(r.Header.Get("Access-Control-Request-Headers")), sw.status})
		rec.mu.Unlock()
	}))
	t.Cleanup(ts.Close)
	rec.url = ts.URL
	return rec
}

func (r *recorder) from(origin string) []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(r.got), func(s seen) bool { return s.origin != origin })
}

// listen takes a loopback port for a page, so that its origin is known before the API starts.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// kioskPage serves on ln a page that reads apiURL/v1/status with the token, as a kiosk
// application would, and shows what it got.
func kioskPage(t *testing.T, ln net.Listener, apiURL string) {
	t.Helper()
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>kiosk</title><pre id="out"></pre><script>
const show = s => { document.getElementById("out").textContent = s; document.body.dataset.done = "1"; };
fetch(%q, {headers: {Authorization: "Bearer " + %q}})
  .then(r => r.text().then(t => show("read " + r.status + ": " + t)))
  .catch(e => show("blocked: " + e.name));
</script>`, apiURL+"/v1/status", testToken)
	})}}
	ts.Start()
	t.Cleanup(ts.Close)
}

// runPage opens url and returns what the page showed.
func runPage(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	chromiumtest.Do(t, ctx, 20*time.Second, "run "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(`body[data-done="1"]`)))
	return chromiumtest.Value(t, ctx, "read the outcome", chromedp.Evaluate[string](`document.getElementById("out").textContent`))
}

// TestAllowedOriginReadsStatusInBrowser: a page served from an allowed origin on another
// loopback port reads /v1/status in Chromium: the Authorization header makes the request
// non-simple, so the browser asks first (OPTIONS), the API answers the preflight, and only
// then is the GET sent. A page from an origin not allowed gets its preflight refused and
// never sends the GET.
func TestAllowedOriginReadsStatusInBrowser(t *testing.T) {
	ctx := chromiumtest.Start(t)
	allowedLn, allowed := listen(t)
	otherLn, other := listen(t)
	rec := serveRecorded(t, allowed)
	kioskPage(t, allowedLn, rec.url)
	kioskPage(t, otherLn, rec.url)

	out := runPage(t, ctx, allowed)
	if !strings.HasPrefix(out, "read 200: ") || !strings.Contains(out, `"terminal_id":"T-CORS"`) {
		t.Fatalf("the allowed page got: %s", out)
	}
	got := rec.from(allowed)
	if len(got) != 2 || got[0].method != "OPTIONS" || got[0].path != "/v1/status" || got[0].status != http.StatusNoContent ||
		!strings.Contains(got[0].reqHeaders, "authorization") || got[1].method != "GET" || got[1].status != http.StatusOK {
		t.Fatalf("requests of the allowed page: %+v", got)
	}

	// The other page: same browser, same token, another loopback origin.
	out = runPage(t, ctx, other)
	if !strings.HasPrefix(out, "blocked") || strings.Contains(out, "T-CORS") {
		t.Fatalf("a page of another origin got: %s", out)
	}
	got = rec.from(other)
	if len(got) != 1 || got[0].method != "OPTIONS" || got[0].status != http.StatusForbidden {
		t.Fatalf("requests of the other page: %+v", got)
	}
}

// A page that posts JSON sends Content-Type, which is not a CORS-safelisted value: the
// preflight must allow it beside Authorization, and say yes to Chrome's Private Network
// Access question (older Chromes; Local Network Access asks the user instead).
func TestPreflightAllowsJSONBodies(t *testing.T) {
	h := start(t, nil)
	resp, _ := h.do(t, "OPTIONS", "/v1/devices/front-scanner/trigger", map[string]string{"Origin": "http://kiosk.example:8080",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type",
		"Access-Control-Request-Private-Network": "true"})
	allow := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(allow, "content-type") || !strings.Contains(allow, "authorization") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

// policyNames are the Chrome enterprise policies that exempt page origins from Local
// Network Access checks: LocalNetworkAccessAllowedForUrls (Chrome 139+, local network and
// loopback) and LoopbackNetworkAllowedForUrls (Chrome 146+, loopback only).
var policyNames = []string{"LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls"}

func loadPolicy(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "chromium", "ehc-agent-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string][]string
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("configs/chromium/ehc-agent-policy.json: %v", err)
	}
	return p
}

// The example policy file names only the Local Network Access policies, and allows the
// agent's own default origins.
func TestChromiumPolicyFile(t *testing.T) {
	p := loadPolicy(t)
	if len(p) == 0 {
		t.Fatal("no policy")
	}
	for name, origins := range p {
		if !slices.Contains(policyNames, name) {
			t.Errorf("%s is not one of %v", name, policyNames)
		}
		for _, o := range config.DefaultAPIAllowedOrigins {
			if !slices.Contains(origins, o) {
				t.Errorf("%s lacks the agent's default origin %s", name, o)
			}
		}
		for _, o := range origins {
			if n, err := api.NormalizeOrigin(o); err != nil || n != o {
				t.Errorf("%s: %q is not an origin as a browser sends it (%v)", name, o, err)
			}
		}
	}
}

// managedPolicyDir is where Debian's Chromium reads mandatory policies.
const managedPolicyDir = "/etc/chromium/policies/managed"

// TestChromiumHonoursPolicyFile proves each policy of the example file on Debian's
// Chromium: a page Chromium takes for a public site (--ip-address-space-overrides) may
// read the agent on loopback only when its origin is in the policy; a second public page,
// whose origin the agent allows but the policy does not, is stopped by Local Network
// Access before any request leaves the browser. It installs the policy into
// /etc/chromium/policies/managed, so it runs only under CI=true (as root), and removes
// it again.
func TestChromiumHonoursPolicyFile(t *testing.T) {
	if os.Getenv("CI") != "true" {
		t.Skip("installs a policy into " + managedPolicyDir + ": runs only under CI=true")
	}
	if runtime.GOOS != "linux" {
		t.Skip("Debian's Chromium only")
	}
	if os.Geteuid() != 0 {
		t.Fatal("under CI=true this test needs root to write " + managedPolicyDir)
	}
	example := loadPolicy(t)
	for _, name := range policyNames {
		t.Run(name, func(t *testing.T) {
			inLn, inPolicy := listen(t)
			outLn, notInPolicy := listen(t)
			rec := serveRecorded(t, inPolicy, notInPolicy)
			kioskPage(t, inLn, rec.url)
			kioskPage(t, outLn, rec.url)
			installPolicy(t, map[string][]string{name: append(slices.Clone(example[name]), inPolicy)})
			ctx := chromiumtest.Start(t, chromedp.Flag("ip-address-space-overrides",
				strings.TrimPrefix(inPolicy, "http://")+"=public,"+strings.TrimPrefix(notInPolicy, "http://")+"=public"))

			out := runPage(t, ctx, inPolicy)
			if !strings.HasPrefix(out, "read 200: ") || !strings.Contains(out, "T-CORS") {
				t.Fatalf("the page in %s got: %s", name, out)
			}
			out = runPage(t, ctx, notInPolicy)
			if !strings.HasPrefix(out, "blocked") {
				t.Fatalf("a public page outside the policy got: %s (Local Network Access did not apply)", out)
			}
			if got := rec.from(notInPolicy); len(got) != 0 {
				t.Fatalf("Local Network Access let requests through: %+v", got)
			}
		})
	}
}

// installPolicy writes p into the managed policy directory for the test's duration;
// directories it had to create go again too.
func installPolicy(t *testing.T, p map[string][]string) {
	t.Helper()
	var made []string
	for d := managedPolicyDir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(managedPolicyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(managedPolicyDir, fmt.Sprintf("ehc-agent-test-%d.json", os.Getpid()))
	b, _ := json.Marshal(p)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(path)
		for _, d := range made { // deepest first
			os.Remove(d)
		}
	})
}
