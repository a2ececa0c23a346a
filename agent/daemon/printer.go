package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/drivers/printer"
)

// Paper states of PrinterStatus.
const (
	PaperOK      = "ok"
	PaperNearEnd = "paper_near_end"
	PaperOut     = "paper_out"
	PaperOffline = "offline" // the printer says so, or cannot be reached: Reason says which
	PaperUnknown = "unknown" // not asked yet
)

// PrinterStatus is the receipt printer in /v1/status and doctor. Paper and Reason are
// the printer's state at CheckedAt, from the last status query or receipt; LastError
// stays after the printer recovered, so that hospital IT can see what happened.
type PrinterStatus struct {
	Configured bool   `json:"configured"`
	Transport  string `json:"transport,omitempty"` // serial | usblp | tcp
	Where      string `json:"where,omitempty"`     // the port, vid:pid, device or address
	Paper      string `json:"paper,omitempty"`     // ok | paper_near_end | paper_out | offline | unknown
	// Reason is the code of what is wrong now (paper_out, paper_near_end, offline,
	// not_connected, timeout), with the fix in Hint; "" when the printer is ready.
	Reason      string     `json:"reason,omitempty"`
	Detail      string     `json:"detail,omitempty"`
	Hint        string     `json:"hint,omitempty"`
	CheckedAt   *time.Time `json:"checked_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// printerMonitor owns the receipt printer: the application flow prints through it,
// and run asks the printer for its paper status every interval. The query is ESC/POS
// real-time status (DLE EOT, drivers/printer), which prints nothing; the driver does
// one operation at a time, so a query never cuts into a receipt.
type printerMonitor struct {
	p        *printer.Printer
	interval time.Duration
	log      *slog.Logger

	mu sync.Mutex
	st PrinterStatus
}

func newPrinterMonitor(c config.Printer, log *slog.Logger) (*printerMonitor, error) {
	p, err := printer.Open(c.Driver())
	if err != nil {
		return nil, err
	}
	where := c.Path
	switch {
	case c.Transport == printer.TCP:
		where = c.Address
	case c.VID != "":
		where = c.VID + ":" + c.PID
	}
	return &printerMonitor{p: p, interval: c.StatusInterval, log: log.With("component", "printer"),
		st: PrinterStatus{Configured: true, Transport: c.Transport, Where: where, Paper: PaperUnknown}}, nil
}

// run asks for the status now and then every interval until ctx ends.
func (m *printerMonitor) run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		st, err := m.p.Status(ctx)
		if ctx.Err() != nil {
			return
		}
		m.observe(st, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Print prints through the driver (which asks the paper status first) and keeps what
// it learnt: apply.Printer.
func (m *printerMonitor) Print(ctx context.Context, job []byte) error {
	err := m.p.Print(ctx, job)
	if err == nil {
		m.mu.Lock()
		near := m.st.Paper == PaperNearEnd
		m.mu.Unlock()
		// Print says only "there was paper": a roll near its end stays so until the
		// next query says otherwise.
		m.observe(printer.Status{PaperNearEnd: near}, nil)
	} else if printer.Reason(err) != "" {
		m.observe(printer.Status{}, err)
	}
	return err
}

// observe records a status answer or a failed operation, and logs a change of state.
func (m *printerMonitor) observe(st printer.Status, err error) {
	now := time.Now().UTC()
	paper, reason, detail := PaperOK, "", ""
	switch {
	case err != nil:
		reason, detail = printer.Reason(err), err.Error()
		switch reason {
		case printer.ReasonPaperOut:
			paper = PaperOut
		case "":
			reason, paper = "print_failed", PaperUnknown
		default:
			paper = PaperOffline
		}
	case st.PaperOut:
		paper, reason = PaperOut, printer.ReasonPaperOut
	case st.Offline:
		paper, reason = PaperOffline, printer.ReasonOffline
	case st.PaperNearEnd:
		paper, reason = PaperNearEnd, PaperNearEnd
	}
	m.mu.Lock()
	prev := m.st.Reason
	changed := prev != reason || m.st.CheckedAt == nil
	m.st.Paper, m.st.Reason, m.st.Detail, m.st.Hint, m.st.CheckedAt = paper, reason, detail, hints.ForPrinter(reason), &now
	if reason != "" && reason != PaperNearEnd {
		m.st.LastError, m.st.LastErrorAt = reason, &now
		if detail != "" {
			m.st.LastError = detail
		}
	}
	m.mu.Unlock()
	if changed {
		if reason == "" || reason == PaperNearEnd {
			m.log.Info("printer state", "paper", paper, "reason", reason)
		} else {
			m.log.Warn("printer state", "paper", paper, "reason", reason, "detail", detail)
		}
	}
}

func (m *printerMonitor) status() PrinterStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

func (m *printerMonitor) close() error { return m.p.Close() }

// CheckPrinter asks the configured printer for its status once, as the agent does
// (nothing is printed), for `ehc-agent doctor` when no agent is running. Only one
// program should talk to a printer at a time: while the agent runs, read its status.
func CheckPrinter(ctx context.Context, c config.Printer) (PrinterStatus, error) {
	if !c.Enabled() {
		return PrinterStatus{}, nil
	}
	m, err := newPrinterMonitor(c, slog.New(slog.DiscardHandler))
	if err != nil {
		return PrinterStatus{}, err
	}
	defer m.close()
	st, err := m.p.Status(ctx)
	if ctx.Err() != nil {
		return m.status(), ctx.Err()
	}
	m.observe(st, err)
	return m.status(), nil
}
