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
//     (us, uk, de, fr); dead keys; Alt + keypad digit runs for non-ASCII; Honeywell's
//     hex-dump mode; a scan ends on Enter or Tab, or at the idle gap.
//
// Dead keys compose as Windows composes them, since a scanner set to a country layout
// types what that layout needs on Windows (kbdgr, kbdfr): de has ´ and ` (0x2E, plain
// and Shift) and ^ (0x35); fr has ^ and ¨ (0x2F, plain and Shift). AltGr's ~ and ` are
// plain characters on both, so no layout here composes ñ or ã; us and uk have no dead
// keys. A dead key types nothing until the next key: a letter its accent goes on
// becomes one character (´ e is é, Shift too, and Caps Lock turns the letter first);
// space gives the accent alone; any other character gives the accent then itself; a
// second dead key gives both accents; a control character, an Alt code, Enter, Tab and
// the idle gap come after the accent. The decoder holds at most one waiting accent.
//
// Alt codes follow Windows' two conventions. Alt + 0nnn (a leading zero) is the ANSI
// code page, Windows-1252 on the Western layouts these scanners are set to: it arrives
// as UTF-8 (Alt+0233 is C3 A9, é), because scans are classified as text
// (protocol/codes accepts UTF-8 only) and the raw byte E9 would make a whole payload
// bad_bytes; the five bytes 1252 leaves undefined give U+0081 and so on, as Windows
// types them. Alt + nnn without a leading zero is the OEM code page, which on the
// Chinese Windows these kiosks run is GBK (936): a value up to 255 is that byte and one
// over 255 a double-byte character, high byte first (Alt+45217 is B0 A1, 啊), passed on
// as the scanner's bytes, not decoded, since nothing here can tell GBK from another OEM
// page. Hex-dump mode is the robust way to carry such bytes (SCANNERS.md).
//
// Bounds: a decoder holds one scan of at most MaxScan bytes (framing.MaxScan unless
// configured lower); anything longer is counted and dropped as too_long, never buffered.
// Scan Data is a fresh slice the caller owns.
package hid
