package usbtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// GuestModules are the kernel modules the guest loads, dependencies resolved by Modules:
// the xHCI host QEMU's usb-kbd hangs on, the HID drivers (bound first, so that the
// driver under test has a kernel driver to detach), and dummy_hcd with the configfs HID
// gadget for HID POS; the gadget also has a CDC ACM function, bound to the host's
// cdc_acm, as an interface the driver must leave alone.
var GuestModules = []string{
	"usbcore", "xhci_pci", "usbhid", "hid_generic", "cdc_acm",
	"configfs", "libcomposite", "usb_f_hid", "usb_f_acm", "dummy_hcd",
}

// Kernel runs kernel.sh (beside this file) and returns the extracted package's
// directory, with the vmlinuz and the modules directory in it.
func Kernel(ctx context.Context, script string) (vmlinuz, modDir string, err error) {
	out, err := exec.CommandContext(ctx, "bash", script).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", "", fmt.Errorf("%s: %w\n%s", script, err, stderr)
	}
	dir := strings.TrimSpace(string(out))
	k, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	m, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*"))
	if len(k) != 1 || len(m) != 1 {
		return "", "", fmt.Errorf("%s: want one vmlinuz and one modules directory in %s", script, dir)
	}
	return k[0], m[0], nil
}

// SharedLibs lists the shared libraries a dynamic binary loads, its ELF interpreter
// included, as ldd resolves them on this host (the guest gets the same files at the same
// paths).
func SharedLibs(ctx context.Context, binary string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", binary).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", binary, err, out)
	}
	re := regexp.MustCompile(`(?m)(?:=>\s*)?(/\S+)\s+\(0x`)
	var libs []string
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs, nil
}

// Image is what goes into the guest's initramfs.
type Image struct {
	Init    string            // the static /init
	Command []string          // what /init runs; Command[0] is a path inside the guest
	Files   map[string]string // guest path → host file (the test binary, libraries)
	Modules []string          // .ko files in load order
}

// Write writes the initramfs to path.
func (im Image) Write(path string) error {
	var buf bytes.Buffer
	a := NewInitramfs(&buf)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "bin"} {
		a.Dir(d)
	}
	a.CharDev("dev/console", 0o600, 5, 1)
	a.CharDev("dev/null", 0o666, 1, 3)
	add := func(guest, host string, perm os.FileMode) error {
		b, err := os.ReadFile(host)
		if err != nil {
			return err
		}
		return a.File(guest, perm, b)
	}
	if err := add("init", im.Init, 0o755); err != nil {
		return err
	}
	for guest, host := range im.Files {
		if err := add(guest, host, 0o755); err != nil {
			return err
		}
	}
	var load strings.Builder
	for _, m := range im.Modules {
		guest := "lib/modules/" + filepath.Base(m)
		if err := add(guest, m, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&load, "/%s\n", guest)
	}
	a.File("modules.load", 0o644, []byte(load.String()))
	a.File("guest.cmd", 0o644, []byte(strings.Join(im.Command, " ")+"\n"))
	if err := a.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
