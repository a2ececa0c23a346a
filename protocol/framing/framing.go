// Package framing turns the byte stream of a serial scanner into scans (SCANNERS.md, Serial).
//
// A Framer is pure: it never reads or writes a port and never looks at a clock. The
// driver feeds it the bytes it reads, calls Expire when no byte has arrived for
// Timeout(), calls Reset when the port goes away, and writes any Reply output back to
// the device. Scans are bounded by MaxScan; anything over it is dropped with a reason.
//
// New makes the three framings of SCANNERS.md: "line" (a suffix ends a scan), "idle" (a
// gap ends it) and "ssi" (Zebra SSI packets, built on protocol/ssi). Each strips a
// configured prefix and, if asked, an AIM identifier, and reports the symbology in
// Output.AIM ("]Q1"; for SSI without an AIM identifier in the data, "ssi:" and the barcode
// type, e.g. "ssi:1C"; Symbology names either). Drops carry the stable Reason codes
// declared in this package. Scan Data is a fresh slice the caller owns; Reply Data is the
// framer's own copy of a fixed packet: write it, do not change it.
//
// Memory is fixed when the framer is made: a line or idle framer holds one frame of at
// most MaxScan + len(Prefix) + len(Suffix) + 3 bytes (or the longest Ignore entry, if
// longer); an ssi framer two packets (514 bytes) and one scan of that size. A run
// of input without a terminator is counted, never buffered, however long it is.
package framing

import "time"

// MaxScan is the largest scan accepted (CODES.md: a scan over 4 KiB is rejected).
const MaxScan = 4096

// Kind says what an Output carries.
type Kind uint8

const (
	KindScan  Kind = iota + 1 // Data is a complete scan payload
	KindReply                 // Data must be written to the device (SSI ACK/NAK)
	KindDrop                  // Reason and Dropped describe input that was thrown away
)

// Output is one result of feeding a framer.
type Output struct {
	Kind    Kind
	Data    []byte // scan payload (owned by the caller) or reply bytes
	AIM     string // stripped AIM identifier, e.g. "]Q1"; empty if none
	Reason  string // drop reason code: "too_long", "bad_checksum", "stale_partial", "disconnected", ...
	Dropped int    // number of bytes dropped
}

// Framer splits a byte stream into scans.
type Framer interface {
	// Feed consumes bytes just read and appends what they complete to out.
	Feed(p []byte, out []Output) []Output
	// Timeout is the gap after which Expire must be called while bytes are pending
	// (idle framing: end of scan; other framings: a stale partial is dropped).
	Timeout() time.Duration
	// Expire is called when no byte has arrived for Timeout().
	Expire(out []Output) []Output
	// Reset forgets any partial scan (the port went away) and reports it as a drop.
	Reset(out []Output) []Output
}
