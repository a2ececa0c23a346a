// Package vscanner is a virtual serial QR scanner behind a real kernel pty: the device
// side of SCANNERS.md, "Serial", for tests, the demo and `ehc-agent sim scanner`
// (DESIGN.md, "Virtual devices: … Serial").
//
// A Scanner owns the master side of a pty. The host (the serial driver under test, or a
// running agent) opens the slave path, or the optional stable symlink, exactly as it
// would open /dev/ttyUSB0; nothing in the host knows it is talking to a simulator.
//
// What it does, and the kernel facts it relies on:
//   - The slave is set raw when the pty is created: a new slave is in cooked mode (echo,
//     CR→NL), which would echo scans back and turn CR suffixes into LF before the host
//     has had a chance to set its own mode.
//   - The scanner keeps its own slave descriptor open while plugged, so bytes sent before
//     the host opens the port wait in the kernel, and reading the master never fails with
//     EIO just because no host has the port open.
//   - Scans are framed as "line" (prefix, AIM id, payload, suffix), "idle" (payload, then
//     silence for Gap) or "ssi" (Zebra SSI DECODE_DATA packets; scans over 250 bytes as
//     multipacket segments, opcode 73, or optionally as DECODE_DATA packets with the
//     continuation bit). In SSI each packet waits for the host's ACK and is resent, with
//     the retransmit bit, after a NAK or a timeout.
//   - Output is paced at Baud with 10 bits per byte (start, 8 data, stop), in chunks of
//     about a millisecond, so a test at 115200 sees the byte timing of a real line.
//   - Pull closes the master: the host's blocked Read returns (go.bug.st/serial reports
//     PortClosed) and bytes not yet read are discarded, as with a real cable. Plug makes a
//     new pty and points the symlink at it. The kernel reuses the lowest free /dev/pts
//     number, so with ForceNewName a replug holds spare ptys open until it gets a name
//     other than the previous one, which is what a test of re-resolution needs.
//   - Everything the host writes (trigger commands, SSI ACK/NAK) is recorded (Received,
//     WaitReceived), handed to OnHost, and answered by the configured Responses.
//
// Every goroutine a Scanner starts (one reader per plugged pty) ends at Pull or Close.
// The pty part needs Linux; elsewhere New returns an error.
package vscanner
