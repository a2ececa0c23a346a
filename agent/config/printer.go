package config

import (
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/printer"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// Printer is the receipt printer of an institutional terminal (PRINTERS.md). An empty
// transport means the terminal has none.
type Printer struct {
	Transport string        `mapstructure:"transport"` // "" (none) | serial | usblp | tcp
	Path      string        `mapstructure:"path"`      // serial: the port; usblp: the device, /dev/usb/lp0
	VID       string        `mapstructure:"vid"`       // serial: find the port by USB ids instead of path
	PID       string        `mapstructure:"pid"`
	Address   string        `mapstructure:"address"` // tcp: host:port; port 9100 when left out
	Baud      int           `mapstructure:"baud"`    // serial
	Timeout   time.Duration `mapstructure:"timeout"` // connect, status answer, write
	// StatusInterval is how often the agent asks the printer for its paper status
	// (ESC/POS real-time status: nothing is printed) for /v1/status and doctor.
	StatusInterval time.Duration `mapstructure:"status_interval"`
	// PaperWidth is the roll width in mm, 58 or 80; PrintWidth the printable dots per
	// line, 0 for the usual 384 (58 mm) or 576 (80 mm). Only the QR symbol's size
	// depends on them: the printer wraps text itself.
	PaperWidth int `mapstructure:"paper_width"`
	PrintWidth int `mapstructure:"print_width"`
}

// Printer defaults.
const (
	DefaultPrinterPaperWidth = 58
	DefaultPrinterTimeout    = printer.DefaultTimeout
	// DefaultPrinterStatusInterval: paper running out shows in the status within half
	// a minute, and a printer is asked at most twice a minute.
	DefaultPrinterStatusInterval = 30 * time.Second
)

// Enabled reports whether a printer is configured.
func (p *Printer) Enabled() bool { return p.Transport != "" }

// validate applies the defaults of unset values (zero) and checks every key.
func (p *Printer) validate(bad func(key, format string, args ...any)) {
	if p.Timeout == 0 {
		p.Timeout = DefaultPrinterTimeout
	}
	if p.StatusInterval == 0 {
		p.StatusInterval = DefaultPrinterStatusInterval
	}
	if p.PaperWidth == 0 {
		p.PaperWidth = DefaultPrinterPaperWidth
	}
	if p.PrintWidth == 0 {
		p.PrintWidth = escpos.Dots58mm
		if p.PaperWidth == 80 {
			p.PrintWidth = escpos.Dots80mm
		}
	}
	only := func(key, value, transport string) {
		if value != "" {
			bad("printer."+key, "%q is for the %s transport only", value, transport)
		}
	}
	switch p.Transport {
	case "":
		if p.Path != "" || p.VID != "" || p.Address != "" {
			bad("printer.transport", "missing: one of serial, usblp, tcp (other printer keys are set)")
		}
		return
	case printer.Serial:
		if p.Baud == 0 {
			p.Baud = DefaultBaud
		}
		switch {
		case p.Path == "" && p.VID == "":
			bad("printer.path", "missing: give a path, or vid and pid")
		case p.Path != "" && p.VID != "":
			bad("printer.path", "give a path or vid/pid, not both")
		case p.VID != "" && (!usbID.MatchString(p.VID) || !usbID.MatchString(p.PID)):
			bad("printer.vid", "vid %q and pid %q must each be 4 hex digits", p.VID, p.PID)
		}
		if !baudRates[p.Baud] {
			bad("printer.baud", "%d is not a supported rate", p.Baud)
		}
		only("address", p.Address, "tcp")
	case printer.USBLP:
		if p.Path == "" {
			bad("printer.path", "missing: the USB printer device, e.g. /dev/usb/lp0")
		}
		only("vid", p.VID, "serial")
		only("pid", p.PID, "serial")
		only("address", p.Address, "tcp")
	case printer.TCP:
		if a, err := printer.TCPAddress(p.Address); err != nil {
			bad("printer.address", "%v", err)
		} else {
			p.Address = a
		}
		only("path", p.Path, "serial and usblp")
		only("vid", p.VID, "serial")
		only("pid", p.PID, "serial")
	default:
		bad("printer.transport", "%q is not one of serial, usblp, tcp", p.Transport)
		return
	}
	if p.Timeout < 100*time.Millisecond || p.Timeout > time.Minute {
		bad("printer.timeout", "%s is outside 100ms..1m", p.Timeout)
	}
	if p.StatusInterval < 200*time.Millisecond || p.StatusInterval > time.Hour {
		bad("printer.status_interval", "%s is outside 200ms..1h", p.StatusInterval)
	}
	if p.PaperWidth != 58 && p.PaperWidth != 80 {
		bad("printer.paper_width", "%d is not 58 or 80 (mm)", p.PaperWidth)
	} else if max := p.PaperWidth * escpos.DotsPerMM; p.PrintWidth < 128 || p.PrintWidth > max {
		bad("printer.print_width", "%d dots is outside 128..%d for %d mm paper", p.PrintWidth, max, p.PaperWidth)
	}
}

// Driver is the driver's configuration (validate has applied the defaults).
func (p *Printer) Driver() printer.Config {
	return printer.Config{Transport: p.Transport, Path: p.Path, VID: p.VID, PID: p.PID, Address: p.Address,
		Baud: p.Baud, Timeout: p.Timeout}
}
