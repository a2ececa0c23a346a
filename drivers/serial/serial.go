package serial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goserial "go.bug.st/serial"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/holder"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

// Config is one serial scanner.
type Config struct {
	Name string
	// Path opens the port by name (/dev/ttyUSB0, a /dev/serial/by-id link, COM3), or
	Path string
	// VID and PID (4 hex digits) and optionally SerialNumber find it through Ports,
	// again before every open.
	VID, PID, SerialNumber string

	Baud     int    // 0 means 9600
	DataBits int    // 5..8; 0 means 8
	Parity   string // "none" (default), "odd", "even", "mark", "space"
	StopBits string // "1" (default), "1.5" (Windows only), "2"
	DTR, RTS *bool  // set after open when not nil; failures are logged once and ignored

	Framing framing.Config
	Trigger *trigger.Commands // nil: the scanner has no host trigger

	Ports  Ports        // port list for VID/PID; nil means SystemPorts
	Logger *slog.Logger // nil means slog.Default()
}

// Reconnect backoff.
const (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second
)

// HealthySession is how long a session must last, when it delivers no scan, for the
// backoff to start again from MinBackoff once it ends. An open alone proves nothing: a
// flaky USB-serial bridge (CH340, FTDI behind a half-dead hub) opens fine and then fails
// every read with EIO at once, and resetting on the open made that a loop of ten opens,
// WARN lines and connected/disconnected pairs a second for ever. A scan proves the port
// works (a real scanner sends nothing else unasked); an idle scanner proves it by
// lasting. Set to MaxBackoff, a port that keeps failing after longer sessions than that
// is reconnected at most about once per session, no faster than the capped backoff.
const HealthySession = MaxBackoff

// State and drop reasons of this driver (the framer adds its own drop reasons).
const (
	ReasonStart            = "start"             // connecting: Run began
	ReasonNotFound         = "not_found"         // connecting: no such path, or no port with the USB ids
	ReasonEnumerateFailed  = "enumerate_failed"  // connecting: the port list could not be read
	ReasonBusy             = "port_busy"         // connecting: another process has the port; Detail names it (Linux)
	ReasonPermissionDenied = "permission_denied" // connecting: not in the dialout group, or no udev rule
	ReasonOpenFailed       = "open_failed"       // connecting: any other open error
	ReasonPortClosed       = "port_closed"       // disconnected: the device went away (cable pulled)
	ReasonReadError        = "read_error"        // disconnected: a read failed otherwise
	ReasonStopped          = "stopped"           // stopped: Run's context ended
)

// Errors of Trigger and Untrigger; their text is the stable reason code.
var (
	ErrNotConnected = errors.New("not_connected")
	ErrNoTrigger    = device.ErrNoTrigger
)

// Device is a serial scanner. It implements device.Device, device.Triggerer and
// device.Lender.
type Device struct {
	cfg      Config
	mode     goserial.Mode
	vid, pid string
	ports    Ports
	log      *slog.Logger

	modemOnce sync.Once // DTR/RTS failures are logged once per device, not per reconnect
	noWatch   bool      // tests: reconnect on the backoff alone, as on systems without inotify
	// openPort opens a port by name; nil means goserial.Open. Tests put a real fault
	// behind it (a pty whose master is closed right after the open).
	openPort func(path string, mode *goserial.Mode) (goserial.Port, error)

	mu   sync.Mutex    // guards port, and every write to it
	port goserial.Port // open port; nil while disconnected

	loan device.Loan // Lend and Reclaim (device.Lender)
}

var (
	_ device.Device    = (*Device)(nil)
	_ device.Triggerer = (*Device)(nil)
	_ device.Lender    = (*Device)(nil)
)

