// Package hid decodes what USB HID scanners send (SCANNERS.md, "USB HID POS (usage page
// 0x8C, bar code scanner)" and "USB keyboard wedge (HID boot keyboard)"), and builds the
// output reports that trigger them.
//
// Everything here is pure: no I/O, no clock, no globals that change. The driver
// (drivers/usbhid) reads reports from the interrupt endpoint and feeds them in, calls
// Expire when no report has arrived for Timeout(), and Reset when the device goes away;
// the decoders append framing.Output values (scans and drops, with the stable drop
// reasons of protocol/framing plus ReasonBadReport and ReasonBadHex).
//
//   - ParseDescriptor reads a report descriptor: its top-level collections (to pick the
//     0x8C interface of a scanner that also exposes 0xFF8C, or the keyboard one) and the
//     size of each report (output reports are padded to it).
//   - POS reassembles HID POS scans in the three vendor layouts (Layout): Honeywell's
//     64-byte report with a continuation flag, Newland's and Microscan's
//     [id][len][payload] reports whose full payload says "more follows".
//   - Keyboard turns boot-keyboard reports into bytes: a key counts when it goes down,
//     so repeated reports and rollover do no harm; Shift, Caps Lock and AltGr by layout
//     (us, uk, de, fr); Alt + keypad digit runs for non-ASCII; Honeywell's hex-dump mode;
//     a scan ends on Enter or Tab, or at the idle gap.
//
// Bounds: a decoder holds one scan of at most MaxScan bytes (framing.MaxScan unless
// configured lower); anything longer is counted and dropped as too_long, never buffered.
// Scan Data is a fresh slice the caller owns.
package hid
