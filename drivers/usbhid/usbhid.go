//go:build cgo

package usbhid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/gousb"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/hid"
)

// Built says whether this build has USB support.
const Built = true

// Device is a USB HID scanner. It implements device.Device, device.Triggerer and
// device.Lender.
type Device struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex // guards conn, and every output report sent on it
	conn *conn      // open device; nil while disconnected

	loan device.Loan // Lend and Reclaim

	// wrongMode is the device last found without an interface of the configured mode
	// (bus 0: none), and what was reported of it; touched only by Run's goroutine.
	// Looking again means claiming its interfaces, which takes the kernel's driver off
	// them for a moment: a scanner left in keyboard mode would lose its keyboard, and
	// what it typed meanwhile, every PollInterval. A scanner set to another mode
	// enumerates again, at a new address, so the same address is the same answer.
	wrongMode struct {
		bus, address   int
		reason, detail string
	}
}

var (
	_ device.Device    = (*Device)(nil)
	_ device.Triggerer = (*Device)(nil)
	_ device.Lender    = (*Device)(nil)
)

// Lend releases the scanner's interface and closes the device for another program
// until until (device.Lender): the kernel's usbhid is attached to the interface again
// on release, so the borrower may read it through hidraw, or claim it through libusb.
// A scan in progress, and reports the scanner queued before the lend, are read first,
// within device.LendGrace. Nothing is looked for until the lend ends.
func (d *Device) Lend(ctx context.Context, until time.Time) error {
	if err := d.loan.Lend(ctx, until); err != nil {
		return err
	}
	d.log.Info("USB scanner lent", "reason", device.ReasonLent, "until", until.Format(time.RFC3339))
	return nil
}

// Reclaim ends a lend early (device.Lender): the scanner is opened again at once, or
// looked for every PollInterval while the other program still holds it.
func (d *Device) Reclaim(ctx context.Context) error { return d.loan.Reclaim(ctx) }

// New checks c and returns the device; nothing is opened before Run.
func New(c Config) (*Device, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return &Device{cfg: c, log: c.Logger.With("device", c.Name, "driver", "usbhid")}, nil
}

// Name is the configured device name.
func (d *Device) Name() string { return d.cfg.Name }

// Trigger starts scanning: Honeywell's trigger report, or the configured start command.
func (d *Device) Trigger(ctx context.Context) error {
	switch {
	case d.cfg.TriggerBits:
		return d.send(ctx, [][]byte{hid.HoneywellTrigger(true)})
	case d.cfg.Trigger != nil:
		return d.send(ctx, d.cfg.Layout.Commands(d.cfg.Trigger.Start))
	}
	return ErrNoTrigger
}

// Untrigger stops scanning; a trigger without a stop command does nothing.
func (d *Device) Untrigger(ctx context.Context) error {
	switch {
	case d.cfg.TriggerBits:
		return d.send(ctx, [][]byte{hid.HoneywellTrigger(false)})
	case d.cfg.Trigger != nil:
		return d.send(ctx, d.cfg.Layout.Commands(d.cfg.Trigger.Stop))
	}
	return ErrNoTrigger
}

func (d *Device) send(ctx context.Context, reports [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return ErrNotConnected
	}
	for _, r := range reports {
		if err := d.conn.output(ctx, r); err != nil {
			return fmt.Errorf("write_failed: %w", err)
		}
	}
	return nil
}

// Run finds and opens the scanner, reads scans into sink, and reconnects until ctx is
// done; it then returns nil.
func (d *Device) Run(ctx context.Context, sink device.Sink) error {
	r := &run{d: d, sink: sink}
	r.state(device.StateConnecting, ReasonStart, "")
	var lastFail string
	for ctx.Err() == nil {
		if d.loan.Asked() {
			if reason := d.loan.Hold(ctx, r.state); reason != "" {
				d.log.Info("USB scanner lend ended; opening it again", "reason", reason)
			}
			lastFail = ""
			continue
		}
		c, reason, detail := d.open()
		if c == nil {
			// Only a change of reason is news: an unplugged scanner would otherwise
			// report the same failure every second for ever.
			if reason+detail != lastFail {
				lastFail = reason + detail
				r.state(device.StateConnecting, reason, detail)
				d.log.Info("USB scanner not opened; looking again every second", "reason", reason, "detail", detail)
			}
		} else {
			lastFail = ""
			reason, detail = r.session(ctx, c)
			if ctx.Err() != nil {
				break
			}
			if reason == device.ReasonLent {
				continue // the top of the loop holds the device for the lend
			}
			r.state(device.StateDisconnected, reason, detail)
			d.log.Warn("USB scanner lost; looking for it again", "reason", reason, "detail", detail)
		}
		t := time.NewTimer(PollInterval)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-d.loan.Wake(): // a lend of a scanner that is away takes effect at once
		}
		t.Stop()
	}
	r.state(device.StateStopped, ReasonStopped, "")
	return nil
}