// New checks c and returns the device; nothing is opened before Run.
func New(c Config) (*Device, error) {
	d := &Device{cfg: c, ports: c.Ports, log: c.Logger}
	if c.Name == "" {
		return nil, errors.New("serial: missing name")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("serial %s: "+format, append([]any{c.Name}, args...)...)
	}
	switch {
	case c.Path == "" && c.VID == "":
		return nil, bad("give a path, or a VID and PID")
	case c.Path != "" && (c.VID != "" || c.PID != "" || c.SerialNumber != ""):
		return nil, bad("give a path or USB ids, not both")
	case c.Path == "":
		var ok1, ok2 bool
		d.vid, ok1 = NormalizeUSBID(c.VID)
		d.pid, ok2 = NormalizeUSBID(c.PID)
		if !ok1 || !ok2 {
			return nil, bad("VID %q and PID %q must each be up to 4 hex digits", c.VID, c.PID)
		}
	}

	d.mode.BaudRate = c.Baud
	if c.Baud == 0 {
		d.mode.BaudRate = 9600
	} else if c.Baud < 0 {
		return nil, bad("baud %d is negative", c.Baud)
	}
	d.mode.DataBits = c.DataBits
	if c.DataBits == 0 {
		d.mode.DataBits = 8
	} else if c.DataBits < 5 || c.DataBits > 8 {
		return nil, bad("data bits %d is not 5, 6, 7 or 8", c.DataBits)
	}
	switch c.Parity {
	case "", "none":
		d.mode.Parity = goserial.NoParity
	case "odd":
		d.mode.Parity = goserial.OddParity
	case "even":
		d.mode.Parity = goserial.EvenParity
	case "mark":
		d.mode.Parity = goserial.MarkParity
	case "space":
		d.mode.Parity = goserial.SpaceParity
	default:
		return nil, bad("parity %q is not none, odd, even, mark or space", c.Parity)
	}
	switch c.StopBits {
	case "", "1":
		d.mode.StopBits = goserial.OneStopBit
	case "1.5":
		// go.bug.st/serial rejects 1.5 on every system but Windows; failing here beats
		// a reconnect loop that can never open the port.
		if runtime.GOOS != "windows" {
			return nil, bad("1.5 stop bits are supported on Windows only")
		}
		d.mode.StopBits = goserial.OnePointFiveStopBits
	case "2":
		d.mode.StopBits = goserial.TwoStopBits
	default:
		return nil, bad("stop bits %q is not 1, 1.5 or 2", c.StopBits)
	}

	if c.Trigger != nil {
		if len(c.Trigger.Start) == 0 {
			return nil, bad("trigger without a start command")
		}
		t := trigger.Commands{Start: bytes.Clone(c.Trigger.Start), Stop: bytes.Clone(c.Trigger.Stop), Replies: c.Trigger.Replies}
		d.cfg.Trigger = &t
		d.cfg.Framing = withReplies(c.Framing, t.Replies)
	}
	if _, err := framing.New(d.cfg.Framing); err != nil {
		return nil, bad("%v", err)
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("device", c.Name, "driver", "serial")
	return d, nil
}

// withReplies adds the trigger's scanner replies to the framer's Ignore list, so that a
// scanner answering a trigger command never turns the answer into a scan. SSI replies
// are packets the ssi framer consumes anyway.
func withReplies(f framing.Config, replies [][]byte) framing.Config {
	if f.Type == "ssi" {
		return f
	}
	ignore := f.Ignore
	for _, r := range replies {
		if !slices.ContainsFunc(ignore, func(x []byte) bool { return bytes.Equal(x, r) }) {
			ignore = append(ignore[:len(ignore):len(ignore)], r)
		}
	}
	f.Ignore = ignore
	return f
}

// Name is the configured device name.
func (d *Device) Name() string { return d.cfg.Name }

// Trigger writes the trigger's start command to the open port.
func (d *Device) Trigger(ctx context.Context) error {
	if d.cfg.Trigger == nil {
		return ErrNoTrigger
	}
	return d.command(ctx, d.cfg.Trigger.Start)
}

// Untrigger writes the trigger's stop command; a trigger without one does nothing.
func (d *Device) Untrigger(ctx context.Context) error {
	if d.cfg.Trigger == nil {
		return ErrNoTrigger
	}
	if len(d.cfg.Trigger.Stop) == 0 {
		return nil
	}
	return d.command(ctx, d.cfg.Trigger.Stop)
}

// Lend closes the port for another program until until (device.Lender): a scan in
// progress is finished first (at most device.LendGrace), then the port is closed and
// nothing is opened or retried until the lend ends.
func (d *Device) Lend(ctx context.Context, until time.Time) error {
	if err := d.loan.Lend(ctx, until); err != nil {
		return err
	}
	d.log.Info("serial port lent", "reason", device.ReasonLent, "until", until.Format(time.RFC3339))
	return nil
}

// Reclaim ends a lend early (device.Lender): the port is opened again at once, or
// retried as usual while the other program still holds it.
func (d *Device) Reclaim(ctx context.Context) error {
	return d.loan.Reclaim(ctx)
}

// command writes b to the open port. A serial write of a few bytes does not block for
// long (no flow control), so ctx is only checked before it.
func (d *Device) command(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.port == nil {
		return ErrNotConnected
	}
	return writeAll(d.port, b)
}

func writeAll(p goserial.Port, b []byte) error {
	for len(b) > 0 {
		n, err := p.Write(b)
		if err != nil {
			return fmt.Errorf("write_failed: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// Run opens the port, reads scans into sink, and reconnects until ctx is done; it then
// returns nil. It returns an error only if the framing cannot be built (New checks that).
func (d *Device) Run(ctx context.Context, sink device.Sink) error {
	fr, err := framing.New(d.cfg.Framing)
	if err != nil {
		return fmt.Errorf("serial %s: %w", d.cfg.Name, err)
	}
	r := &run{d: d, sink: sink, fr: fr}
	r.state(device.StateConnecting, ReasonStart, "")
	var w *watcher
	if !d.noWatch {
		w = newWatcher(d.log)
		defer w.close()
	}
	backoff := MinBackoff
	// spacing is the least time from an attempt to the next one the watcher causes. Nothing
	// at first or after a session: no failed attempt yet says the directory churns.
	var spacing time.Duration
	// lastFlap is the reason and detail of the last session that ended before it proved
	// healthy: the same again is logged at debug level, so that a port flapping at the
	// capped backoff does not fill the journal with one WARN line every 5 s.
	var lastFail, lastPath, lastFlap string
	for ctx.Err() == nil {
		if d.loan.Asked() {
			// Lent: the port is closed and the watcher off; nothing runs until the
			// lend ends, and then the port is opened at once.
			w.disarm()
			reason := d.loan.Hold(ctx, r.state)
			if ctx.Err() != nil {
				break
			}
			if reason != "" {
				d.log.Info("serial port lend ended; reopening", "reason", reason)
			}
			lastFail, lastFlap, backoff, spacing = "", "", MinBackoff, 0
			continue
		}
		// Armed before the attempt, so that a node appearing just after it fails is
		// still seen: the attempt covers everything before, the watch everything after.
		w.arm(d.watchTargets(lastPath))
		tried := time.Now()
		port, path, reason, detail := d.open()
		if port == nil {
			// Only a change of reason is news: a scanner left unplugged would
			// otherwise report the same failure every 5 s for ever.
			if reason+detail != lastFail {
				lastFail = reason + detail
				r.state(device.StateConnecting, reason, detail)
				d.log.Info("serial port not opened; retrying", "reason", reason, "detail", detail, "backoff", backoff)
			}
		} else {
			w.disarm()
			lastFail, lastPath = "", path
			opened := time.Now()
			var healthy bool
			reason, detail, healthy = r.session(ctx, port, path)
			if ctx.Err() != nil {
				break
			}
			if reason == device.ReasonLent {
				continue // the top of the loop holds the port for the lend
			}
			// Only a session that proved healthy starts the backoff (and the watcher's
			// spacing) again from the bottom, so that a pulled cable is back at once;
			// a port that fails right after every open backs off to MaxBackoff as a
			// missing one does (HealthySession).
			if healthy {
				backoff, spacing, lastFlap = MinBackoff, 0, ""
			}
			r.state(device.StateDisconnected, reason, detail)
			lost := []any{"reason", reason, "detail", detail, "path", path,
				"session", time.Since(opened).Round(time.Millisecond), "backoff", backoff}
			switch {
			case healthy:
				d.log.Warn("serial port lost; reconnecting", lost...)
			case reason+detail != lastFlap:
				lastFlap = reason + detail
				d.log.Warn("serial port lost right after opening; backing off", lost...)
			default:
				d.log.Debug("serial port lost right after opening again; backing off", lost...)
			}
			// Watch from now, not from the first attempt: a quick replug is then seen
			// at once rather than when the first backoff ends.
			w.arm(d.watchTargets(lastPath))
		}
		// Even after a disconnect, wait first: the device node of a pulled cable
		// usually lingers a moment, and a device that fails at once must not spin.
		// The backoff bounds the wait; a candidate node appearing ends it sooner.
		if waitRetry(ctx.Done(), d.loan.Wake(), w.events(), backoff, tried.Add(spacing)) {
			d.log.Debug("serial port may be back; retrying", "reason", "device_appeared")
			spacing = min(max(2*spacing, MinBackoff), maxWatchSpacing)
		}
		backoff = min(2*backoff, MaxBackoff)
	}
	r.state(device.StateStopped, ReasonStopped, "")
	return nil
}

// open resolves and opens the port; on failure port is nil and reason says why.
func (d *Device) open() (port goserial.Port, path, reason, detail string) {
	path = d.cfg.Path
	if path == "" {
		var err error
		path, detail, err = FindPort(d.ports, d.vid, d.pid, d.cfg.SerialNumber)
		switch {
		case errors.Is(err, ErrNoPort):
			return nil, "", ReasonNotFound, fmt.Sprintf("no port with VID %s PID %s%s", d.vid, d.pid, serialSuffix(d.cfg.SerialNumber))
		case err != nil:
			return nil, "", ReasonEnumerateFailed, err.Error()
		case detail != "":
			d.log.Warn("several ports match the USB ids", "detail", detail)
		}
	}
	openPort := d.openPort
	if openPort == nil {
		openPort = goserial.Open
	}
	p, err := openPort(path, &d.mode)
	if err != nil {
		reason = OpenReason(err)
		return nil, path, reason, OpenDetail(path, reason, err)
	}
	d.setModemLines(p)
	return p, path, "", ""
}

func serialSuffix(sn string) string {
	if sn == "" {
		return ""
	}
	return " serial " + sn
}

// OpenReason is the state reason of an error opening a serial port: busy,
// permission_denied, not_found or open_failed. Every serial-port driver reports these.
func OpenReason(err error) string {
	var pe *goserial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case goserial.PortBusy:
			return ReasonBusy
		case goserial.PermissionDenied:
			return ReasonPermissionDenied
		case goserial.PortNotFound:
			return ReasonNotFound
		}
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO) {
		return ReasonNotFound
	}
	if errors.Is(err, fs.ErrPermission) {
		return ReasonPermissionDenied
	}
	return ReasonOpenFailed
}

// OpenDetail is the state detail of an error opening path: the error, or for a busy
// port the processes that hold it, "/dev/ttyUSB0: held by NationECCode (pid 4242)", so
// that hospital IT know which program to close. Where they cannot be found (Windows, or
// a holder this user may not inspect) it is the error.
func OpenDetail(path, reason string, err error) string {
	if reason == ReasonBusy {
		if ps, _ := holder.File(path, 0); len(ps) > 0 {
			return path + ": held by " + holder.Describe(ps)
		}
	}
	return fmt.Sprintf("%s: %v", path, err)
}

// setModemLines sets DTR and RTS when configured. Ptys and many CDC ports have no modem
// lines (ENOTTY); scanners work without them, so this is never fatal.
func (d *Device) setModemLines(p goserial.Port) {
	var errs []error
	if d.cfg.DTR != nil {
		if err := p.SetDTR(*d.cfg.DTR); err != nil {
			errs = append(errs, fmt.Errorf("DTR: %w", err))
		}
	}
	if d.cfg.RTS != nil {
		if err := p.SetRTS(*d.cfg.RTS); err != nil {
			errs = append(errs, fmt.Errorf("RTS: %w", err))
		}
	}
	if len(errs) > 0 {
		d.modemOnce.Do(func() {
			d.log.Warn("modem lines not set; ignored", "reason", "modem_lines", "detail", errors.Join(errs...).Error())
		})
	}
}

// run is the state of one Run call, touched only by its goroutine.
type run struct {
	d    *Device
	sink device.Sink
	fr   framing.Framer
	out  []framing.Output

	scanned bool // the session delivered a scan: the port works (HealthySession)

	// idle is odd while session blocks in a read with no scan in progress (no byte
	// since the framer last expired), and counts such reads: a lend may close the port
	// once one has lasted lendSettle without cutting a scan or leaving bytes unread.
	// Written by session, read by its closer goroutine.
	idle atomic.Uint64
}

func (r *run) state(s, reason, detail string) {
	r.sink.State(device.State{Device: r.d.cfg.Name, State: s, Reason: reason, Detail: detail, At: time.Now()})
}

// session reads one open port until it fails or ctx ends, and always leaves it closed.
// healthy says the session delivered a scan or lasted HealthySession.
func (r *run) session(ctx context.Context, port goserial.Port, path string) (reason, detail string, healthy bool) {
	d := r.d
	opened := time.Now()
	r.scanned = false
	defer func() { healthy = r.scanned || time.Since(opened) >= HealthySession }()
	d.mu.Lock()
	d.port = port
	d.mu.Unlock()
	r.state(device.StateConnected, "", path)
	d.log.Info("serial port open", "path", path, "baud", d.mode.BaudRate)

	// Closing the port is the only way to end a blocked Read; this goroutine does it
	// when ctx ends or the port is lent, and is gone before session returns.
	stop, closed := make(chan struct{}), make(chan struct{})
	var lending atomic.Bool
	go func() {
		defer close(closed)
		for {
			select {
			case <-ctx.Done():
				d.closePort(port)
				return
			case <-stop:
				return
			case <-d.loan.Wake():
				if !d.loan.Asked() {
					continue
				}
				if !r.waitIdle(ctx.Done(), stop) {
					d.log.Warn("lending the port in the middle of a scan", "reason", "lend_grace_passed")
				}
				lending.Store(true)
				d.closePort(port)
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-closed
		d.closePort(port)
		r.out = r.fr.Reset(r.out[:0])
		r.emit(nil, time.Now())
	}()

	buf := make([]byte, 8192)
	armed := false // the read timeout is set: a (0, nil) read means Timeout() passed
	var last time.Time
	timeout := r.fr.Timeout()
	for {
		waiting := !armed
		if waiting {
			r.idle.Add(1)
		}
		n, err := port.Read(buf)
		if waiting {
			r.idle.Add(1)
		}
		if n > 0 {
			last = time.Now()
			r.out = r.fr.Feed(buf[:n], r.out[:0])
			r.emit(port, last)
			if !armed && timeout > 0 {
				port.SetReadTimeout(timeout)
				armed = true
			}
			continue
		}
		if err != nil {
			if lending.Load() {
				return device.ReasonLent, "", false
			}
			if Gone(err) {
				return ReasonPortClosed, err.Error(), false
			}
			return ReasonReadError, err.Error(), false
		}
		if !armed {
			// go.bug.st/serial turns EOF into PortClosed; a bare (0, nil) without a
			// timeout is not supposed to happen, and looping on it would spin.
			return ReasonPortClosed, "read returned no data", false
		}
		r.out = r.fr.Expire(r.out[:0])
		r.emit(port, last)
		port.SetReadTimeout(goserial.NoTimeout)
		armed = false
	}
}

// A lend waiting for a scan to finish looks again every lendPoll (only while a lend
// waits, for at most device.LendGrace). The port is closed once session has blocked
// with no scan in progress for lendSettle: bytes that arrived before that have been
// read, since a reader woken by data runs within it, so a scan sent before the lend
// reaches the agent rather than the borrower.
const (
	lendPoll   = 10 * time.Millisecond
	lendSettle = 50 * time.Millisecond
)

// waitIdle waits until session blocks with no scan in progress, for at most
// device.LendGrace; false means the grace passed (or the session is ending).
func (r *run) waitIdle(done, stop <-chan struct{}) bool {
	deadline := time.Now().Add(device.LendGrace)
	for {
		v := r.idle.Load()
		wait := lendPoll
		if v%2 == 1 {
			wait = lendSettle
		}
		select {
		case <-done:
			return false
		case <-stop:
			return false
		case <-time.After(wait):
		}
		if v%2 == 1 && r.idle.Load() == v {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
	}
}

// closePort closes p and forgets it, so no command is written to a closed descriptor
// (whose number the OS may already have given to another file).
func (d *Device) closePort(p goserial.Port) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.port == p {
		d.port = nil
	}
	p.Close()
}

// emit hands the framer's outputs on: scans and drops to the sink, replies to the port
// (nil after the port is gone: a reply then has nowhere to go).
func (r *run) emit(port goserial.Port, at time.Time) {
	d := r.d
	for _, o := range r.out {
		switch o.Kind {
		case framing.KindScan:
			r.scanned = true
			r.sink.Read(device.Read{Device: d.cfg.Name, Driver: "serial", Kind: "qr", Data: o.Data, AIM: o.AIM, At: at})
		case framing.KindDrop:
			r.sink.Drop(device.Drop{Device: d.cfg.Name, Reason: o.Reason, Bytes: o.Dropped, At: time.Now()})
			d.log.Info("scanner input dropped", "reason", o.Reason, "bytes", o.Dropped)
		case framing.KindReply:
			if port == nil {
				continue
			}
			d.mu.Lock()
			var err error
			if d.port == port {
				err = writeAll(port, o.Data)
			}
			d.mu.Unlock()
			if err != nil {
				// The read that follows reports the port as gone, if it is.
				d.log.Warn("reply to scanner not written", "reason", "write_failed", "detail", err.Error())
			}
		}
	}
	clear(r.out) // scans belong to the sink now
}

// Gone reports whether a read or write error means the device went away (reason
// port_closed) rather than failed otherwise. A hung-up tty usually reads as EOF, which
// go.bug.st/serial reports as PortClosed, but a read already in the kernel when the other
// end vanishes (a USB adapter pulled, a pty master closed) fails with EIO instead, as do
// writes to a hung-up tty, and a removed USB device gives ENODEV or ENXIO: all are a
// pulled cable to the user.
func Gone(err error) bool {
	var pe *goserial.PortError
	if errors.As(err, &pe) && pe.Code() == goserial.PortClosed {
		return true
	}
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO)
}
