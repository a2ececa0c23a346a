package hints

import (
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/drivers/pcsc"
	"github.com/ehc-agent/ehc-agent/drivers/printer"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// The states of issue #12 each have a hint, under the reason code the package that
// reports them uses; no hint is empty or runs on for a paragraph.
func TestEveryStateHasAHint(t *testing.T) {
	for _, r := range []string{
		pcsc.ReasonNoService, pcsc.ReasonNoReader, pcsc.ReasonServiceLost,
		serial.ReasonBusy, serial.ReasonNotFound, serial.ReasonPermissionDenied, serial.ReasonPortClosed,
		usbhid.ReasonKeyboardMode, usbhid.ReasonNoInterface, usbhid.ReasonBusy, usbhid.ReasonUnplugged,
		trust.ReasonNeverUpdated, trust.ReasonStale, APIPortTaken, SlowStorage, StateReset,
		pipeline.ReasonDiskFull, pipeline.ReasonJournalFailed, pipeline.ReasonStateDirLost,
	} {
		if For(r) == "" {
			t.Errorf("no hint for %q", r)
		}
	}
	if pcsc.ReasonNoService != "pcsc_service_unavailable" || serial.ReasonBusy != "port_busy" || usbhid.ReasonKeyboardMode != "keyboard_mode" ||
		trust.ReasonNeverUpdated != "never_updated" || trust.ReasonStale != "stale" {
		t.Error("the reason codes of issue #12 changed")
	}
	for r, h := range table {
		if len(h) > 300 || !strings.HasSuffix(h, ".") {
			t.Errorf("%s: hint of %d characters, or not a sentence: %q", r, len(h), h)
		}
	}
	for _, r := range []string{printer.ReasonPaperOut, printer.ReasonOffline, printer.ReasonNotConnected, printer.ReasonTimeout, "paper_near_end"} {
		if ForPrinter(r) == "" {
			t.Errorf("no hint for the printer's %q", r)
		}
	}
	if ForPrinter("") != "" || ForPrinter("not_found") != "" || For("offline") != "" {
		t.Error("a printer hint leaks to other reasons")
	}
	if For("") != "" || For("start") != "" {
		t.Error("a reason that needs no action has a hint")
	}
}
