package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
)

func TestTriggerEndpoints(t *testing.T) {
	h := start(t, nil)
	scanner := &triggerDevice{plainDevice: plainDevice{"front-scanner"}}
	away := &triggerDevice{plainDevice: plainDevice{"side-scanner"}}
	broken := &triggerDevice{plainDevice: plainDevice{"old-scanner"}, fail: true}
	h.devs.add(scanner, device.StateConnected)
	h.devs.add(away, device.StateDisconnected)
	h.devs.add(broken, device.StateConnected)
	h.devs.add(&plainDevice{"card-reader"}, device.StateConnected)
	// The real serial driver, configured without trigger.type: its Trigger says
	// no_trigger, which no retry can fix (409, not 503).
	plain, err := serial.New(serial.Config{Name: "serial-scanner", Path: "/dev/ttyUSB9"})
	if err != nil {
		t.Fatal(err)
	}
	h.devs.add(plain, device.StateConnected)

	for _, c := range []struct {
		path   string
		code   int
		reason string
	}{
		{"/v1/devices/front-scanner/trigger", 200, ""},
		{"/v1/devices/front-scanner/untrigger", 200, ""},
		{"/v1/devices/nobody/trigger", 404, "unknown_device"},
		{"/v1/devices/card-reader/trigger", 409, "no_trigger"},
		{"/v1/devices/serial-scanner/trigger", 409, "no_trigger"},
		{"/v1/devices/serial-scanner/untrigger", 409, "no_trigger"},
		{"/v1/devices/side-scanner/trigger", 503, "not_connected"},
		{"/v1/devices/old-scanner/untrigger", 503, "trigger_failed"},
	} {
		resp, body := h.do(t, "POST", c.path, auth())
		if resp.StatusCode != c.code {
			t.Errorf("%s: %d %s, want %d", c.path, resp.StatusCode, body, c.code)
			continue
		}
		var e struct{ Error, Action string }
		json.Unmarshal(body, &e)
		if e.Error != c.reason {
			t.Errorf("%s: error %q, want %q", c.path, e.Error, c.reason)
		}
	}
	if got := strings.Join(scanner.got(), ","); got != "trigger,untrigger" {
		t.Errorf("front-scanner got %q, want trigger,untrigger", got)
	}
	if got := away.got(); len(got) != 0 {
		t.Errorf("a disconnected device was sent %v", got)
	}
	if resp, _ := h.do(t, "GET", "/v1/devices/front-scanner/trigger", auth()); resp.StatusCode != 405 {
		t.Errorf("GET trigger: %d, want 405", resp.StatusCode)
	}
	if resp, _ := h.do(t, "POST", "/v1/devices/front-scanner/trigger", nil); resp.StatusCode != 401 || len(scanner.got()) != 2 {
		t.Errorf("trigger without token: %d, calls %v", resp.StatusCode, scanner.got())
	}
}
