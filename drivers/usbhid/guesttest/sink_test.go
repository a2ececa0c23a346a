//go:build usbguest

package guesttest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/device/devicetest"
)

// sink collects what a driver reports, for the test goroutine to wait on.
type sink struct {
	reads  chan device.Read
	states chan device.State
	drops  chan device.Drop
}

func newSink() *sink {
	return &sink{reads: make(chan device.Read, 16), states: make(chan device.State, 64), drops: make(chan device.Drop, 16)}
}

func (s *sink) Read(r device.Read) { s.reads <- r }
func (s *sink) Drop(d device.Drop) { s.drops <- d }
func (s *sink) State(st device.State) {
	fmt.Printf("state %s %s %s %s\n", st.State, st.Reason, st.Detail, st.At.Format("15:04:05.000"))
	s.states <- st
}

// waitState waits for state (and reason, if not empty) and returns it.
func (s *sink) waitState(t *testing.T, state, reason string, within time.Duration) device.State {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case st := <-s.states:
			if st.State == state && (reason == "" || st.Reason == reason) {
				return st
			}
		case <-deadline:
			t.Fatalf("no state %s %s within %s", state, reason, within)
		}
	}
}

func (s *sink) waitRead(t *testing.T, within time.Duration) device.Read {
	t.Helper()
	select {
	case r := <-s.reads:
		return r
	case d := <-s.drops:
		t.Fatalf("dropped instead of read: %+v", d)
	case <-time.After(within):
		t.Fatalf("no scan within %s", within)
	}
	return device.Read{}
}

// runDevice runs dev until the test ends, and checks that Run then returns nil at once.
func runDevice(t *testing.T, dev device.Device, s *sink) {
	t.Helper()
	devicetest.Run(t, dev, s, 5*time.Second, nil)
}

// host asks the host (QEMU's side) to act.
func host(words ...any) {
	fmt.Println(append([]any{"@@HOST"}, words...)...)
}

func result(name string, v any) {
	fmt.Printf("@@RESULT %s %v\n", name, v)
}

// usbDevice is the sysfs directory of the USB device with the ids, or "".
func usbDevice(vid, pid string) string {
	entries, _ := os.ReadDir("/sys/bus/usb/devices")
	for _, e := range entries {
		dir := "/sys/bus/usb/devices/" + e.Name()
		v, _ := os.ReadFile(dir + "/idVendor")
		p, _ := os.ReadFile(dir + "/idProduct")
		if string(v) == vid+"\n" && string(p) == pid+"\n" {
			return dir
		}
	}
	return ""
}

// waitUSBDevice polls sysfs until the device is there (or not) and returns when it saw it.
func waitUSBDevice(t *testing.T, vid, pid string, present bool, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if (usbDevice(vid, pid) != "") == present {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("USB device %s:%s present=%v not seen within %s", vid, pid, !present, within)
	return time.Time{}
}

// kernelDriver is the kernel driver bound to interface n of the device, or "".
func kernelDriver(dir string, n int) string {
	link, err := os.Readlink(fmt.Sprintf("%s/%s:1.%d/driver", dir, dir[len("/sys/bus/usb/devices/"):], n))
	if err != nil {
		return ""
	}
	return filepath.Base(link)
}
