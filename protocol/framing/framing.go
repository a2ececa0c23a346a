// Package framing turns the byte stream of a serial scanner into scans (SCANNERS.md, Serial).
//
// A Framer is pure: it never reads or writes a port and never looks at a clock. The
// driver feeds it the bytes it reads, calls Expire when no byte has arrived for
// Timeout(), calls Reset when the port goes away, and writes any Reply output back to
// the device. Scans are bounded by MaxScan; anything over it is dropped with a reason.
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
