package usbhid

import (
	"fmt"
	"strings"

	"github.com/ehc-agent/ehc-agent/protocol/hid"
)

// ReasonKeyboardMode (connecting): a scanner configured for HID POS presents itself
// only as a HID keyboard, the factory setting of most scanners; it is set to HID POS
// (or USB-COM) by scanning a configuration code from the vendor's manual.
const ReasonKeyboardMode = "keyboard_mode"

// Interface descriptor values (HID 1.11, 4.2 and 4.3).
const (
	subclassBoot     = 1
	protocolKeyboard = 1
)

// Interface is what the driver reads of one HID interface of a device when it picks
// one: the interface descriptor's subclass and protocol, and the report descriptor.
type Interface struct {
	Number   int
	SubClass uint8           // 1: the interface supports a boot protocol
	Protocol uint8           // with SubClass 1: 1 keyboard, 2 mouse
	Report   *hid.Descriptor // nil: it could not be read or parsed
}

// IsKeyboard reports whether the interface is a keyboard: a generic-desktop keyboard
// collection, or, when the report descriptor could not be read, the boot keyboard
// protocol.
func (i Interface) IsKeyboard() bool {
	if i.Report != nil {
		return i.Report.Has(hid.Usage{Page: hid.PageGenericDesktop, ID: hid.UsageKeyboard})
	}
	return i.SubClass == subclassBoot && i.Protocol == protocolKeyboard
}

// IsPOS reports whether the interface is a HID POS bar code scanner (usage page 0x8C;
// a vendor 0xFF8C interface beside it is not).
func (i Interface) IsPOS() bool { return i.Report != nil && i.Report.HasPage(hid.PagePOS) }

func (i Interface) String() string {
	switch {
	case i.Report != nil:
		return fmt.Sprintf("interface %d: %v", i.Number, i.Report.Collections)
	case i.IsKeyboard():
		return fmt.Sprintf("interface %d: boot keyboard", i.Number)
	}
	return fmt.Sprintf("interface %d: descriptor unreadable", i.Number)
}

// KeyboardOnly reports whether a device with these HID interfaces is a scanner left in
// keyboard mode: it has a keyboard interface and nothing on the POS usage page. A device
// with neither (a vendor interface only) is not: that is another device, or another
// mode, and no_interface says so.
func KeyboardOnly(ifs []Interface) bool {
	kbd := false
	for _, i := range ifs {
		if i.IsPOS() {
			return false
		}
		kbd = kbd || i.IsKeyboard()
	}
	return kbd
}

// noPOSInterface is the reason and detail when a device has no interface of mode
// hidpos: keyboard_mode when it is a keyboard only, else no_interface.
func noPOSInterface(vid, pid uint16, ifs []Interface) (reason, detail string) {
	list := make([]string, len(ifs))
	for k, i := range ifs {
		list[k] = i.String()
	}
	if KeyboardOnly(ifs) {
		return ReasonKeyboardMode, fmt.Sprintf("%04x:%04x enumerates only as a HID keyboard (%s), not as a HID POS scanner",
			vid, pid, strings.Join(list, "; "))
	}
	return ReasonNoInterface, fmt.Sprintf("no %s interface (%d HID interfaces: %s)", ModeHIDPOS, len(ifs), strings.Join(list, "; "))
}