// conn is one opened scanner: its libusb context, device, configuration and claimed
// interface.
type conn struct {
	ctx   *gousb.Context
	dev   *gousb.Device
	cfg   *gousb.Config
	intf  *gousb.Interface
	num   int // interface number
	in    *gousb.InEndpoint
	out   *gousb.OutEndpoint // nil: output reports go by SET_REPORT
	desc  *hid.Descriptor    // nil if the report descriptor could not be read
	where string             // "bus 1 address 4 interface 0", for logs
}

// HID class requests (HID 1.11, 7.2).
const (
	reqGetStatus     = 0x00
	reqGetDescriptor = 0x06
	reqSetReport     = 0x09
	reqSetIdle       = 0x0A
	reqSetProtocol   = 0x0B

	rtInDevice       = 0x80 // device to host, standard, device
	rtInInterface    = 0x81 // device to host, standard, interface
	rtClassInterface = 0x21 // host to device, class, interface

	descReport    = 0x22
	reportOutput  = 0x02
	reportFeature = 0x03
)

// newContext starts libusb. gousb panics when libusb_init fails (no usbfs, as on a host
// without USB); that is a condition to report, not a crash.
func newContext() (c *gousb.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("libusb: %v", r)
		}
	}()
	return gousb.NewContext(), nil
}

// open finds the scanner and claims its interface; on failure c is nil and reason
// says why.
func (d *Device) open() (*conn, string, string) {
	ctx, err := newContext()
	if err != nil {
		return nil, ReasonUSBUnavailable, err.Error()
	}
	c := &conn{ctx: ctx}
	opened := false
	defer func() {
		if !opened {
			c.close()
		}
	}()
	dev, reason, detail := d.find(ctx)
	if dev == nil {
		return nil, reason, detail
	}
	c.dev = dev
	if w := d.wrongMode; w.bus == dev.Desc.Bus && w.address == dev.Desc.Address {
		return nil, w.reason, w.detail
	}
	dev.ControlTimeout = time.Second
	n, err := dev.ActiveConfigNum()
	if err != nil {
		return nil, openReason(err), err.Error()
	}
	// Config before SetAutoDetach: with it set, gousb's Config detaches the kernel driver
	// of every interface of the configuration, and nothing gives back those never
	// claimed (a scanner's CDC or second HID interface would stay driverless until
	// replugged). Set afterwards, only libusb's own auto-detach acts: it detaches the
	// kernel driver of each interface as it is claimed and attaches it again on
	// release, which is what a lend relies on (a borrower reading through hidraw needs
	// the kernel's usbhid back on the interface).
	if c.cfg, err = dev.Config(n); err != nil {
		return nil, openReason(err), err.Error()
	}
	if err := dev.SetAutoDetach(true); err != nil {
		return nil, ReasonOpenFailed, err.Error()
	}
	if reason, detail := d.claim(c); reason != "" {
		return nil, reason, detail
	}
	for _, ep := range c.intf.Setting.Endpoints {
		if ep.TransferType != gousb.TransferTypeInterrupt {
			continue
		}
		var err error
		if ep.Direction == gousb.EndpointDirectionIn && c.in == nil {
			c.in, err = c.intf.InEndpoint(ep.Number)
		} else if ep.Direction == gousb.EndpointDirectionOut && c.out == nil {
			c.out, err = c.intf.OutEndpoint(ep.Number)
		}
		if err != nil {
			return nil, ReasonOpenFailed, err.Error()
		}
	}
	if c.in == nil {
		return nil, ReasonNoInterface, c.where + " has no interrupt IN endpoint"
	}
	d.setup(c)
	opened = true
	return c, "", ""
}

