package config

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

var (
	idPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	usbID      = regexp.MustCompile(`^[0-9A-Fa-f]{4}$`)
	baudRates  = map[int]bool{1200: true, 2400: true, 4800: true, 9600: true, 14400: true, 19200: true, 38400: true, 57600: true, 115200: true, 230400: true, 460800: true, 921600: true}
	logLevels  = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}
	parities   = map[string]bool{"none": true, "odd": true, "even": true, "mark": true, "space": true}
	stopBits   = map[string]bool{"1": true, "1.5": true, "2": true}
	driverList = "serial, sim, pcsc, usbhid, idcard"
)

// Validate checks every value and returns every problem found, each naming its key.
func (c *Config) Validate() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) { errs = append(errs, Errorf(key, format, args...)) }

	if !idPattern.MatchString(c.TerminalID) {
		bad("terminal_id", "%q must be 1-64 of A-Z a-z 0-9 . _ -", c.TerminalID)
	}
	if c.StateDir == "" {
		bad("state_dir", "must not be empty")
	}
	if !logLevels[c.Log.Level] {
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "%q is not one of json, text", c.Log.Format)
	}
	if c.Trust.Dir == "" {
		bad("trust.dir", "must not be empty")
	}
	if c.Trust.Staleness <= 0 {
		bad("trust.staleness", "%s must be positive", c.Trust.Staleness)
	}
	if c.Verify.Skew < 0 || c.Verify.Skew > 10*time.Minute {
		bad("verify.skew", "%s is outside 0s..10m", c.Verify.Skew)
	}
	if c.Verify.DuplicateWindow < 0 || c.Verify.DuplicateWindow > time.Minute {
		bad("verify.duplicate_window", "%s is outside 0s..1m", c.Verify.DuplicateWindow)
	}
	for i, p := range c.Codes.InsurancePatterns {
		if _, err := regexp.Compile(p); err != nil {
			bad(fmt.Sprintf("codes.insurance_patterns[%d]", i), "not a valid regular expression: %v", err)
		}
	}
	c.Platform.validate(bad)
	c.API.validate(bad)
	c.Fleet.validate(bad)
	c.Printer.validate(bad)
	c.Outbox.validate(bad)
	c.Applications.validate(c, bad)
	names := map[string]int{}
	for i := range c.Devices {
		c.Devices[i].validate(fmt.Sprintf("devices[%d]", i), names, i, bad)
	}
	return errs
}

func (d *Device) validate(key string, names map[string]int, i int, bad func(string, string, ...any)) {
	if !idPattern.MatchString(d.Name) {
		bad(key+".name", "%q must be 1-64 of A-Z a-z 0-9 . _ -", d.Name)
	} else if j, dup := names[d.Name]; dup {
		bad(key+".name", "%q is already the name of devices[%d]", d.Name, j)
	} else {
		names[d.Name] = i
	}
	switch d.Driver {
	case "serial":
		d.Serial.validate(key+".serial", bad)
		if _, err := d.FramingConfig(); err != nil {
			bad(key+".framing", "%v", err)
		}
		if _, err := d.TriggerCommands(); err != nil {
			bad(key+".trigger", "%v", err)
		}
	case "sim":
		if d.Sim.File == "" {
			bad(key+".sim.file", "must name a file of codes, one per line, or - for standard input")
		}
		if d.Sim.Interval < 0 {
			bad(key+".sim.interval", "%s must not be negative", d.Sim.Interval)
		}
	case "":
		bad(key+".driver", "missing; one of %s", driverList)
	case "pcsc":
		d.PCSC.validate(key+".pcsc", bad)
	case "usbhid":
		d.USB.validate(key+".usb", bad)
		if d.Trigger.Type != "" {
			bad(key+".trigger", "a usbhid device's trigger is usb.trigger")
		}
	case "idcard":
		d.IDCard.validate(key+".idcard", bad)
	default:
		bad(key+".driver", "%q is not a driver (one of %s)", d.Driver, driverList)
	}
}

func (s *Serial) validate(key string, bad func(string, string, ...any)) {
	switch {
	case s.Path == "" && s.VID == "":
		bad(key+".path", "missing: give a path, or vid and pid")
	case s.Path != "" && s.VID != "":
		bad(key+".path", "give a path or vid/pid, not both")
	case s.VID != "" && (!usbID.MatchString(s.VID) || !usbID.MatchString(s.PID)):
		bad(key+".vid", "vid %q and pid %q must each be 4 hex digits", s.VID, s.PID)
	}
	if !baudRates[s.Baud] {
		bad(key+".baud", "%d is not a supported rate", s.Baud)
	}
	if s.DataBits < 5 || s.DataBits > 8 {
		bad(key+".data_bits", "%d is not 5, 6, 7 or 8", s.DataBits)
	}
	if !parities[s.Parity] {
		bad(key+".parity", "%q is not one of none, odd, even, mark, space", s.Parity)
	}
	if !stopBits[s.StopBits] {
		bad(key+".stop_bits", "%q is not one of 1, 1.5, 2", s.StopBits)
	}
}

// FramingConfig is the device's framing for protocol/framing, with the scanner replies
// of its trigger type stripped.
func (d *Device) FramingConfig() (framing.Config, error) {
	f := framing.Config{Type: d.Framing.Type, Gap: d.Framing.Gap, AIM: d.Framing.AIM == nil || *d.Framing.AIM}
	if f.Type == "line" {
		s, err := framing.ParseSuffix(d.Framing.Suffix)
		if err != nil {
			return f, fmt.Errorf("suffix: %v", err)
		}
		f.Suffix = s
	}
	if d.Framing.Prefix != "" {
		p, err := parseHex(d.Framing.Prefix)
		if err != nil {
			return f, fmt.Errorf("prefix: %v", err)
		}
		f.Prefix = p
	}
	if t, err := d.TriggerCommands(); err == nil && t != nil {
		f.Ignore = t.Replies
	}
	if _, err := framing.New(f); err != nil {
		return f, err
	}
	return f, nil
}

// TriggerCommands is the device's host trigger, or nil if it has none.
func (d *Device) TriggerCommands() (*trigger.Commands, error) {
	switch d.Trigger.Type {
	case "":
		return nil, nil
	case "custom":
		c, err := trigger.Custom(d.Trigger.Start, d.Trigger.Stop)
		return &c, err
	}
	c, err := trigger.Lookup(d.Trigger.Type)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func parseHex(s string) ([]byte, error) {
	return hex.DecodeString(strings.NewReplacer(" ", "", ":", "").Replace(s))
}
