package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/printer"
	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// The monitor's status follows the printer over TCP 9100: what a status query finds
// (near end, offline), what a receipt finds (paper out: the status says so at once,
// with its hint), and a printer that went away (not_connected). The last error stays
// after the printer recovered.
func TestPrinterMonitorStates(t *testing.T) {
	vp, err := vprinter.ListenTCP("127.0.0.1:0", vprinter.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer vp.Close()
	m, err := newPrinterMonitor(config.Printer{Transport: printer.TCP, Address: vp.Addr(), Timeout: 2 * time.Second,
		StatusInterval: time.Hour}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if st := m.status(); !st.Configured || st.Paper != PaperUnknown || st.Where != vp.Addr() || st.Transport != "tcp" {
		t.Fatalf("before any query: %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }() // asks at once, then hourly
	waitPaper(t, m, PaperOK)
	check := func() {
		st, err := m.p.Status(context.Background())
		m.observe(st, err)
	}

	vp.SetNearEnd(true)
	check()
	if st := m.status(); st.Paper != PaperNearEnd || st.Reason != PaperNearEnd || !strings.Contains(st.Hint, "new roll") || st.LastError != "" {
		t.Fatalf("near end: %+v", st)
	}
	vp.SetOffline(true)
	check()
	if st := m.status(); st.Paper != PaperOffline || st.Reason != printer.ReasonOffline || !strings.Contains(st.Hint, "cover") {
		t.Fatalf("offline: %+v", st)
	}
	vp.SetOffline(false)
	vp.SetNearEnd(false)

	// A receipt finds the paper out: nothing printed, and the status knows without
	// waiting for the next query.
	vp.SetPaperOut(true)
	job, err := (&escpos.Receipt{Code: "EHC-TEST-CODE", Name: "张三", IDNumber: "110105194912310021", IssuedAt: time.Now(), TerminalID: "T"}).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Print(context.Background(), job); printer.Reason(err) != printer.ReasonPaperOut {
		t.Fatalf("print without paper: %v", err)
	}
	if st := m.status(); st.Paper != PaperOut || st.Reason != printer.ReasonPaperOut || !strings.Contains(st.Hint, "out of paper") ||
		!strings.Contains(st.LastError, "paper_out") || st.LastErrorAt == nil {
		t.Fatalf("after the receipt: %+v", st)
	}
	vp.SetPaperOut(false)
	if err := m.Print(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if st := m.status(); st.Paper != PaperOK || st.Reason != "" || st.Hint != "" || !strings.Contains(st.LastError, "paper_out") {
		t.Fatalf("printed: %+v", st)
	}

	cancel()
	<-done
	vp.Close()
	check()
	if st := m.status(); st.Paper != PaperOffline || st.Reason != printer.ReasonNotConnected || !strings.Contains(st.Hint, "cable") {
		t.Fatalf("gone: %+v", st)
	}
}

func waitPaper(t *testing.T, m *printerMonitor, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m.status().Paper == want {
			return
		}
	}
	t.Fatalf("paper %s, want %s", m.status().Paper, want)
}
