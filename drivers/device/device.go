// Package device is the small contract between a driver and the rest of the agent.
//
// A driver owns one configured device: its port (or reader, or USB interface) and its
// reconnect loop, and nothing else. It knows nothing of codes or verification; it hands
// up what the device read, with the device's name and the time the last byte arrived.
package device

import (
	"context"
	"errors"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/cards"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Read is one complete read from a device: a scan payload after framing, or a card read.
type Read struct {
	Device string    // configured device name
	Driver string    // "serial", "usbhid", "pcsc", "idcard", "sim"
	Kind   string    // "qr" or "card"
	Data   []byte    // scan payload, framing (prefix, suffix, AIM id) stripped
	AIM    string    // AIM symbology identifier that was stripped, e.g. "]Q1"; empty if none
	Card   *CardRead // Kind "card": what the card said
	At     time.Time // when the last byte of the read arrived, or the card read ended
	// Rejected is the reason a scan was taken but not kept (too_long: over the framer's
	// bound, so Data is empty): still an identification attempt, with its event.
	Rejected string
}

// CardRead is the outcome of reading one physical card.
type CardRead struct {
	Kind     string          // resident_health_card | social_security_card | resident_id_card | unknown
	Reader   string          // PC/SC reader name, or the serial port of an ID card reader
	ATR      []byte          // as the card sent it
	Identity *event.Identity // nil when nothing could be read
	Reason   string          // "" when read in full; else a stable reason: unsupported_card, card_removed, read_failed, …
	Info     cards.Info      // what the card says of itself (version, dates, SSC card identification code); Photo is Identity.Photo's bytes
	// ReaderStatus is the reader's own status code, set with Reason reader_error only: a
	// GA 467 SW3 that CARDS.md does not name, as two hex digits ("33").
	ReaderStatus string
}

// States a device reports.
const (
	StateConnecting   = "connecting"   // trying to open; retried with backoff
	StateConnected    = "connected"    // open and reading
	StateDisconnected = "disconnected" // lost; the driver is reconnecting
	StateStopped      = "stopped"      // Run has returned
	StateLent         = "lent"         // closed for another program for a while (Lender); nothing is retried
)

// State is a change of a device's state.
type State struct {
	Device string    `json:"device"`
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"` // stable reason code, e.g. "port_closed", "not_found"
	Detail string    `json:"detail,omitempty"` // human detail (an OS error); never personal data
	Hint   string    `json:"hint,omitempty"`   // what to do, in plain words: added by the agent (agent/hints), drivers leave it empty
	At     time.Time `json:"at"`
}

// Drop is input a driver or its framer threw away, with a stable reason code.
type Drop struct {
	Device string
	Reason string // e.g. "too_long", "bad_checksum", "stale_partial", "disconnected"
	Bytes  int
	At     time.Time
}

// Sink receives what devices produce. Implementations must not block for long: a driver
// calls them from its read loop.
type Sink interface {
	Read(Read)
	State(State)
	Drop(Drop)
}

// Device is one configured device run by its driver.
type Device interface {
	Name() string
	// Run opens the device, reads until ctx is done, and reconnects on its own when the
	// device goes away. It returns only when ctx is done (nil) or on a configuration
	// error that no retry can fix.
	Run(ctx context.Context, sink Sink) error
}

// Triggerer is implemented by devices that can be told to start and stop scanning.
// A device whose configuration names no trigger returns ErrNoTrigger: the command can
// never work, and a caller must not retry it.
type Triggerer interface {
	Trigger(ctx context.Context) error
	Untrigger(ctx context.Context) error
}

// ErrNoTrigger: the device has no host trigger configured (its text is the stable
// reason code).
var ErrNoTrigger = errors.New("no_trigger")