// find opens the device with the configured ids (and serial number).
func (d *Device) find(ctx *gousb.Context) (*gousb.Device, string, string) {
	devs, err := ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
		return uint16(desc.Vendor) == d.cfg.VID && uint16(desc.Product) == d.cfg.PID
	})
	var found *gousb.Device
	others := 0
	for _, dev := range devs {
		if found == nil && d.serialMatches(dev) {
			found = dev
			continue
		}
		if d.cfg.SerialNumber == "" {
			others++
		}
		dev.Close()
	}
	if found != nil {
		if others > 0 {
			d.log.Warn("several USB devices match the ids; set serial_number to choose", "vid", hex4(d.cfg.VID), "pid", hex4(d.cfg.PID), "taken", found.String())
		}
		return found, "", ""
	}
	if err != nil {
		return nil, openReason(err), err.Error()
	}
	detail := "no USB device with VID " + hex4(d.cfg.VID) + " PID " + hex4(d.cfg.PID)
	if d.cfg.SerialNumber != "" {
		detail += " serial " + d.cfg.SerialNumber
	}
	return nil, ReasonNotFound, detail
}

func (d *Device) serialMatches(dev *gousb.Device) bool {
	if d.cfg.SerialNumber == "" {
		return true
	}
	sn, err := dev.SerialNumber()
	return err == nil && sn == d.cfg.SerialNumber
}

func hex4(v uint16) string { return fmt.Sprintf("%04x", v) }

// claim picks the interface of the configured mode by its report descriptor and keeps
// it claimed; the others it looked at are released. A device without one is reported
// as keyboard_mode when it is a keyboard only (KeyboardOnly), else as no_interface.
func (d *Device) claim(c *conn) (reason, detail string) {
	var tried []Interface
	var lastErr error
	for _, id := range c.cfg.Desc.Interfaces {
		if len(id.AltSettings) == 0 || id.AltSettings[0].Class != gousb.ClassHID {
			continue
		}
		alt := id.AltSettings[0]
		intf, err := c.cfg.Interface(id.Number, alt.Alternate)
		if err != nil {
			lastErr = err
			continue
		}
		i := Interface{Number: id.Number, SubClass: uint8(alt.SubClass), Protocol: uint8(alt.Protocol), Report: readDescriptor(c.dev, id.Number)}
		if d.wants(i) {
			c.intf, c.num, c.desc = intf, id.Number, i.Report
			c.where = fmt.Sprintf("bus %d address %d interface %d", c.dev.Desc.Bus, c.dev.Desc.Address, id.Number)
			return "", ""
		}
		intf.Close()
		tried = append(tried, i)
	}
	if lastErr != nil && len(tried) == 0 {
		return openReason(lastErr), lastErr.Error()
	}
	if d.cfg.Mode == ModeHIDPOS {
		reason, detail = noPOSInterface(d.cfg.VID, d.cfg.PID, tried)
	} else {
		reason, detail = ReasonNoInterface, fmt.Sprintf("no %s interface (%d HID interfaces: %v)", d.cfg.Mode, len(tried), tried)
	}
	// The answer holds only if every HID interface was claimed and its report
	// descriptor read: a descriptor that failed to come (a timeout) is asked again.
	sure := lastErr == nil
	for _, i := range tried {
		sure = sure && i.Report != nil
	}
	if sure {
		d.wrongMode.bus, d.wrongMode.address = c.dev.Desc.Bus, c.dev.Desc.Address
		d.wrongMode.reason, d.wrongMode.detail = reason, detail
	}
	return reason, detail
}

// wants reports whether an interface is the one of the configured mode.
func (d *Device) wants(i Interface) bool {
	if d.cfg.Mode == ModeKeyboard {
		return i.IsKeyboard()
	}
	return i.IsPOS()
}

