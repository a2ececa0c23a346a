package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// The fleet's doctor tells IT what to do, not only what is wrong: each state with a
// hint carries it, as the local doctor's rows do.
func TestDoctorRowsCarryHints(t *testing.T) {
	now := time.Now()
	s := Status{
		Devices: map[string]device.State{
			"front":  {State: device.StateConnecting, Reason: "port_busy", Hint: hints.For("port_busy"), At: now},
			"reader": {State: device.StateConnected, At: now},
		},
		Trust:   trust.Versions{Reason: trust.ReasonNeverUpdated, Hint: hints.For(trust.ReasonNeverUpdated)},
		Printer: PrinterStatus{Configured: true, Transport: "tcp", Where: "10.0.0.9:9100", Paper: "paper_out", Reason: "paper_out", Hint: "Load paper."},
	}
	rows := map[string]doctorRow{}
	for _, r := range doctorRows(s, now) {
		rows[r.Check] = r
	}
	for check, want := range map[string][]string{
		"device front":  {"fail", "port_busy", hints.For("port_busy")},
		"device reader": {"pass", "connected"},
		"trust":         {"fail", trust.ReasonNeverUpdated, hints.For(trust.ReasonNeverUpdated)},
		"printer":       {"warn", "paper_out", "Load paper."},
	} {
		r, ok := rows[check]
		if !ok {
			t.Errorf("no %s row in %+v", check, rows)
			continue
		}
		if r.Status != want[0] {
			t.Errorf("%s: status %s, want %s", check, r.Status, want[0])
		}
		for _, w := range want[1:] {
			if w == "" || !strings.Contains(r.Detail, w) {
				t.Errorf("%s: %q lacks %q", check, r.Detail, w)
			}
		}
	}
	if strings.Contains(rows["device reader"].Detail, "fix:") {
		t.Errorf("a connected device has no fix: %q", rows["device reader"].Detail)
	}
}
