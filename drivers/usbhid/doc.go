// Package usbhid is the driver for USB HID scanners (SCANNERS.md, "USB HID POS (usage
// page 0x8C, bar code scanner)" and "USB keyboard wedge (HID boot keyboard)"), on
// github.com/google/gousb and libusb-1.0. It needs cgo: a build without it (the Windows
// build, CGO_ENABLED=0) has List and Config but no Device, and the daemon refuses a
// configuration that asks for the usbhid driver.
//
// A Device owns one scanner and its reconnect loop, and nothing else: it reads reports
// from the interrupt IN endpoint, hands them to a protocol/hid decoder (POS for "hidpos",
// Keyboard for "keyboard") and passes what comes out to a device.Sink. It knows nothing
// of codes.
//
// Guarantees:
//   - The scanner is found by VID and PID (and serial number, when configured). gousb has
//     no hot-plug API, so a missing scanner is looked for again every PollInterval (1 s),
//     each time with a fresh libusb context: without udevd (the test guest, containers)
//     a long-lived context never learns of a device plugged in after it started.
//   - The interface is chosen by its report descriptor: "hidpos" takes the one with a
//     top-level collection on usage page 0x8C and ignores a 0xFF8C one of the same
//     device; "keyboard" takes the generic-desktop keyboard (or, with a descriptor that
//     cannot be read, the boot keyboard protocol). A "hidpos" scanner that enumerates as
//     a keyboard only (KeyboardOnly, a pure function of its interfaces) is reported as
//     keyboard_mode: it was left at its factory keyboard mode. The kernel driver of each
//     interface looked at is detached as it is claimed and attached again on release
//     (libusb's auto-detach; interfaces never claimed are not touched), which keeps wedge
//     scans out of the focused window while the driver reads. A device found without an
//     interface of the mode (every report descriptor read) is not claimed again while it
//     stays at its bus address: a scanner left in keyboard mode keeps its keyboard, not
//     re-created by the kernel every PollInterval; set to another mode, it enumerates
//     again at a new address and is looked at afresh.
//   - Lend (device.Lender, device.Loan) gives the scanner to another program for a while
//     (the medical-insurance SDK opens it itself, through hidraw or libusb): reports
//     already read, a scan in progress and reports the scanner queued before the lend
//     (the endpoint quiet for lendSettle) are decoded first, within device.LendGrace;
//     the interface is then released (its kernel driver back on it) and the device
//     closed, the state is "lent", and nothing is opened or polled until Reclaim or the
//     deadline; the scanner is then opened again at once.
//   - Reads are cancellable: cancelling Run's context cancels the transfer in flight,
//     and Run reports "stopped" and returns nil once the reader goroutine has ended and
//     the device is closed. A device that vanishes mid-read ends that read with
//     "unplugged"; the decoder's partial scan is reported as a drop.
//   - Trigger and Untrigger send output reports: Honeywell's bit field (report 4) or
//     raw commands in the layout's command report, on the interrupt OUT endpoint if the
//     interface has one, else with SET_REPORT; each report is padded to the length its
//     descriptor declares.
//   - The sink is called only from Run's goroutine.
//
// Run, Trigger and Untrigger may be called concurrently; Run must run once at a time.
package usbhid
