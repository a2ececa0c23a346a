package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/internal/chromiumtest"
)

// Issue #12: the demo kiosk page shows a device's reason with its detail and the fix
// hint the agent attached, as a WebSocket "device" message brings them.
func TestDemoPageShowsHint(t *testing.T) {
	ctx, h := openDemoPage(t)
	h.srv.DeviceState(device.State{Device: "front-scanner", State: device.StateConnecting, Reason: "port_busy",
		Detail: "/dev/ttyUSB0: held by NationECCode (pid 4242)", Hint: hints.For("port_busy"), At: time.Now()})
	chromiumtest.Do(t, ctx, 5*time.Second, "see the hint", chromedp.WaitVisible(chromedp.CSS(`li[data-device="front-scanner"] .hint`)))
	li := chromiumtest.Value(t, ctx, "read the device", chromedp.Evaluate[string](`document.querySelector('li[data-device="front-scanner"]').textContent`))
	for _, want := range []string{"connecting", "(port_busy)", "held by NationECCode (pid 4242)", hints.For("port_busy")} {
		if !strings.Contains(li, want) {
			t.Errorf("device line lacks %q: %s", want, li)
		}
	}
}

// A read whose event could not be committed reaches the demo page as read_failed: it
// sends the patient to the desk with the reason and hint, and shows nobody's identity.
func TestDemoPageShowsReadFailed(t *testing.T) {
	ctx, h := openDemoPage(t)
	h.srv.NotCommitted(device.Read{Device: "front-scanner", Kind: "qr", Data: []byte("EHC1:SECRET"), At: time.Now()}, pipeline.ReasonDiskFull)
	chromiumtest.Do(t, ctx, 5*time.Second, "see the failure", chromedp.WaitVisible(chromedp.CSS(`#who.failed`)))
	who := chromiumtest.Value(t, ctx, "read it", chromedp.Evaluate[string](`document.getElementById("who").textContent`))
	for _, want := range []string{"could not be saved", "registration desk", "disk_full", "front-scanner", hints.For(pipeline.ReasonDiskFull)} {
		if !strings.Contains(who, want) {
			t.Errorf("page lacks %q: %s", want, who)
		}
	}
	if strings.Contains(who, "SECRET") {
		t.Errorf("the page shows the failed read's data: %s", who)
	}
}

// openDemoPage starts the API with a connected "front-scanner" and opens the demo page
// in Chromium, waiting until the page shows the scanner connected.
func openDemoPage(t *testing.T) (context.Context, *harness) {
	t.Helper()
	ctx := chromiumtest.Start(t)
	h := start(t, nil)
	h.devs.add(&triggerDevice{plainDevice: plainDevice{"front-scanner"}}, device.StateConnected)
	chromiumtest.Do(t, ctx, 20*time.Second, "open the demo page",
		chromedp.Navigate(h.url+"/demo/#token="+testToken),
		chromedp.WaitVisible(chromedp.CSS(`li[data-device="front-scanner"] .state-connected`)),
	)
	return ctx, h
}
