package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/internal/chromiumtest"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

func TestDemoPageInBrowser(t *testing.T) {
	ctx := chromiumtest.Start(t)
	h := start(t, nil)
	h.devs.add(&triggerDevice{plainDevice: plainDevice{"front-scanner"}}, device.StateConnected)

	chromiumtest.Do(t, ctx, 20*time.Second, "open the demo page",
		chromedp.Navigate(h.url+"/demo/#token="+testToken),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="connected"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-device="front-scanner"] .state-connected`)),
	)
	href := chromiumtest.Value(t, ctx, "read the URL", chromedp.Evaluate[string](`location.href`))
	if strings.Contains(href, testToken) {
		t.Errorf("the token stays in the address bar: %s", href)
	}

	// An identity arrives: the page shows it, masked, within a second.
	t0 := time.Now()
	h.srv.Event(testEvent(1, 0))
	chromiumtest.Do(t, ctx, 5*time.Second, "see the identity", chromedp.WaitVisible(chromedp.CSS(`#who[data-seq="1"]`)))
	if took := time.Since(t0); took > time.Second {
		t.Errorf("the identity took %s to show, want < 1s", took)
	}
	h.srv.DeviceState(device.State{Device: "front-scanner", State: device.StateDisconnected, Reason: "port_closed", At: time.Now()})
	chromiumtest.Do(t, ctx, 5*time.Second, "see the device change",
		chromedp.WaitVisible(chromedp.CSS(`li[data-device="front-scanner"] .state-disconnected`)))
	who := chromiumtest.Value(t, ctx, "read #who", chromedp.Evaluate[string](`document.getElementById("who").textContent`))
	table := chromiumtest.Value(t, ctx, "read #events", chromedp.Evaluate[string](`document.getElementById("events").textContent`))
	page := chromiumtest.Value(t, ctx, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	for _, want := range []string{mask.Number(idNumber), mask.Name(holderName), "valid"} {
		if !strings.Contains(who, want) || !strings.Contains(table, want) {
			t.Errorf("page lacks %q:\nwho: %s\ntable: %s", want, who, table)
		}
	}
	for _, pii := range []string{idNumber, holderName, ehcID} {
		if strings.Contains(page, pii) {
			t.Errorf("page shows %q unmasked", pii)
		}
	}

	png := chromiumtest.Value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	p := chromiumtest.Artifact(t, "demo-page.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))

	h.srv.Event(testEvent(2, 0))
	chromiumtest.Do(t, ctx, 5*time.Second, "see event 2", chromedp.WaitVisible(chromedp.CSS(`tr[data-seq="2"]`)))

	// A payment code's own message follows its event: the page notes it, and shows
	// nothing of the code.
	pay := testEvent(2, 0)
	pay.Code.Type, pay.Code.Scheme = "payment", "unionpay"
	h.srv.Channel(pay, "6225881234567890123")
	chromiumtest.Value(t, ctx, "see the payment channel note",
		chromedp.Poll[bool](`document.querySelector('tr[data-seq="2"]').textContent.includes("→ payment channel")`, chromedp.WithPollingTimeout(5*time.Second)))
	if page := chromiumtest.Value(t, ctx, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(page, "6225881234567890123") {
		t.Errorf("page shows the payment code")
	}

	// The agent restarts on the same address; events committed before the page is back
	// are not lost to it: it reconnects with after=2.
	addr := strings.TrimPrefix(h.url, "http://")
	h.stop()
	h2 := start(t, func(o *api.Options) { o.Listen, o.StartSeq = addr, 2 })
	h2.srv.Event(testEvent(3, 0))
	h2.srv.Event(testEvent(4, 0))
	chromiumtest.Do(t, ctx, 10*time.Second, "see events 3 and 4 after the restart",
		chromedp.WaitVisible(chromedp.CSS(`tr[data-seq="4"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-seq="3"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="connected"]`)),
	)
}

// TestForeignOriginCannotReadEvents: a page from another origin, even one that knows
// the token, gets neither the WebSocket nor the long-poll.
func TestForeignOriginCannotReadEvents(t *testing.T) {
	ctx := chromiumtest.Start(t)
	h := start(t, nil)
	h.srv.Event(testEvent(1, 0))

	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>foreign</title><pre id="out"></pre><script>
const api = %q, token = %q, out = [];
const done = () => { document.getElementById("out").textContent = out.join("\n"); document.body.dataset.done = "1"; };
let pending = 2;
const finish = () => { if (--pending === 0) done(); };
fetch(api + "/v1/events?after=0", {headers: {Authorization: "Bearer " + token}})
  .then(r => r.text()).then(t => { out.push("fetch read: " + t); finish(); })
  .catch(e => { out.push("fetch blocked: " + e.name); finish(); });
const ws = new WebSocket(api.replace("http", "ws") + "/v1/ws?after=0", ["ehc-agent.v1", "ehc-agent.bearer." + token]);
ws.onmessage = m => out.push("ws read: " + m.data);
ws.onclose = e => { out.push("ws closed: " + e.code); finish(); };
</script>`, h.url, testToken)
	}))
	defer foreign.Close()

	chromiumtest.Do(t, ctx, 20*time.Second, "run the foreign page",
		chromedp.Navigate(foreign.URL),
		chromedp.WaitReady(chromedp.CSS(`body[data-done="1"]`)),
	)
	out := chromiumtest.Value(t, ctx, "read the outcome", chromedp.Evaluate[string](`document.getElementById("out").textContent`))
	t.Logf("foreign page:\n%s", out)
	if strings.Contains(out, "read:") || strings.Contains(out, idNumber) {
		t.Fatalf("a foreign page read from the API:\n%s", out)
	}
	if !strings.Contains(out, "fetch blocked") || !strings.Contains(out, "ws closed: 1006") {
		t.Fatalf("unexpected outcome:\n%s", out)
	}
}