// readDescriptor reads an interface's report descriptor; nil if it cannot be read or
// parsed.
func readDescriptor(dev *gousb.Device, num int) *hid.Descriptor {
	buf := make([]byte, hid.MaxDescriptor)
	n, err := dev.Control(rtInInterface, reqGetDescriptor, descReport<<8, uint16(num), buf)
	if err != nil {
		return nil
	}
	desc, err := hid.ParseDescriptor(buf[:n])
	if err != nil {
		return nil
	}
	return desc
}

// setup puts the interface in the state the decoder expects. Failures are logged and
// ignored: scanners that refuse these requests work without them.
func (d *Device) setup(c *conn) {
	idx := uint16(c.num)
	var err error
	if d.cfg.Mode == ModeKeyboard {
		// Boot protocol fixes the 8-byte report, whatever the descriptor says;
		// idle 0 stops repeated reports while a key is held.
		if c.intf.Setting.SubClass == subclassBoot {
			_, err = c.dev.Control(rtClassInterface, reqSetProtocol, 0, idx, nil)
		}
		if _, e := c.dev.Control(rtClassInterface, reqSetIdle, 0, idx, nil); err == nil {
			err = e
		}
	} else if d.cfg.Layout == hid.Honeywell {
		route := hid.HoneywellRoute()
		_, err = c.dev.Control(rtClassInterface, reqSetReport, reportFeature<<8|uint16(route[0]), idx, route)
	}
	if err != nil {
		d.log.Debug("USB scanner setup request refused; ignored", "detail", err.Error())
	}
}

// output sends one output report, padded to the length its descriptor declares.
func (c *conn) output(ctx context.Context, r []byte) error {
	if c.desc != nil {
		if n := c.desc.ReportSize(hid.Output, r[0]); n > len(r) {
			r = append(r[:len(r):len(r)], make([]byte, n-len(r))...)
		}
	}
	if c.out != nil {
		_, err := c.out.WriteContext(ctx, r)
		return err
	}
	_, err := c.dev.Control(rtClassInterface, reqSetReport, reportOutput<<8|uint16(r[0]), uint16(c.num), r)
	return err
}

// close releases whatever open got hold of, in reverse order.
func (c *conn) close() {
	if c.intf != nil {
		c.intf.Close()
	}
	if c.cfg != nil {
		c.cfg.Close()
	}
	if c.dev != nil {
		c.dev.Close()
	}
	c.ctx.Close()
}

func openReason(err error) string {
	switch {
	case errors.Is(err, gousb.ErrorAccess):
		return ReasonPermissionDenied
	case errors.Is(err, gousb.ErrorBusy):
		return ReasonBusy
	case errors.Is(err, gousb.ErrorNoDevice), errors.Is(err, gousb.ErrorNotFound):
		return ReasonNotFound
	}
	return ReasonOpenFailed
}

// run is the state of one Run call, touched only by its goroutine.
type run struct {
	d    *Device
	sink device.Sink
	out  []framing.Output
}

func (r *run) state(s, reason, detail string) {
	r.sink.State(device.State{Device: r.d.cfg.Name, State: s, Reason: reason, Detail: detail, At: time.Now()})
}

