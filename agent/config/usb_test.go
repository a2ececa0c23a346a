package config

import (
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/hid"
)

func usbDevice(t *testing.T, usb string) (*Config, error) {
	t.Helper()
	return Load(write(t, "devices:\n  - name: u\n    driver: usbhid\n    usb:\n"+usb))
}

func TestUSBDefaults(t *testing.T) {
	c, err := usbDevice(t, "      vid: \"0C2E\"\n      pid: \"0b87\"\n")
	if err != nil {
		t.Fatal(err)
	}
	u := c.Devices[0].USB
	vid, pid, err := u.IDs()
	if err != nil || vid != 0x0C2E || pid != 0x0B87 {
		t.Fatalf("ids %04x %04x %v", vid, pid, err)
	}
	if l, err := u.HIDLayout(); err != nil || l != hid.Honeywell || u.ModeOrDefault() != USBModeHIDPOS || !u.AIMOrDefault() {
		t.Fatalf("defaults: layout %v %v, mode %s, aim %v", l, err, u.ModeOrDefault(), u.AIMOrDefault())
	}
	if bits, cmds, err := u.TriggerSetup(); bits || cmds != nil || err != nil {
		t.Fatalf("no trigger configured: %v %v %v", bits, cmds, err)
	}
}

func TestUSBTriggers(t *testing.T) {
	for _, tc := range []struct {
		usb      string
		bits     bool
		start    []byte
		problems string
	}{
		{usb: `{vid: "0c2e", pid: "0001", trigger: {type: honeywell}}`, bits: true},
		{usb: `{vid: "1eab", pid: "0001", trigger: {type: newland}}`, start: []byte{0x7E, 0x00, 0x08, 0x01, 0x00, 0x02, 0x01, 0x02, 0xDA}},
		// honeywell's serial command, carried in the Microscan command report
		{usb: `{vid: "1234", pid: "0001", layout: microscan, trigger: {type: honeywell}}`, start: []byte{0x16, 'T', '\r'}},
		{usb: `{vid: "1234", pid: "0001", layout: microscan, trigger: {type: custom, start: "3C 2B 3E"}}`, start: []byte("<+>")},
		{usb: `{vid: "1234", pid: "0001", layout: microscan, trigger: {type: newland, start: "00"}}`, problems: "devices[0].usb.trigger: start and stop are for type custom"},
		{usb: `{vid: "1234", pid: "0001", layout: microscan, trigger: {type: zebra}}`, problems: "devices[0].usb.trigger: trigger: type"},
	} {
		c, err := Load(write(t, "devices:\n  - name: u\n    driver: usbhid\n    usb: "+tc.usb+"\n"))
		if tc.problems != "" {
			if err == nil || !strings.Contains(err.Error(), tc.problems) {
				t.Errorf("%s: %v, want %q", tc.usb, err, tc.problems)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.usb, err)
			continue
		}
		bits, cmds, err := c.Devices[0].USB.TriggerSetup()
		if err != nil || bits != tc.bits || (tc.start != nil) != (cmds != nil) || cmds != nil && string(cmds.Start) != string(tc.start) {
			t.Errorf("%s: bits %v cmds %+v err %v", tc.usb, bits, cmds, err)
		}
	}
}

func TestUSBProblemsAreNamed(t *testing.T) {
	for usb, want := range map[string]string{
		`{vid: "0c2e"}`:                                                          "devices[0].usb.vid:",
		`{vid: "12345", pid: "0001"}`:                                            "devices[0].usb.vid:",
		`{vid: "0000", pid: "0001"}`:                                             "devices[0].usb.vid:",
		`{vid: "1234", pid: "0001"}`:                                             "devices[0].usb.layout: missing: no layout is known for vid 1234",
		`{vid: "1234", pid: "1", layout: zebra}`:                                 "devices[0].usb.layout:",
		`{vid: "0c2e", pid: "0001", mode: serial}`:                               "devices[0].usb.mode:",
		`{vid: "0c2e", pid: "0001", hex_dump: true}`:                             "devices[0].usb.mode: keyboard_layout and hex_dump are for mode keyboard",
		`{vid: "0c2e", pid: "0001", mode: keyboard, layout: honeywell}`:          "devices[0].usb.layout: is for mode hidpos",
		`{vid: "0c2e", pid: "0001", mode: keyboard, keyboard_layout: jp}`:        "devices[0].usb.keyboard_layout:",
		`{vid: "0c2e", pid: "0001", mode: keyboard, trigger: {type: honeywell}}`: "devices[0].usb.trigger.type: a keyboard-wedge scanner has no host trigger",
		`{vid: "0c2e", pid: "0001", gap: 11s}`:                                   "devices[0].usb.gap:",
		`{vid: "0c2e", pid: "0001", colour: red}`:                                "devices[0].usb.colour: unknown key",
	} {
		_, err := Load(write(t, "devices:\n  - name: u\n    driver: usbhid\n    usb: "+usb+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", usb, err, want)
		}
	}
}

func TestUSBKeyboard(t *testing.T) {
	c, err := usbDevice(t, "      {vid: \"0627\", pid: \"0001\", mode: keyboard, keyboard_layout: de, hex_dump: true, aim: false, gap: 250ms}\n")
	if err != nil {
		t.Fatal(err)
	}
	u := c.Devices[0].USB
	if u.ModeOrDefault() != USBModeKeyboard || u.KeyboardLayout != "de" || !u.HexDump || u.AIMOrDefault() || u.Gap != 250*time.Millisecond {
		t.Fatalf("%+v", u)
	}
}
