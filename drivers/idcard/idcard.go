package idcard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	goserial "go.bug.st/serial"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
)

// Config is one ID card reader.
type Config struct {
	Name string
	// Path opens the port by name (/dev/ttyUSB0, a /dev/serial/by-id link, COM3), or
	Path string
	// VID and PID (4 hex digits) and optionally SerialNumber find it through Ports,
	// again before every open.
	VID, PID, SerialNumber string

	Baud int           // 0 means DefaultBaud; 8N1 always
	Poll time.Duration // pause between polls for a card; 0 means MinPoll, less is refused

	Ports  serial.Ports // port list for VID/PID; nil means serial.SystemPorts
	Logger *slog.Logger // nil means slog.Default()
}

// Defaults and bounds.
const (
	DefaultBaud = 115200
	// MinPoll is CARDS.md's "no faster than every 300 ms": the reader's security module
	// needs the time, and a faster poll only heats the reader's RF field.
	MinPoll = 300 * time.Millisecond
)

// Reasons of this driver, beside the serial driver's for opening a port
// (serial.ReasonNotFound, serial.ReasonBusy, …) and the ga467 status reasons carried in
// CardRead.Reason (ga467.ReasonReadFailed, …).
const (
	// State reasons.
	ReasonNoAnswer   = "no_answer"   // connecting/disconnected: the port is open but the reader does not answer
	ReasonWriteError = "write_error" // disconnected: a command could not be written
	// CardRead reasons, beside ga467.ReasonSelectFailed, ga467.ReasonReadFailed and
	// ga467.ReasonReaderError (with CardRead.ReaderStatus).
	ReasonBadAnswer       = "bad_answer"       // the read's answer came garbled (wrong CHK) every time
	ReasonReadTimeout     = "read_timeout"     // the reader answered find and select, but never the read
	ReasonBadCardData     = "bad_card_data"    // the record is not a well-formed ID card record
	ReasonUnsupportedCard = "unsupported_card" // a card of another kind (foreign permanent resident, HK/Macao/Taiwan residence)
	// Drop reason, beside the decoder's.
	ReasonUnsolicited = "unsolicited" // an answer that arrived when none was asked for
)

// Card kinds reported in CardRead.Kind.
const (
	KindResidentIDCard = "resident_id_card"
	KindUnknown        = "unknown"
)

// Device is a GA 467 ID card reader. It implements device.Device.
type Device struct {
	cfg      Config
	mode     goserial.Mode
	vid, pid string
	log      *slog.Logger

	// Timing, set from the baud rate by New.
	findTimeout, readTimeout, quiet time.Duration

	loan device.Loan // Lend and Reclaim
}

var (
	_ device.Device = (*Device)(nil)
	_ device.Lender = (*Device)(nil)
)

// Lend closes the port for another program until until (device.Lender). A card read
// in progress is finished first (the port is closed between polls); nothing is polled
// or opened until the lend ends.
func (d *Device) Lend(ctx context.Context, until time.Time) error {
	if err := d.loan.Lend(ctx, until); err != nil {
		return err
	}
	d.log.Info("id card reader lent", "reason", device.ReasonLent, "until", until.Format(time.RFC3339))
	return nil
}

// Reclaim ends a lend early (device.Lender): the port is opened again at once.
func (d *Device) Reclaim(ctx context.Context) error { return d.loan.Reclaim(ctx) }

// New checks c and returns the device; nothing is opened before Run.
func New(c Config) (*Device, error) {
	if c.Name == "" {
		return nil, errors.New("idcard: missing name")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("idcard %s: "+format, append([]any{c.Name}, args...)...)
	}
	d := &Device{cfg: c, log: c.Logger}
	switch {
	case c.Path == "" && c.VID == "":
		return nil, bad("give a path, or a VID and PID")
	case c.Path != "" && (c.VID != "" || c.PID != "" || c.SerialNumber != ""):
		return nil, bad("give a path or USB ids, not both")
	case c.Path == "":
		var ok1, ok2 bool
		d.vid, ok1 = serial.NormalizeUSBID(c.VID)
		d.pid, ok2 = serial.NormalizeUSBID(c.PID)
		if !ok1 || !ok2 {
			return nil, bad("VID %q and PID %q must each be up to 4 hex digits", c.VID, c.PID)
		}
	}
	switch {
	case c.Baud == 0:
		d.cfg.Baud = DefaultBaud
	case c.Baud < 0:
		return nil, bad("baud %d is negative", c.Baud)
	}
	switch {
	case c.Poll == 0:
		d.cfg.Poll = MinPoll
	case c.Poll < MinPoll:
		return nil, bad("poll interval %s is under %s", c.Poll, MinPoll)
	}
	d.mode = goserial.Mode{BaudRate: d.cfg.Baud, DataBits: 8, Parity: goserial.NoParity, StopBits: goserial.OneStopBit}
	// A reader answers find and select within tens of milliseconds, and takes up to about
	// a second to read a card before its answer starts; then the bytes take their time on
	// the line (10 bits a byte), 1.35 s for a read answer at 9600 baud.
	byteTime := 10 * time.Second / time.Duration(d.cfg.Baud)
	d.findTimeout = 500*time.Millisecond + 64*byteTime
	d.readTimeout = 3*time.Second + 1400*byteTime
	// After a garbled frame, a pause this long means no good one is following it: retry
	// now rather than at the timeout.
	d.quiet = 250*time.Millisecond + 16*byteTime
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("device", c.Name, "driver", "idcard")
	return d, nil
}

