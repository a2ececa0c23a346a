package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/hid"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

// USB is a USB HID scanner device (SCANNERS.md, "USB HID POS" and "USB keyboard wedge").
// Empty values take the defaults documented in configs/agent.example.yaml.
type USB struct {
	VID            string        `mapstructure:"vid"`
	PID            string        `mapstructure:"pid"`
	SerialNumber   string        `mapstructure:"serial_number"`
	Mode           string        `mapstructure:"mode"`            // hidpos (default) | keyboard
	Layout         string        `mapstructure:"layout"`          // hidpos: honeywell | newland | microscan; "" from the VID
	KeyboardLayout string        `mapstructure:"keyboard_layout"` // keyboard: us (default) | uk | de | fr
	HexDump        bool          `mapstructure:"hex_dump"`        // keyboard: Honeywell's hex-dump mode
	AIM            *bool         `mapstructure:"aim"`             // strip and report AIM ids; default true
	Gap            time.Duration `mapstructure:"gap"`             // 0: 500ms (hidpos), 100ms (keyboard)
	Trigger        Trigger       `mapstructure:"trigger"`         // hidpos only
}

// USB modes.
const (
	USBModeHIDPOS   = "hidpos"
	USBModeKeyboard = "keyboard"
)

// maxUSBGap bounds usb.gap: past a few seconds a "gap" is a scanner left alone.
const maxUSBGap = 10 * time.Second

func (u *USB) validate(key string, bad func(key, format string, args ...any)) {
	if _, _, err := u.IDs(); err != nil {
		bad(key+".vid", "%v", err)
	}
	mode := u.ModeOrDefault()
	switch mode {
	case USBModeHIDPOS:
		if _, err := u.HIDLayout(); err != nil {
			bad(key+".layout", "%v", err)
		}
		if u.KeyboardLayout != "" || u.HexDump {
			bad(key+".mode", "keyboard_layout and hex_dump are for mode keyboard, not hidpos")
		}
	case USBModeKeyboard:
		if u.Layout != "" {
			bad(key+".layout", "is for mode hidpos; a keyboard-wedge scanner has keyboard_layout")
		}
		if _, err := hid.ParseKeyMap(u.KeyboardLayout); err != nil {
			bad(key+".keyboard_layout", "%q is not one of %s", u.KeyboardLayout, strings.Join(hid.KeyMapNames(), ", "))
		}
		if u.Trigger.Type != "" {
			bad(key+".trigger.type", "a keyboard-wedge scanner has no host trigger; use mode hidpos")
		}
	default:
		bad(key+".mode", "%q is not one of hidpos, keyboard", u.Mode)
	}
	if u.Gap < 0 || u.Gap > maxUSBGap {
		bad(key+".gap", "%s is outside 0s..%s", u.Gap, maxUSBGap)
	}
	if mode == USBModeHIDPOS {
		if _, _, err := u.TriggerSetup(); err != nil {
			bad(key+".trigger", "%v", err)
		}
	}
}

// IDs are the configured vendor and product ids.
func (u *USB) IDs() (vid, pid uint16, err error) {
	v, err1 := strconv.ParseUint(u.VID, 16, 16)
	p, err2 := strconv.ParseUint(u.PID, 16, 16)
	if !usbID.MatchString(u.VID) || !usbID.MatchString(u.PID) || err1 != nil || err2 != nil || v == 0 {
		return 0, 0, fmt.Errorf("vid %q and pid %q must each be 4 hex digits", u.VID, u.PID)
	}
	return uint16(v), uint16(p), nil
}

// ModeOrDefault is the mode, hidpos when not set.
func (u *USB) ModeOrDefault() string {
	if u.Mode == "" {
		return USBModeHIDPOS
	}
	return u.Mode
}

// HIDLayout is the HID POS report layout: as configured, or known from the VID.
func (u *USB) HIDLayout() (hid.Layout, error) {
	if u.Layout != "" {
		l, err := hid.ParseLayout(u.Layout)
		if err != nil {
			return 0, fmt.Errorf("%q is not one of %s", u.Layout, strings.Join(hid.LayoutNames(), ", "))
		}
		return l, nil
	}
	vid, _, err := u.IDs()
	if err != nil {
		return 0, err
	}
	l, ok := hid.LayoutForVID(vid)
	if !ok {
		return 0, fmt.Errorf("missing: no layout is known for vid %04x; set one of %s", vid, strings.Join(hid.LayoutNames(), ", "))
	}
	return l, nil
}

// AIMOrDefault says whether AIM identifiers are stripped and reported (default true).
func (u *USB) AIMOrDefault() bool { return u.AIM == nil || *u.AIM }

// TriggerSetup says how the scanner is triggered: type honeywell on the honeywell layout
// is Honeywell's trigger report (bits); any other type's commands travel in the
// layout's command reports; "" is no trigger.
func (u *USB) TriggerSetup() (bits bool, cmds *trigger.Commands, err error) {
	t := u.Trigger
	switch t.Type {
	case "":
		return false, nil, nil
	case "custom":
		c, err := trigger.Custom(t.Start, t.Stop)
		return false, &c, err
	}
	if t.Start != "" || t.Stop != "" {
		return false, nil, fmt.Errorf("start and stop are for type custom, not %q", t.Type)
	}
	if l, err := u.HIDLayout(); err == nil && l == hid.Honeywell && strings.EqualFold(strings.TrimSpace(t.Type), "honeywell") {
		return true, nil, nil
	}
	c, err := trigger.Lookup(t.Type)
	if err != nil {
		return false, nil, err
	}
	return false, &c, nil
}
