package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.bug.st/serial/enumerator"
)

func runDoctorWith(t *testing.T, ports func() ([]*enumerator.PortDetails, error)) (string, error) {
	t.Helper()
	cmd := newDoctorCmd([]doctorCheck{doctorSerialPorts(ports)})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true // as under rootCmd
	err := cmd.Execute()
	return out.String(), err
}

func TestDoctorListsSerialPorts(t *testing.T) {
	out, err := runDoctorWith(t, func() ([]*enumerator.PortDetails, error) {
		return []*enumerator.PortDetails{
			{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0C2E", PID: "0B61", SerialNumber: "17290B0A23", Manufacturer: "Honeywell", Product: "Xenon 1900"},
			{Name: "/dev/ttyS0"},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CHECK", "STATUS", "DETAIL",
		"serial ports", "pass", "2 found",
		"serial /dev/ttyUSB0", `usb vid=0c2e pid=0b61 serial=17290B0A23 product="Honeywell Xenon 1900"`,
		"serial /dev/ttyS0", "not USB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorStatuses(t *testing.T) {
	out, err := runDoctorWith(t, func() ([]*enumerator.PortDetails, error) { return nil, nil })
	if err != nil || !strings.Contains(out, "warn") {
		t.Fatalf("no ports: %v\n%s", err, out)
	}
	out, err = runDoctorWith(t, func() ([]*enumerator.PortDetails, error) { return nil, errors.New("no sysfs") })
	if err != errSomeInvalid || !strings.Contains(out, "fail") || !strings.Contains(out, "no sysfs") {
		t.Fatalf("enumeration failure: %v\n%s", err, out)
	}
}
