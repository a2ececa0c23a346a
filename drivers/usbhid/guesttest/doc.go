// Package guesttest holds the tests of drivers/usbhid that run inside the throw-away
// QEMU guest of scripts/usbtest, on real (emulated) USB: QEMU's usb-kbd on an xHCI
// controller, and a dummy_hcd + configfs HID gadget speaking HID POS. They are built
// only with the usbguest tag (go test -c -tags usbguest), by scripts/usbtest; on any
// other machine they would find no such devices.
//
// The guest asks the host for what only QEMU can do by printing "@@HOST <verb> <args>"
// on the console: "type <hex>" types text on the usb-kbd through QMP, "unplug kbd" and
// "plug kbd" remove and re-add it. Figures go out as "@@RESULT <name> <value>".
package guesttest
