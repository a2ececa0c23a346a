//go:build usbguest

package guesttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gousb"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
)

// posInterface is the gadget's HID POS interface (the vendor one is 0).
const posInterface = 1

// hidrawNode is the /dev/hidraw node of interface n of the USB device at dir, or "" if
// the kernel's usbhid has none on it.
func hidrawNode(dir string, n int) string {
	m, _ := filepath.Glob(fmt.Sprintf("%s/%s:1.%d/*/hidraw/hidraw*", dir, filepath.Base(dir), n))
	if len(m) != 1 {
		return ""
	}
	return "/dev/" + filepath.Base(m[0])
}

// readHidraw reads one input report the way an SDK on hidraw does: the kernel's usbhid
// polls the endpoint only while the node is open.
func readHidraw(t *testing.T, node string, send func()) []byte {
	t.Helper()
	f, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("borrower opening %s: %v", node, err)
	}
	defer f.Close()
	send()
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := f.Read(buf)
	if err != nil {
		t.Fatalf("borrower reading %s: %v", node, err)
	}
	return buf[:n]
}

// readLibusb reads one input report the way an SDK on libusb does: it opens the device,
// claims the HID POS interface (detaching the kernel's driver) and reads the interrupt
// IN endpoint; everything is released and closed before it returns.
func readLibusb(t *testing.T, send func()) []byte {
	t.Helper()
	ctx := gousb.NewContext()
	defer ctx.Close()
	dev, err := ctx.OpenDeviceWithVIDPID(0x0C2E, 0x0B87)
	if err != nil || dev == nil {
		t.Fatalf("borrower opening the scanner: %v (device %v)", err, dev)
	}
	defer dev.Close()
	// As in the driver: Config first, so that only the claimed interface is detached.
	cfg, err := dev.Config(1)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if err := dev.SetAutoDetach(true); err != nil {
		t.Fatal(err)
	}
	intf, err := cfg.Interface(posInterface, 0)
	if err != nil {
		t.Fatalf("borrower claiming interface %d: %v (the driver did not release it?)", posInterface, err)
	}
	defer intf.Close()
	var in *gousb.InEndpoint
	for _, ep := range intf.Setting.Endpoints {
		if ep.Direction == gousb.EndpointDirectionIn && ep.TransferType == gousb.TransferTypeInterrupt {
			if in, err = intf.InEndpoint(ep.Number); err != nil {
				t.Fatal(err)
			}
		}
	}
	if in == nil {
		t.Fatal("no interrupt IN endpoint")
	}
	send()
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf := make([]byte, 64)
	n, err := in.ReadContext(rctx, buf)
	if err != nil {
		t.Fatalf("borrower reading: %v", err)
	}
	return buf[:n]
}

// scanOf is the text of a single-report Honeywell scan.
func scanOf(t *testing.T, r []byte) string {
	t.Helper()
	if len(r) != 64 || r[0] != 0x02 || int(r[1]) > 56 {
		t.Fatalf("borrower got % x, not a Honeywell scan report", r)
	}
	return string(r[5 : 5+r[1]])
}

func expectScan(t *testing.T, s *sink, want string) {
	t.Helper()
	if r := s.waitRead(t, 10*time.Second); string(r.Data) != want || r.AIM != "]Q1" {
		t.Fatalf("read %q (%+v), want %q", r.Data, r, want)
	}
}

// expectQuiet fails if the driver reads anything or changes state within d.
func expectQuiet(t *testing.T, s *sink, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.reads:
		t.Fatalf("the driver read %q while lent", r.Data)
	case st := <-s.states:
		t.Fatalf("state %+v while lent", st)
	case dr := <-s.drops:
		t.Fatalf("drop %+v while lent", dr)
	case <-time.After(d):
	}
}

