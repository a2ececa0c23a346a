//go:build usbqemu

package usbtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// guestTests are the cases of drivers/usbhid/guesttest that must pass: a run that passes
// fewer (a test skipped, a case filtered away) fails here.
var guestTests = []string{
	"TestKeyboardWedge", "TestKeyboardReplug", "TestKeyboardModeDetected",
	"TestHIDPOSGadget", "TestHIDPOSReplug", "TestHIDPOSLend",
}

// TestUSBGuest builds the guest (kernel, modules, static /init, the guest test binary and
// its libraries), boots it under TCG with QEMU's xHCI and usb-kbd, serves its requests
// through QMP, and checks that every USB case passed inside it.
func TestUSBGuest(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("qemu-system-x86_64 is missing; CI must run scripts/install-usb-deps.sh")
		}
		t.Skip("qemu-system-x86_64 is missing (bash scripts/install-usb-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	t0 := time.Now()

	gobuild := func(env []string, args ...string) {
		t.Helper()
		c := exec.CommandContext(ctx, "go", args...)
		c.Dir = "../.."
		c.Env = append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	initBin, guestBin := filepath.Join(dir, "init"), filepath.Join(dir, "guest.test")
	gobuild([]string{"CGO_ENABLED=0"}, "build", "-o", initBin, "./scripts/usbtest/guestinit")
	gobuild([]string{"CGO_ENABLED=1"}, "test", "-c", "-tags", "usbguest", "-o", guestBin, "./drivers/usbhid/guesttest")
	vmlinuz, modDir, err := Kernel(ctx, "kernel.sh")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := Modules(modDir, GuestModules...)
	if err != nil {
		t.Fatal(err)
	}
	libs, err := SharedLibs(ctx, guestBin)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"bin/guest.test": guestBin}
	var ldPath []string
	for _, l := range libs {
		files[l] = l
		if d := filepath.Dir(l); !contains(ldPath, d) {
			ldPath = append(ldPath, d)
		}
	}
	initrd := filepath.Join(dir, "initrd")
	im := Image{
		Init:    initBin,
		Command: []string{"LD_LIBRARY_PATH=" + strings.Join(ldPath, ":"), "/bin/guest.test", "-test.v", "-test.timeout=150s", "-test.count=1"},
		Files:   files,
		Modules: mods,
	}
	if err := im.Write(initrd); err != nil {
		t.Fatal(err)
	}
	built := time.Since(t0)

	var console strings.Builder
	g := Guest{
		QEMU: qemu, Kernel: vmlinuz, Initrd: initrd, Dir: dir,
		Devices: []string{"qemu-xhci,id=xhci", "usb-kbd,bus=xhci.0,id=kbd"},
		Log:     &console,
		Host:    serveGuest,
	}
	res, err := g.Run(ctx)
	defer func() {
		if t.Failed() {
			t.Logf("guest console:\n%s", console.String())
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build %s; guest: kernel to /init %s, modules loaded at %s, QEMU wall time %s",
		built.Round(time.Millisecond), res.Boot, res.Ready, res.Wall.Round(time.Millisecond))
	for _, m := range regexp.MustCompile(`@@RESULT (\S+) (\S+)`).FindAllStringSubmatch(console.String(), -1) {
		t.Logf("%s: %s", m[1], m[2])
	}
	for _, name := range guestTests {
		if !strings.Contains(console.String(), "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass in the guest", name)
		}
	}
	if res.Exit != 0 {
		t.Fatalf("guest tests exited %d", res.Exit)
	}
}

// serveGuest does what the guest asks of QEMU.
func serveGuest(ctx context.Context, q *QMP, w []string) error {
	switch {
	case len(w) == 2 && w[0] == "type":
		text, err := hex.DecodeString(w[1])
		if err != nil {
			return err
		}
		return q.Type(ctx, string(text), 80*time.Millisecond)
	case len(w) == 2 && w[0] == "unplug" && w[1] == "kbd":
		if _, err := q.Execute(ctx, "device_del", map[string]any{"id": "kbd"}); err != nil {
			return err
		}
		_, err := q.WaitEvent(ctx, "DEVICE_DELETED")
		return err
	case len(w) == 2 && w[0] == "plug" && w[1] == "kbd":
		_, err := q.Execute(ctx, "device_add", map[string]any{"driver": "usb-kbd", "bus": "xhci.0", "id": "kbd"})
		return err
	}
	return fmt.Errorf("unknown request %q", w)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
