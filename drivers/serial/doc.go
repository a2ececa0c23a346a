// Package serial is the driver for serial QR scanners: RS-232, USB-CDC virtual COM ports
// and USB-serial bridges (SCANNERS.md, "Serial"), on go.bug.st/serial.
//
// A Device owns one port and its reconnect loop, and nothing else: it hands the bytes it
// reads to a protocol/framing Framer and passes what comes out to a device.Sink (scans as
// device.Read, drops as device.Drop, port changes as device.State). It knows nothing of
// codes.
//
// Guarantees:
//   - The port is found by path, or by USB VID/PID (and serial number) through the port
//     enumerator, re-resolved before every open: /dev/ttyACM0 may come back as ttyACM1.
//   - Reconnects back off from 100 ms, doubling to 5 s, and start again from 100 ms only
//     after a session that proved healthy: it delivered a scan, or lasted HealthySession
//     (5 s). A port that opens and then fails at once (a flaky USB-serial bridge reading
//     EIO for ever) therefore backs off to 5 s like a missing one, and is reported
//     connected/disconnected at most once per backoff, not ten times a second; the
//     WARN line of such a loss is written once, repeats of it at debug level. On Linux the wait also ends when a node that may be the port
//     appears (inotify: the configured path's directory and those its symlinks point
//     into, or /dev's tty nodes for USB ids), about 20 ms after the burst of events of a
//     plug; so a scanner is back within a fraction of a second of its cable however long
//     it was out, not up to 5 s later. Once such an attempt fails, the next waits at least
//     100 ms, doubling to 250 ms while they fail, so a directory that churns costs at
//     most four failed opens a second. Watches exist only while disconnected. Elsewhere, and if inotify
//     fails, the backoff alone applies.
//   - A pulled cable (Read fails, or go.bug.st/serial reports PortClosed, which is how it
//     reports EOF on a hung-up tty) is reported as "disconnected" with a reason; the
//     framer's partial scan is reported as a drop.
//   - No CPU while idle: reads block. The port's read timeout is armed only after bytes
//     arrive, so that Framer.Expire runs once Timeout() has passed without a byte (the end
//     of an idle-framed scan, a stale partial); once it has run, reads block again.
//   - DTR and RTS are set only when configured, after the open; a failure (ENOTTY on a
//     pty, no modem lines on a CDC port) is logged once and ignored. Mode.InitialStatusBits
//     is never used: serial.Open itself fails where modem bits cannot be set.
//   - The framer's replies (SSI ACK/NAK) are written back to the port; Trigger and
//     Untrigger write the configured trigger commands, and the replies scanners send to
//     them are stripped by the framer.
//   - Lend (device.Lender, device.Loan) gives the port to another program for a while
//     (the medical-insurance SDK opens the scanner's port itself): a scan in progress is
//     finished first — the port is closed once the line has been quiet for the framer's
//     Timeout() and the read has blocked 50 ms more, or after device.LendGrace (1 s),
//     when an unfinished scan is dropped ("disconnected"). Bytes still unread when the
//     port closes stay in the tty for whoever opens it next. While lent the driver
//     reports "lent", holds no port, watches nothing and never retries; at the deadline
//     or on Reclaim it opens the port at once, and if the borrower still holds it, the
//     usual connecting states and backoff follow until it lets go.
//   - Cancelling Run's context closes the port, which ends a blocked Read at once; Run
//     reports "stopped" and returns nil. The sink is called only from Run's goroutine.
//
// Run, Trigger and Untrigger may be called concurrently; Run must run once at a time.
package serial
