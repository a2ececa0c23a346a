// Package printer drives an ESC/POS receipt printer (PRINTERS.md) over a serial port
// (RS-232, USB-CDC or a USB-serial bridge, on go.bug.st/serial), the USB printer class
// device (/dev/usb/lp0: plain file I/O) or raw TCP port 9100.
//
// The printer is an output device, not a reader: a Printer has no run loop and no
// goroutine of its own. Open checks the configuration only; every Status and Print
// connects anew and lets go afterwards, because printers are switched off, run out of
// paper and are replugged between receipts, and a network printer serves one
// connection at a time.
//
// Guarantees:
//   - Print asks the paper status first (`DLE EOT 4`, then `DLE EOT 1` for offline) and
//     writes nothing when the paper is out or the printer is offline: nothing is ever
//     half-printed for those reasons. The receipt is checked with escpos.Parse before
//     anything is sent, and written in one write.
//   - Errors that reach the kiosk are *Error with a stable Reason: paper_out, offline
//     (the printer says so, or the connection broke during the job), not_connected (no
//     device, no port with the USB ids, nothing listening at the address) and timeout
//     (connected, but no status answer or no end of the write in time), each with a
//     detail for the log.
//   - One operation at a time; others wait for it, or for their context. Every
//     operation is bounded by Config.Timeout (plus the time the receipt takes on the
//     wire at the configured baud) and by its context; Close ends the one in progress
//     and waits for it, so nothing of the Printer outlives Close.
//
// drivers/printer/vprinter is the virtual printer the tests and `ehc-agent sim printer`
// print to.
package printer