// Issue #12 on real USB: the HID POS gadget is lent while scans flow. A scan sent just
// before the lend reaches the driver; while lent, the interface is back with the
// kernel's usbhid and the test itself reads scans there, through hidraw and through
// libusb (claiming the interface), as the medical-insurance SDK would; the driver reads
// nothing and changes no state. After Reclaim the scan sent at once reaches the driver;
// then a lend that expires by itself: the scan sent while it was lent, which nobody
// borrowed, waits in the scanner and reaches the driver after it. Nothing is dropped.
func TestHIDPOSLend(t *testing.T) {
	g := gadgetOnce
	if g == nil {
		t.Skip("needs the gadget of TestHIDPOSGadget")
	}
	dir := usbDevice(posVID, posPID)
	if dir == "" {
		t.Fatal("no HID POS gadget on the bus")
	}
	dev, err := usbhid.New(usbhid.Config{Name: "pos", VID: 0x0C2E, PID: 0x0B87, SerialNumber: posSerial, Mode: usbhid.ModeHIDPOS, AIM: true})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	runDevice(t, dev, s)
	s.waitState(t, "connected", "", 20*time.Second)
	if drv := kernelDriver(dir, posInterface); drv != "usbfs" {
		t.Fatalf("while reading: interface %d bound to %q, want usbfs (claimed by the driver)", posInterface, drv)
	}
	if drv := kernelDriver(dir, 0); drv != "usbhid" {
		t.Fatalf("while reading: the vendor interface 0 bound to %q, want usbhid (looked at and given back)", drv)
	}
	if drv := kernelDriver(dir, 2); drv != "cdc_acm" {
		t.Fatalf("while reading: the CDC ACM interface 2 bound to %q, want cdc_acm (never the driver's to detach)", drv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.send(t, honeywellScan("]Q1", []byte("BEFORE-1"))...)
	expectScan(t, s, "BEFORE-1")

	// Sent, then lent at once: the report may still wait in the scanner.
	g.send(t, honeywellScan("]Q1", []byte("BEFORE-2"))...)
	t0 := time.Now()
	if err := dev.Lend(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	result("pos_lend", time.Since(t0).Round(time.Millisecond))
	expectScan(t, s, "BEFORE-2")
	st := s.waitState(t, device.StateLent, "", 5*time.Second)
	if st.Reason != device.ReasonLent || !strings.HasPrefix(st.Detail, "until ") {
		t.Fatalf("lent state %+v", st)
	}
	if err := dev.Lend(ctx, time.Now().Add(time.Minute)); !errors.Is(err, device.ErrAlreadyLent) {
		t.Fatalf("second lend: %v, want already_lent", err)
	}

	// The interface is free, with the kernel's driver back on it.
	if drv := kernelDriver(dir, posInterface); drv != "usbhid" {
		t.Fatalf("lent: interface %d bound to %q, want usbhid (released and given back to the kernel)", posInterface, drv)
	}
	node := hidrawNode(dir, posInterface)
	if node == "" {
		t.Fatalf("lent: no hidraw node on interface %d", posInterface)
	}
	got := readHidraw(t, node, func() { g.send(t, honeywellScan("]Q1", []byte("FOR-HIDRAW"))...) })
	if scan := scanOf(t, got); scan != "FOR-HIDRAW" {
		t.Fatalf("borrower on hidraw read %q", scan)
	}
	got = readLibusb(t, func() { g.send(t, honeywellScan("]Q1", []byte("FOR-LIBUSB"))...) })
	if scan := scanOf(t, got); scan != "FOR-LIBUSB" {
		t.Fatalf("borrower on libusb read %q", scan)
	}
	expectQuiet(t, s, 300*time.Millisecond)
	if drv := kernelDriver(dir, posInterface); drv != "usbhid" {
		t.Fatalf("after the borrower: interface %d bound to %q, want usbhid", posInterface, drv)
	}
	if drv := kernelDriver(dir, 2); drv != "cdc_acm" {
		t.Fatalf("after the borrower: the CDC ACM interface 2 bound to %q, want cdc_acm", drv)
	}

	tr := time.Now()
	if err := dev.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	// Sent before the driver has the interface again: it waits in the scanner.
	g.send(t, honeywellScan("]Q1", []byte("AFTER-1"))...)
	if st := s.waitState(t, device.StateConnecting, "", 5*time.Second); st.Reason != device.ReasonReclaimed {
		t.Fatalf("after reclaim: %+v", st)
	}
	st = s.waitState(t, "connected", "", 10*time.Second)
	result("pos_reclaim_to_connected", st.At.Sub(tr).Round(time.Millisecond))
	expectScan(t, s, "AFTER-1")
	g.send(t, honeywellScan("]Q1", []byte("AFTER-2"))...)
	expectScan(t, s, "AFTER-2")
	if err := dev.Reclaim(ctx); !errors.Is(err, device.ErrNotLent) {
		t.Fatalf("reclaim of a scanner not lent: %v", err)
	}

	// A lend that ends by itself.
	until := time.Now().Add(2 * time.Second)
	if err := dev.Lend(ctx, until); err != nil {
		t.Fatal(err)
	}
	s.waitState(t, device.StateLent, "", 5*time.Second)
	g.send(t, honeywellScan("]Q1", []byte("WHILE-LENT"))...)
	st = s.waitState(t, device.StateConnecting, "", 10*time.Second)
	if st.Reason != device.ReasonLendExpired || st.At.Before(until) {
		t.Fatalf("after the deadline %s: %+v", until.Format(time.RFC3339Nano), st)
	}
	s.waitState(t, "connected", "", 10*time.Second)
	expectScan(t, s, "WHILE-LENT")
	if err := dev.Reclaim(ctx); !errors.Is(err, device.ErrNotLent) {
		t.Fatalf("reclaim after expiry: %v", err)
	}
	select {
	case d := <-s.drops:
		t.Fatalf("drop %+v", d)
	default:
	}
}
