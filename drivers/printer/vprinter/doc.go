// Package vprinter is a virtual ESC/POS receipt printer (PRINTERS.md) behind the real
// OS stack: a kernel pty, which the driver opens as a serial port or as a USB printer
// class device, or a TCP listener, like a network printer's port 9100. Tests and
// `ehc-agent sim printer` print to it; nothing in the driver knows it is a simulator.
//
// What it does:
//   - Reads the byte stream command by command (escpos.Next) and answers the status
//     requests at once: DLE EOT 1–4 (paper status per PRINTERS.md: bits 2–3 near end,
//     5–6 out) and GS r 1/2. With Mute it answers nothing, like a device that is not a
//     printer or a line at the wrong baud.
//   - Everything else is the job: it is kept while there is paper and the printer is
//     online, up to and including the cut, then parsed (escpos.Parse) and recorded as a
//     Job, with Bytes equal to what the host wrote less the status requests. Data that
//     arrives while the paper is out or the printer is offline is discarded and counted
//     (a real printer would hold it until the paper is loaded; a test wants to see that
//     nothing was sent); paper running out in the middle of a job ends the job there,
//     with an error: a half-printed receipt.
//   - Everything the host wrote is also kept as is (Received, at most the last MiB).
//
// Ownership: New* starts one goroutine (the pty reader, or the TCP acceptor which
// serves one connection at a time, as printers do); Close ends it and waits for it.
// OnJob is called from that goroutine. The pty mode needs Linux.
package vprinter