// Name is the configured device name.
func (d *Device) Name() string { return d.cfg.Name }

// Run opens the port, polls for cards, reads them into sink, and reconnects until ctx is
// done; it then returns nil.
func (d *Device) Run(ctx context.Context, sink device.Sink) error {
	r := &run{d: d, sink: sink}
	r.state(device.StateConnecting, serial.ReasonStart, "")
	backoff := serial.MinBackoff
	var lastFail string
	for ctx.Err() == nil {
		if d.loan.Asked() {
			if reason := d.loan.Hold(ctx, r.state); reason != "" {
				d.log.Info("id card reader lend ended; reopening", "reason", reason)
			}
			lastFail, backoff = "", serial.MinBackoff
			continue
		}
		port, path, reason, detail := d.open()
		answered := false
		if port != nil {
			answered, reason, detail = r.session(ctx, port, path)
			if ctx.Err() != nil {
				break
			}
			if reason == device.ReasonLent {
				continue // the top of the loop holds the port for the lend
			}
		}
		if answered {
			lastFail = ""
			backoff = serial.MinBackoff
			r.state(device.StateDisconnected, reason, detail)
			d.log.Warn("id card reader lost; reconnecting", "reason", reason, "detail", detail, "path", path)
		} else if reason+detail != lastFail {
			// Only a change is news: a reader left unplugged would otherwise report
			// the same failure every 5 s for ever.
			lastFail = reason + detail
			r.state(device.StateConnecting, reason, detail)
			d.log.Info("id card reader not ready; retrying", "reason", reason, "detail", detail, "backoff", backoff)
		}
		// Wait even after a disconnect: the device node of a pulled cable usually
		// lingers a moment, and a port that fails at once must not spin.
		if !sleep(ctx, d.loan.Wake(), backoff) {
			break
		}
		backoff = min(2*backoff, serial.MaxBackoff)
	}
	r.state(device.StateStopped, serial.ReasonStopped, "")
	return nil
}

// sleep waits d, or less when wake fires (a lend asked: nil never fires); false if
// ctx ended first.
func sleep(ctx context.Context, wake <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// run is the state of one Run call, touched only by its goroutine.
type run struct {
	d    *Device
	sink device.Sink
}

func (r *run) state(s, reason, detail string) {
	r.sink.State(device.State{Device: r.d.cfg.Name, State: s, Reason: reason, Detail: detail, At: time.Now()})
}

// open resolves and opens the port; on failure port is nil and reason says why.
func (d *Device) open() (port goserial.Port, path, reason, detail string) {
	path = d.cfg.Path
	if path == "" {
		var err error
		path, detail, err = serial.FindPort(d.cfg.Ports, d.vid, d.pid, d.cfg.SerialNumber)
		switch {
		case errors.Is(err, serial.ErrNoPort):
			sn := ""
			if d.cfg.SerialNumber != "" {
				sn = " serial " + d.cfg.SerialNumber
			}
			return nil, "", serial.ReasonNotFound, fmt.Sprintf("no port with VID %s PID %s%s", d.vid, d.pid, sn)
		case err != nil:
			return nil, "", serial.ReasonEnumerateFailed, err.Error()
		case detail != "":
			d.log.Warn("several ports match the USB ids", "detail", detail)
		}
	}
	p, err := goserial.Open(path, &d.mode)
	if err != nil {
		reason := serial.OpenReason(err)
		return nil, path, reason, serial.OpenDetail(path, reason, err)
	}
	return p, path, "", ""
}
