package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
)

func runDoctorUSB(t *testing.T, list func() ([]usbhid.Info, error), configPath string) (string, error) {
	t.Helper()
	cmd := newDoctorCmd([]doctorCheck{doctorUSB(list, func() string { return configPath })})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return out.String(), err
}

func usbConfig(t *testing.T, devices string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte("state_dir: "+t.TempDir()+"\ndevices:\n"+devices), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDoctorUSBListsAndMatches(t *testing.T) {
	if !usbhid.Built {
		t.Skip("this build has no USB driver")
	}
	cfg := usbConfig(t, `
  - name: window-pos
    driver: usbhid
    usb: {vid: "0c2e", pid: "0b87", serial_number: "HPOS-0001"}
  - name: absent
    driver: usbhid
    usb: {vid: "1eab", pid: "0d10"}
`)
	list := func() ([]usbhid.Info, error) {
		return []usbhid.Info{
			{VID: 0x0C2E, PID: 0x0B87, Bus: 3, Address: 2, SerialNumber: "HPOS-0001", Manufacturer: "Honeywell", Product: "Xenon", HID: true},
			{VID: 0x0627, PID: 0x0001, Bus: 1, Address: 4, HID: true},
		}, nil
	}
	out, err := runDoctorUSB(t, list, cfg)
	if err != errSomeInvalid {
		t.Fatalf("a configured scanner is missing: want exit 1, got %v\n%s", err, out)
	}
	for _, want := range []string{
		"usb devices", "2 found",
		"usb 003:002", `vid=0c2e pid=0b87 serial=HPOS-0001 product="Honeywell Xenon" hid scanner=window-pos`,
		"usb 001:004", "vid=0627 pid=0001 hid",
		"scanner window-pos", "pass", "usbhid vid=0c2e pid=0b87 serial=HPOS-0001 is usb 003:002",
		"scanner absent", "fail", "usbhid vid=1eab pid=0d10: no attached USB device matches",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorUSBStatuses(t *testing.T) {
	noUSB := func() ([]usbhid.Info, error) { return nil, errors.New("libusb: no usbfs") }
	out, err := runDoctorUSB(t, noUSB, "")
	if err != nil || !strings.Contains(out, "warn") || !strings.Contains(out, "no usbfs") {
		t.Fatalf("no USB and no scanner configured is a warning: %v\n%s", err, out)
	}
	out, err = runDoctorUSB(t, func() ([]usbhid.Info, error) { return nil, nil }, "")
	if err != nil || !strings.Contains(out, "none found") {
		t.Fatalf("no devices: %v\n%s", err, out)
	}
	bad := usbConfig(t, "  - {name: x, driver: usbhid, usb: {vid: nope}}\n")
	out, err = runDoctorUSB(t, noUSB, bad)
	if err != errSomeInvalid || !strings.Contains(out, "configuration refused") {
		t.Fatalf("bad configuration: %v\n%s", err, out)
	}
}

// doctor takes --config for the USB rows; doctor.go, initialised first, made the command.
func TestDoctorUSBConfigFlag(t *testing.T) {
	c, _, err := rootCmd.Find([]string{"doctor"})
	if err != nil || c.Flags().Lookup("config") == nil {
		t.Fatalf("doctor has no --config: %v", err)
	}
	if err := c.Flags().Set("config", "/etc/ehc-agent/agent.yaml"); err != nil {
		t.Fatal(err)
	}
	defer c.Flags().Set("config", "")
	if got := doctorConfigPath(); got != "/etc/ehc-agent/agent.yaml" {
		t.Fatalf("doctorConfigPath() = %q", got)
	}
}
