//go:build usbguest

package guesttest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
)

// The gadget: a Honeywell-ids scanner (so the layout comes from the VID) with two HID
// interfaces, as real ones have: 0 on the vendor page 0xFF8C, 1 on HID POS 0x8C; and a
// CDC ACM function after them (interfaces 2 and 3, the host's cdc_acm on them), which
// is no business of the driver's: it must keep its kernel driver.
const (
	posVID, posPID = "0c2e", "0b87"
	posSerial      = "HPOS-0001"
	gadgetDir      = "/sys/kernel/config/usb_gadget/pos"
)

// posDescriptor: input report 2 of 64 bytes (Honeywell's layout), output 4 (trigger bit
// field), output FD (raw commands), feature FE (routing).
var posDescriptor = []byte{
	0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01,
	0x85, 0x02, 0x09, 0x12, 0xA1, 0x02,
	0x15, 0x00, 0x26, 0xFF, 0x00, 0x75, 0x08,
	0x95, 0x01, 0x09, 0xFF, 0x81, 0x02,
	0x95, 0x03, 0x19, 0xFB, 0x29, 0xFD, 0x81, 0x02,
	0x95, 0x38, 0x09, 0xFE, 0x82, 0x02, 0x01,
	0x95, 0x03, 0x09, 0xFF, 0x81, 0x02,
	0xC0,
	0x85, 0x04, 0x09, 0x14, 0x95, 0x01, 0x91, 0x02,
	0x85, 0xFD, 0x09, 0x15, 0x95, 0x3F, 0x91, 0x02,
	0x85, 0xFE, 0x09, 0x16, 0x95, 0x01, 0xB1, 0x02,
	0xC0,
}

var vendorDescriptor = []byte{
	0x06, 0x8C, 0xFF, 0x09, 0x01, 0xA1, 0x01,
	0x15, 0x00, 0x26, 0xFF, 0x00, 0x75, 0x08, 0x95, 0x40, 0x09, 0x01, 0x81, 0x02,
	0xC0,
}

