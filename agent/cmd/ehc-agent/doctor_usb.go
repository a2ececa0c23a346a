package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
)

// The USB rows of `ehc-agent doctor`: the attached USB devices with their ids, and,
// with --config, whether each configured usbhid scanner matches one of them.
func init() {
	// The configuration the service runs when none is given, as the other checks do.
	doctorChecks = append(doctorChecks, doctorUSB(usbhid.List, func() string { return installedConfig(doctorConfigPath()) }))
	// doctor.go (sorted before this file, so initialised first) made the command; the
	// flag is added here, unless another check already gave doctor one.
	if c, _, err := rootCmd.Find([]string{"doctor"}); err == nil && c.Name() == "doctor" && c.Flags().Lookup("config") == nil {
		c.Flags().StringP("config", "c", "", "agent configuration (YAML): check that its USB scanners are attached")
	}
}

// doctorConfigPath is the doctor's --config, "" if not given.
func doctorConfigPath() string {
	c, _, err := rootCmd.Find([]string{"doctor"})
	if err != nil {
		return ""
	}
	p, _ := c.Flags().GetString("config")
	return p
}

// doctorUSB lists USB devices (hubs left out) and matches the configured scanners
// against them; list and configPath are injectable for tests.
func doctorUSB(list func() ([]usbhid.Info, error), configPath func() string) doctorCheck {
	return func(context.Context) []doctorResult {
		scanners, rows := doctorUSBScanners(configPath())
		devs, err := list()
		if err != nil {
			status := doctorWarn
			if len(scanners) > 0 {
				status = doctorFail
			}
			return append(rows, doctorResult{"usb devices", status, "cannot list: " + err.Error()})
		}
		status, detail := doctorPass, fmt.Sprintf("%d found", len(devs))
		if len(devs) == 0 {
			status, detail = doctorWarn, "none found (hubs aside): is the scanner plugged in?"
		}
		rows = append(rows, doctorResult{"usb devices", status, detail})
		matched := make([]string, len(scanners))
		for _, d := range devs {
			var names []string
			for i, s := range scanners {
				if s.cfg.Matches(d) {
					names = append(names, s.cfg.Name)
					if matched[i] == "" {
						matched[i] = usbWhere(d)
					}
				}
			}
			detail := usbDetail(d)
			if len(names) > 0 {
				detail += " scanner=" + strings.Join(names, ",")
			}
			rows = append(rows, doctorResult{"usb " + usbWhere(d), doctorInfo, detail})
		}
		for i, s := range scanners {
			if matched[i] != "" {
				rows = append(rows, doctorResult{"scanner " + s.cfg.Name, doctorPass, "usbhid " + s.want + " is usb " + matched[i]})
			} else {
				rows = append(rows, doctorResult{"scanner " + s.cfg.Name, doctorFail, "usbhid " + s.want + ": no attached USB device matches"})
			}
		}
		return rows
	}
}

type usbScanner struct {
	cfg  usbhid.Config
	want string // "vid=0c2e pid=0b87 serial=…"
}

// doctorUSBScanners reads the usbhid devices of the configuration at path; rows say what
// went wrong, or that there is no configuration to check.
func doctorUSBScanners(path string) ([]usbScanner, []doctorResult) {
	if path == "" {
		return nil, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, []doctorResult{{"usb scanners", doctorFail, "configuration refused: " + strings.ReplaceAll(err.Error(), "\n", "; ")}}
	}
	var list []usbScanner
	var rows []doctorResult
	for _, d := range cfg.Devices {
		if d.Driver != "usbhid" {
			continue
		}
		if !usbhid.Built {
			rows = append(rows, doctorResult{"scanner " + d.Name, doctorFail, "driver usbhid is not in this build (it needs cgo and libusb)"})
			continue
		}
		vid, pid, _ := d.USB.IDs() // Load validated them
		want := fmt.Sprintf("vid=%04x pid=%04x", vid, pid)
		if d.USB.SerialNumber != "" {
			want += " serial=" + d.USB.SerialNumber
		}
		list = append(list, usbScanner{usbhid.Config{Name: d.Name, VID: vid, PID: pid, SerialNumber: d.USB.SerialNumber}, want})
	}
	return list, rows
}

func usbWhere(d usbhid.Info) string { return fmt.Sprintf("%03d:%03d", d.Bus, d.Address) }

func usbDetail(d usbhid.Info) string {
	s := []string{fmt.Sprintf("vid=%04x pid=%04x", d.VID, d.PID)}
	if d.SerialNumber != "" {
		s = append(s, "serial="+d.SerialNumber)
	}
	if name := strings.TrimSpace(d.Manufacturer + " " + d.Product); name != "" {
		s = append(s, fmt.Sprintf("product=%q", name))
	}
	if d.HID {
		s = append(s, "hid")
	}
	return strings.Join(s, " ")
}
