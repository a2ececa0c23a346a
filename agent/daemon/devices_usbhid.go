//go:build cgo

package daemon

import (
	"errors"
	"log/slog"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
	"github.com/ehc-agent/ehc-agent/protocol/hid"
)

// The USB driver needs cgo and libusb: builds without cgo (Windows) lack this file, and
// checkDrivers refuses a configuration that asks for "usbhid" there.
func init() {
	register("usbhid", func(c config.Device, log *slog.Logger) (device.Device, error) {
		if c.Trigger.Type != "" {
			return nil, errors.New("trigger: a usbhid device's trigger is usb.trigger, not trigger")
		}
		u := c.USB
		vid, pid, err := u.IDs()
		if err != nil {
			return nil, err
		}
		dc := usbhid.Config{
			Name: c.Name, VID: vid, PID: pid, SerialNumber: u.SerialNumber, Mode: u.ModeOrDefault(),
			HexDump: u.HexDump, AIM: u.AIMOrDefault(), Gap: u.Gap, Logger: log,
		}
		if dc.Mode == usbhid.ModeHIDPOS {
			if dc.Layout, err = u.HIDLayout(); err != nil {
				return nil, err
			}
			if dc.TriggerBits, dc.Trigger, err = u.TriggerSetup(); err != nil {
				return nil, err
			}
		} else if dc.KeyMap, err = hid.ParseKeyMap(u.KeyboardLayout); err != nil {
			return nil, err
		}
		return usbhid.New(dc)
	})
}