// gadget is the configfs HID gadget on dummy_hcd; pos is its HID POS function's device.
type gadget struct {
	udc string
	pos *os.File
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func newGadget(t *testing.T) *gadget {
	udcs, _ := os.ReadDir("/sys/class/udc")
	if len(udcs) == 0 {
		t.Fatal("no UDC: is dummy_hcd loaded?")
	}
	g := &gadget{udc: udcs[0].Name()}
	for _, d := range []string{"", "strings/0x409", "configs/c.1", "configs/c.1/strings/0x409", "functions/hid.vendor", "functions/hid.pos", "functions/acm.com"} {
		if err := os.MkdirAll(filepath.Join(gadgetDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range map[string]string{
		"idVendor": "0x" + posVID, "idProduct": "0x" + posPID, "bcdUSB": "0x0200",
		// Miscellaneous / common class / interface association: ACM's two interfaces
		// come as one function.
		"bDeviceClass": "0xEF", "bDeviceSubClass": "0x02", "bDeviceProtocol": "0x01",
		"strings/0x409/serialnumber": posSerial, "strings/0x409/manufacturer": "ehc-agent tests",
		"strings/0x409/product": "HID POS gadget", "configs/c.1/strings/0x409/configuration": "pos",
	} {
		write(t, filepath.Join(gadgetDir, name), []byte(v))
	}
	for fn, desc := range map[string][]byte{"hid.vendor": vendorDescriptor, "hid.pos": posDescriptor} {
		dir := filepath.Join(gadgetDir, "functions", fn)
		write(t, dir+"/protocol", []byte("0"))
		write(t, dir+"/subclass", []byte("0"))
		write(t, dir+"/report_length", []byte("64"))
		write(t, dir+"/report_desc", desc)
	}
	// Link order is interface order: the vendor interface comes first, as the driver
	// must not be fooled by it.
	for _, fn := range []string{"hid.vendor", "hid.pos", "acm.com"} {
		if err := os.Symlink(filepath.Join(gadgetDir, "functions", fn), filepath.Join(gadgetDir, "configs/c.1", fn)); err != nil {
			t.Fatal(err)
		}
	}
	// The function's character device, made here: devtmpfs names them hidg<N> in
	// creation order, which is not worth relying on.
	dev, err := os.ReadFile(filepath.Join(gadgetDir, "functions/hid.pos/dev"))
	if err != nil {
		t.Fatal(err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(dev)), "%d:%d", &major, &minor); err != nil {
		t.Fatalf("dev %q: %v", dev, err)
	}
	node := "/tmp/hidg-pos"
	os.Remove(node)
	if err := unix.Mknod(node, syscall.S_IFCHR|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
	g.bind(t)
	// Open for the rest of the process: the replug test uses the same gadget.
	if g.pos, err = os.OpenFile(node, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gadget) bind(t *testing.T)   { write(t, filepath.Join(gadgetDir, "UDC"), []byte(g.udc)) }
func (g *gadget) unbind(t *testing.T) { write(t, filepath.Join(gadgetDir, "UDC"), []byte("\n")) }

// send writes input reports as the scanner would, each within 10 s (a write blocks
// until the host has taken the one before).
func (g *gadget) send(t *testing.T, reports ...[]byte) {
	t.Helper()
	for _, r := range reports {
		g.pos.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := g.pos.Write(r); err != nil {
			t.Fatalf("gadget write: %v", err)
		}
	}
}

// receive reads one output report the host sent.
func (g *gadget) receive(t *testing.T) []byte {
	t.Helper()
	buf := make([]byte, 64)
	g.pos.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := g.pos.Read(buf)
	if err != nil {
		t.Fatalf("gadget read: %v", err)
	}
	return buf[:n]
}

// honeywellScan is data in Honeywell's 64-byte reports, [02][len][AIM ×3][data ×56]
// [code id][00][flags], flags bit 0 set on all but the last.
func honeywellScan(aim string, data []byte) [][]byte {
	var rs [][]byte
	for {
		n := min(len(data), 56)
		r := make([]byte, 64)
		r[0], r[1] = 0x02, byte(n)
		copy(r[2:5], aim)
		copy(r[5:], data[:n])
		r[61] = 's'
		data = data[n:]
		if len(data) > 0 {
			r[63] = 0x01
		}
		rs = append(rs, r)
		if len(data) == 0 {
			return rs
		}
	}
}

var gadgetOnce *gadget

// Case 2: a dummy_hcd + configfs HID POS gadget writes Honeywell reports, one scan in a
// single report and one split over three; the driver picks the 0x8C interface (not the
// 0xFF8C one before it), triggers the scanner through output report 4, and reassembles
// the split scan.
func TestHIDPOSGadget(t *testing.T) {
	g := newGadget(t)
	gadgetOnce = g
	waitUSBDevice(t, posVID, posPID, true, 20*time.Second)
	dev, err := usbhid.New(usbhid.Config{
		Name: "pos", VID: 0x0C2E, PID: 0x0B87, SerialNumber: posSerial, Mode: usbhid.ModeHIDPOS,
		TriggerBits: true, AIM: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	runDevice(t, dev, s)
	st := s.waitState(t, "connected", "", 20*time.Second)
	if !strings.HasSuffix(st.Detail, "interface 1") {
		t.Fatalf("connected on %q, want the HID POS interface 1", st.Detail)
	}

	if err := dev.Trigger(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := g.receive(t); !bytes.Equal(got, []byte{0x04, 0x04}) {
		t.Fatalf("trigger report % x, want 04 04", got)
	}
	if err := dev.Untrigger(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := g.receive(t); !bytes.Equal(got, []byte{0x04, 0x02}) {
		t.Fatalf("untrigger report % x, want 04 02", got)
	}

	g.send(t, honeywellScan("]Q1", []byte("HC1:SHORT"))...)
	if r := s.waitRead(t, 10*time.Second); string(r.Data) != "HC1:SHORT" || r.AIM != "]Q1" || r.Driver != "usbhid" {
		t.Fatalf("read %+v", r)
	}
	long := bytes.Repeat([]byte("0123456789ABCDEF"), 10) // 160 bytes: three reports
	reports := honeywellScan("]Q1", long)
	if len(reports) != 3 {
		t.Fatalf("%d reports", len(reports))
	}
	g.send(t, reports...)
	if r := s.waitRead(t, 10*time.Second); !bytes.Equal(r.Data, long) || r.AIM != "]Q1" {
		t.Fatalf("reassembled %q", r.Data)
	}
}

// Case 3 on the gadget: unbound from the UDC (unplugged) and bound again, the driver is
// back within 2 s of the device's return and reads the next scan.
func TestHIDPOSReplug(t *testing.T) {
	g := gadgetOnce
	if g == nil {
		t.Skip("needs the gadget of TestHIDPOSGadget")
	}
	// A gap long enough that the partial scan is still waiting when the gadget goes.
	dev, err := usbhid.New(usbhid.Config{Name: "pos", VID: 0x0C2E, PID: 0x0B87, Mode: usbhid.ModeHIDPOS, AIM: true, Gap: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	runDevice(t, dev, s)
	s.waitState(t, "connected", "", 20*time.Second)
	// A scan cut off by the unplug: its first part only.
	g.send(t, honeywellScan("]Q1", bytes.Repeat([]byte("P"), 100))[0])
	time.Sleep(500 * time.Millisecond) // the write returns when queued; let the host take it
	g.unbind(t)
	s.waitState(t, "disconnected", usbhid.ReasonUnplugged, 20*time.Second)
	select {
	case d := <-s.drops:
		if d.Reason != "disconnected" || d.Bytes != 56 {
			t.Fatalf("drop %+v, want the 56 bytes in flight as disconnected", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the partial scan was not reported as dropped")
	}
	waitUSBDevice(t, posVID, posPID, false, 10*time.Second)

	bound := time.Now()
	g.bind(t)
	back := waitUSBDevice(t, posVID, posPID, true, 20*time.Second)
	st := s.waitState(t, "connected", "", 20*time.Second)
	result("pos_recovery", st.At.Sub(back).Round(time.Millisecond))
	result("pos_recovery_from_bind", st.At.Sub(bound).Round(time.Millisecond))
	if took := st.At.Sub(back); took > 2*time.Second {
		t.Fatalf("reconnected %s after the device came back, want within 2s", took)
	}
	g.send(t, honeywellScan("]d1", []byte("AFTER-REPLUG"))...)
	if r := s.waitRead(t, 10*time.Second); string(r.Data) != "AFTER-REPLUG" || r.AIM != "]d1" {
		t.Fatalf("read %+v", r)
	}
}
