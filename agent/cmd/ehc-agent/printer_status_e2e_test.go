package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/daemon"
	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
)

// The receipt printer in /v1/status and doctor, through the built agent and a virtual
// ESC/POS printer on a real pty: ready, then out of paper — paper_out with its hint in
// the status and in doctor's row — found by the real-time status query alone, nothing
// printed. With the agent stopped, doctor asks the printer itself, again printing
// nothing.
func TestPrinterStatusInStatusAndDoctor(t *testing.T) {
	vp, err := vprinter.NewPTY(vprinter.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer vp.Close()
	addr := freePort(t)
	f := newDoctorFixture(t, addr, fmt.Sprintf("  []\nprinter: {transport: serial, path: %s, baud: 115200, timeout: 2s, status_interval: 300ms}\n", vp.Path()))
	a := startAgent(t, f.cfg)
	a.waitFor("agent ready", false, 15*time.Second)
	cfg, err := config.Load(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	status := func(want string) daemon.PrinterStatus {
		t.Helper()
		var last daemon.PrinterStatus
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			p := probeAPI(context.Background(), cfg)
			if p.status == nil {
				t.Fatalf("no status: %v", p.err)
			}
			if last = p.status.Printer; last.Paper == want {
				return last
			}
		}
		t.Fatalf("printer status %+v, want paper %s", last, want)
		return last
	}
	st := status(daemon.PaperOK)
	if !st.Configured || st.Transport != "serial" || st.Where != vp.Path() || st.Reason != "" || st.Hint != "" || st.CheckedAt == nil {
		t.Fatalf("ready printer: %+v", st)
	}
	rows := runChecks(t, f.env(time.Now(), ""))
	wantRow(t, rows, "printer", doctorPass, "serial "+vp.Path()+" (the running agent")
	wantRow(t, rows, "printer", doctorPass, "): ok")

	vp.SetPaperOut(true)
	st = status(daemon.PaperOut)
	if st.Reason != "paper_out" || !strings.Contains(st.Hint, "out of paper") || st.LastError == "" || st.LastErrorAt == nil {
		t.Fatalf("paper out: %+v", st)
	}
	rows = runChecks(t, f.env(time.Now(), ""))
	wantRow(t, rows, "printer", doctorFail, "): paper_out")
	wantRow(t, rows, "printer", doctorFail, "— fix: The receipt printer is out of paper")

	// Paper loaded: ready again, the last error kept for the record.
	vp.SetPaperOut(false)
	st = status(daemon.PaperOK)
	if st.Reason != "" || st.Hint != "" || !strings.Contains(st.LastError, "paper_out") {
		t.Fatalf("paper loaded: %+v", st)
	}
	a.stop(10 * time.Second)

	// No agent: doctor asks the printer itself.
	vp.SetPaperOut(true)
	rows = runChecks(t, f.env(time.Now(), ""))
	wantRow(t, rows, "printer", doctorFail, "(asked now): paper_out")
	wantRow(t, rows, "printer", doctorFail, "— fix: The receipt printer is out of paper")
	vp.SetPaperOut(false)
	rows = runChecks(t, f.env(time.Now(), ""))
	wantRow(t, rows, "printer", doctorPass, "(asked now): ok")

	// Only status queries went to the printer: no job, nothing discarded.
	if len(vp.Jobs()) != 0 || vp.Discarded() != 0 {
		t.Fatalf("something was printed: %d jobs, %d bytes discarded", len(vp.Jobs()), vp.Discarded())
	}
	if rx := vp.Received(); len(rx) == 0 || strings.Trim(string(rx), "\x10\x04\x01\x04") != "" {
		t.Fatalf("the printer received more than DLE EOT queries: % X", rx)
	}
}

// No printer configured: /v1/status says so, and doctor's row is information only.
func TestPrinterNotConfigured(t *testing.T) {
	f := newDoctorFixture(t, freePort(t), "  []\n")
	rows := runChecks(t, f.env(time.Now(), ""))
	wantRow(t, rows, "printer", doctorInfo, "no receipt printer configured")
}
