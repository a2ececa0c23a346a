package usbhid

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/hid"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

// Modes: how the scanner presents itself.
const (
	ModeHIDPOS   = "hidpos"   // HID POS, usage page 0x8C
	ModeKeyboard = "keyboard" // keyboard wedge, read directly (kernel driver detached)
)

// Defaults.
const (
	PollInterval       = time.Second            // how often a missing scanner is looked for
	DefaultPOSGap      = 500 * time.Millisecond // hidpos: a scan waiting this long for more reports is over
	DefaultKeyboardGap = 100 * time.Millisecond // keyboard: no report this long ends a scan
)

// Config is one USB HID scanner.
type Config struct {
	Name         string
	VID, PID     uint16
	SerialNumber string // "" takes the first scanner with the ids
	Mode         string // ModeHIDPOS or ModeKeyboard

	// hidpos
	Layout      hid.Layout        // 0: from the VID (hid.LayoutForVID)
	TriggerBits bool              // Honeywell's output report 4 bit field (layout honeywell)
	Trigger     *trigger.Commands // raw commands, sent in the layout's command reports

	// keyboard
	KeyMap  *hid.KeyMap // nil: US
	HexDump bool        // Honeywell's hex-dump keyboard mode

	AIM bool          // strip a leading AIM identifier from the data and report it
	Gap time.Duration // 0: DefaultPOSGap or DefaultKeyboardGap

	Logger *slog.Logger // nil means slog.Default()
}

// State and drop reasons of this driver (the decoders add their own drop reasons).
const (
	ReasonStart            = "start"             // connecting: Run began
	ReasonUSBUnavailable   = "usb_unavailable"   // connecting: libusb cannot start (no usbfs)
	ReasonNotFound         = "not_found"         // connecting: no device with the ids (and serial number)
	ReasonPermissionDenied = "permission_denied" // connecting: no udev rule gives us the device
	ReasonBusy             = "busy"              // connecting: another program has claimed the interface
	ReasonOpenFailed       = "open_failed"       // connecting: any other failure to open or claim
	ReasonNoInterface      = "no_interface"      // connecting: the device has no interface of the mode (wrong mode set on the scanner?)
	ReasonUnplugged        = "unplugged"         // disconnected: the device went away
	ReasonReadError        = "read_error"        // disconnected: a read failed otherwise
	ReasonStopped          = "stopped"           // stopped: Run's context ended
)

// Errors of Trigger and Untrigger, and of a build without USB; their text is the stable
// reason code.
var (
	ErrNotConnected = errors.New("not_connected")
	ErrNoTrigger    = device.ErrNoTrigger
	ErrNotBuilt     = errors.New("usb_not_built: this build has no USB support (it needs cgo and libusb-1.0)")
)

// Info describes one attached USB device, as List finds it.
type Info struct {
	VID, PID     uint16
	Bus, Address int
	SerialNumber string // "" when it has none or it could not be read
	Manufacturer string
	Product      string
	HID          bool // it has a HID interface
}

// Matches reports whether the configured scanner would take the device i.
func (c *Config) Matches(i Info) bool {
	return i.VID == c.VID && i.PID == c.PID && (c.SerialNumber == "" || c.SerialNumber == i.SerialNumber)
}

// check validates c and fills in its defaults.
func (c *Config) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("usbhid %s: "+format, append([]any{c.Name}, args...)...)
	}
	if c.Name == "" {
		return errors.New("usbhid: missing name")
	}
	if c.VID == 0 {
		return bad("missing VID")
	}
	switch c.Mode {
	case ModeHIDPOS:
		if c.Layout == 0 {
			l, ok := hid.LayoutForVID(c.VID)
			if !ok {
				return bad("no layout given, and none is known for VID %04x", c.VID)
			}
			c.Layout = l
		}
		if c.TriggerBits && c.Layout != hid.Honeywell {
			return bad("the Honeywell trigger report needs the honeywell layout, not %s", c.Layout)
		}
		if c.Gap == 0 {
			c.Gap = DefaultPOSGap
		}
		if c.HexDump || c.KeyMap != nil {
			return bad("hex dump and keyboard layouts are for keyboard mode")
		}
	case ModeKeyboard:
		if c.TriggerBits || c.Trigger != nil {
			return bad("a keyboard-wedge scanner has no host trigger")
		}
		if c.Gap == 0 {
			c.Gap = DefaultKeyboardGap
		}
	default:
		return bad("mode %q is not %s or %s", c.Mode, ModeHIDPOS, ModeKeyboard)
	}
	if c.Trigger != nil && len(c.Trigger.Start) == 0 {
		return bad("trigger without a start command")
	}
	if _, err := c.decoder(); err != nil {
		return bad("%v", err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// decoder is the report decoder of a mode.
type decoder interface {
	Feed(report []byte, out []framing.Output) []framing.Output
	Timeout() time.Duration
	Expire(out []framing.Output) []framing.Output
	Reset(out []framing.Output) []framing.Output
	Pending() bool
}

func (c *Config) decoder() (decoder, error) {
	if c.Mode == ModeKeyboard {
		return hid.NewKeyboard(hid.KeyboardConfig{KeyMap: c.KeyMap, HexDump: c.HexDump, AIM: c.AIM, Gap: c.Gap})
	}
	return hid.NewPOS(hid.POSConfig{Layout: c.Layout, AIM: c.AIM, Gap: c.Gap})
}