// session reads one open scanner until it fails or ctx ends, and always leaves it
// closed.
func (r *run) session(ctx context.Context, c *conn) (reason, detail string) {
	d := r.d
	dec, err := d.cfg.decoder() // New checked the configuration: this cannot fail
	if err != nil {
		c.close()
		return ReasonOpenFailed, err.Error()
	}
	d.mu.Lock()
	d.conn = c
	d.mu.Unlock()
	r.state(device.StateConnected, "", c.where)
	d.log.Info("USB scanner open", "where", c.where, "mode", d.cfg.Mode)

	// The reader owns the IN endpoint; cancelling rctx cancels its transfer in flight,
	// and it is gone before the device is closed.
	rctx, cancel := context.WithCancel(ctx)
	reports := make(chan []byte, 16)
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(reports)
		size := max(c.in.Desc.MaxPacketSize, 8)
		for {
			buf := make([]byte, size)
			n, err := c.in.ReadContext(rctx, buf)
			// A transfer that completed as it was cancelled still carries its report:
			// it is queued (the session drains reports once the reader is gone), and
			// given up only if the queue stays full after the session ended.
			if n > 0 {
				select {
				case reports <- buf[:n]:
				default:
					select {
					case reports <- buf[:n]:
					case <-rctx.Done():
						return
					}
				}
			}
			if err != nil {
				readErr = err
				return
			}
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
		// Reports read but not yet decoded (the session ended, for a lend or a stop,
		// as they arrived) are scans the scanner sent: they are decoded, not lost.
		for rep := range reports {
			r.out = dec.Feed(rep, r.out[:0])
			r.emit(time.Now())
		}
		d.mu.Lock()
		d.conn = nil
		d.mu.Unlock()
		c.close()
		r.out = dec.Reset(r.out[:0])
		r.emit(time.Now())
	}()

	var last time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// A lend waits for the scan in progress, and for the reports the scanner queued
	// before it: the interface is released once the decoder holds nothing, no report
	// waits and none came for settle (the scanner's queue is emptied at the endpoint's
	// polling interval), or when grace fires.
	var grace <-chan time.Time
	var calm time.Time // while a lend waits: when the endpoint has been quiet for settle
	settle := max(lendSettle, 4*c.in.Desc.PollInterval)
	settleT := time.NewTimer(time.Hour)
	settleT.Stop()
	defer settleT.Stop()
	for {
		if grace != nil && !dec.Pending() && len(reports) == 0 && !time.Now().Before(calm) {
			return device.ReasonLent, ""
		}
		select {
		case <-d.loan.Wake():
			if grace == nil && d.loan.Asked() {
				g := time.NewTimer(device.LendGrace)
				defer g.Stop()
				grace = g.C
				calm = time.Now().Add(settle)
				settleT.Reset(settle)
			}
		case <-settleT.C: // the top of the loop looks again
		case <-grace:
			d.log.Warn("lending the scanner in the middle of a scan", "reason", "lend_grace_passed")
			return device.ReasonLent, ""
		case rep, ok := <-reports:
			if !ok {
				// readErr was written before reports was closed.
				return c.readFailed(readErr)
			}
			last = time.Now()
			r.out = dec.Feed(rep, r.out[:0])
			r.emit(last)
			if grace != nil {
				calm = last.Add(settle)
				settleT.Reset(settle)
			}
			timer.Stop()
			if dec.Pending() {
				timer.Reset(dec.Timeout())
			}
		case <-timer.C:
			r.out = dec.Expire(r.out[:0])
			r.emit(last)
		case <-ctx.Done():
			return ReasonStopped, ""
		}
	}
}

// lendSettle is the least quiet on the IN endpoint before a lend releases the
// interface: a report the scanner queued before the lend is taken at its next poll.
const lendSettle = 50 * time.Millisecond

// readFailed says why the read loop ended. A device pulled mid-read does not always
// fail its transfer with "no device" (a gadget unbound from its controller fails it as
// a protocol error, and the hub reports the port change only later), so a failed read
// is followed by a GET_STATUS: a device that cannot answer it is gone.
func (c *conn) readFailed(err error) (reason, detail string) {
	if isGone(err) {
		return ReasonUnplugged, err.Error()
	}
	status := make([]byte, 2)
	if _, cerr := c.dev.Control(rtInDevice, reqGetStatus, 0, 0, status); cerr != nil {
		return ReasonUnplugged, fmt.Sprintf("%v; then GET_STATUS: %v", err, cerr)
	}
	return ReasonReadError, fmt.Sprint(err)
}

func isGone(err error) bool {
	return errors.Is(err, gousb.TransferNoDevice) || errors.Is(err, gousb.ErrorNoDevice)
}

// emit hands the decoder's outputs to the sink.
func (r *run) emit(at time.Time) {
	d := r.d
	for _, o := range r.out {
		switch o.Kind {
		case framing.KindScan:
			r.sink.Read(device.Read{Device: d.cfg.Name, Driver: "usbhid", Kind: "qr", Data: o.Data, AIM: o.AIM, At: at})
		case framing.KindDrop:
			r.sink.Drop(device.Drop{Device: d.cfg.Name, Reason: o.Reason, Bytes: o.Dropped, At: time.Now()})
			d.log.Info("scanner input dropped", "reason", o.Reason, "bytes", o.Dropped)
		}
	}
	clear(r.out) // scans belong to the sink now
}
