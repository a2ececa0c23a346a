//go:build usbguest

package guesttest

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
	"github.com/ehc-agent/ehc-agent/protocol/hid"
)

// QEMU's usb-kbd: VID 0627, PID 0001.
const kbdVID, kbdPID = "0627", "0001"

func newKeyboard(t *testing.T) (*usbhid.Device, *sink) {
	dev, err := usbhid.New(usbhid.Config{
		Name: "wedge", VID: 0x0627, PID: 0x0001, Mode: usbhid.ModeKeyboard, AIM: true,
		// Enter ends each scan; under TCG the host types a character every 40 ms or so,
		// and a gap must not cut a scan in two.
		Gap: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	runDevice(t, dev, s)
	return dev, s
}

// typeScan asks the host to type text and Enter on the usb-kbd, and checks the scan.
func typeScan(t *testing.T, s *sink, text, wantAIM, want string) {
	t.Helper()
	host("type", hex.EncodeToString([]byte(text+"\n")))
	r := s.waitRead(t, 30*time.Second)
	if string(r.Data) != want || r.AIM != wantAIM || r.Driver != "usbhid" || r.Kind != "qr" || r.Device != "wedge" {
		t.Fatalf("read %+v (%q), want %q %q", r, r.Data, wantAIM, want)
	}
}

// Case 1: a keyboard-wedge scan typed on QEMU's USB keyboard reaches the driver through
// gousb, with the kernel's keyboard driver detached (so it reaches no window).
func TestKeyboardWedge(t *testing.T) {
	dir := usbDevice(kbdVID, kbdPID)
	if dir == "" {
		t.Fatal("no usb-kbd in the guest")
	}
	if drv := kernelDriver(dir, 0); drv != "usbhid" {
		t.Fatalf("before: kernel driver %q, want usbhid bound (nothing to detach otherwise)", drv)
	}
	dev, s := newKeyboard(t)
	s.waitState(t, "connected", "", 20*time.Second)
	if drv := kernelDriver(dir, 0); drv != "usbfs" {
		t.Fatalf("while reading: interface 0 bound to %q, want usbfs (the kernel's keyboard driver detached)", drv)
	}
	typeScan(t, s, "]Q1HC1:WEDGE-Scan_01/ok", "]Q1", "HC1:WEDGE-Scan_01/ok")
	if err := dev.Trigger(context.Background()); err != usbhid.ErrNoTrigger {
		t.Fatalf("trigger on a wedge: %v", err)
	}
}

// Case 3 on QEMU: the keyboard is removed (QMP device_del) mid-session and added again:
// the read in flight ends, and the driver is back within 2 s of the device's return.
func TestKeyboardReplug(t *testing.T) {
	_, s := newKeyboard(t)
	s.waitState(t, "connected", "", 20*time.Second)
	host("unplug", "kbd")
	s.waitState(t, "disconnected", usbhid.ReasonUnplugged, 20*time.Second)
	waitUSBDevice(t, kbdVID, kbdPID, false, 10*time.Second)
	host("plug", "kbd")
	back := waitUSBDevice(t, kbdVID, kbdPID, true, 20*time.Second)
	st := s.waitState(t, "connected", "", 20*time.Second)
	took := st.At.Sub(back)
	result("kbd_recovery", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Fatalf("reconnected %s after the device came back, want within 2s", took)
	}
	typeScan(t, s, "AFTER-replug 2", "", "AFTER-replug 2")
}

// Issue #12: a scanner configured for HID POS that enumerates only as a keyboard (here
// QEMU's usb-kbd, read through the real kernel and libusb) is reported as keyboard_mode,
// not as a device that cannot be found; the kernel keeps its keyboard driver, and keeps
// it for good: the driver does not take the keyboard away again at each later look (the
// kernel would re-create the keyboard every second, and lose what it typed meanwhile).
func TestKeyboardModeDetected(t *testing.T) {
	dir := usbDevice(kbdVID, kbdPID)
	if dir == "" {
		t.Fatal("no usb-kbd in the guest")
	}
	dev, err := usbhid.New(usbhid.Config{Name: "pos", VID: 0x0627, PID: 0x0001, Mode: usbhid.ModeHIDPOS, Layout: hid.Honeywell})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	runDevice(t, dev, s)
	st := s.waitState(t, "connecting", usbhid.ReasonKeyboardMode, 20*time.Second)
	if !strings.Contains(st.Detail, "0627:0001 enumerates only as a HID keyboard") {
		t.Fatalf("detail %q", st.Detail)
	}
	if drv := kernelDriver(dir, 0); drv != "usbhid" {
		t.Fatalf("after the look: interface 0 bound to %q, want usbhid (the keyboard given back)", drv)
	}
	// The kernel names each HID device it creates with a new sequence number: the same
	// name 3.5 s (three more looks) later means the keyboard was never detached again.
	first := hidDevice(dir, 0)
	if first == "" {
		t.Fatal("no HID device on the keyboard's interface 0")
	}
	time.Sleep(3*usbhid.PollInterval + 500*time.Millisecond)
	if now := hidDevice(dir, 0); now != first {
		t.Fatalf("the keyboard's HID device went from %s to %q: the driver detached it again", first, now)
	}
	select {
	case st := <-s.states:
		t.Fatalf("state changed to %+v", st)
	default:
	}
}

// hidDevice is the name of the kernel's HID device on interface n of the USB device at
// dir ("0003:0627:0001.0004"), or "".
func hidDevice(dir string, n int) string {
	m, _ := filepath.Glob(fmt.Sprintf("%s/%s:1.%d/0003:*", dir, filepath.Base(dir), n))
	if len(m) != 1 {
		return ""
	}
	return filepath.Base(m[0])
}
