// Package pcsc is the driver for PC/SC card readers (CARDS.md; DESIGN.md, "PC/SC"): it
// watches the configured readers through pcscd (or the Windows smart-card service),
// reads each inserted card with protocol/cards and reports one device.Read per insertion.
//
// One monitor goroutine — the one that calls Run — owns one PC/SC context and everything
// made from it: GetStatusChange with each returned state fed back as the next current
// state (it blocks; nothing polls), the reader list refreshed every Refresh (reader
// hot-plug notification does not fire with every IFD handler), card reads, and the PSAM
// handle. When the context dies (SCARD_E_NO_SERVICE, SCARD_F_COMM_ERROR, …: pcscd
// restarted, or the Windows service stopped with its last reader) it is released and a
// new one made with backoff. Run's context ending cancels a blocked GetStatusChange
// (SCardCancel), so Run returns promptly.
//
// What it reports:
//   - device.Read{Kind: "card", Driver: "pcsc"} once per card insertion, read in full or
//     not: Card.Reason says what is missing (the reasons of protocol/cards, plus
//     card_removed, timeout, card_mute, card_busy). A read is bounded by ReadTimeout,
//     from the card's arrival: no command starts after it, and neither does the wait
//     that follows a failed command. A card pulled mid-read is told apart from a failing
//     card by the reader's state: with pcscd the command in flight returns 0 bytes and
//     the next ones SCARD_E_NOT_TRANSACTED before SCARD_W_REMOVED_CARD (CARDS.md,
//     "Failure handling"), so a failed command waits up to removalWait for the reader to
//     report the card gone (card_removed) — but not past ReadTimeout: a fault that close
//     to the end keeps the read's own reason (read_failed, …), and card_removed follows
//     as a state once the reader reports it. A command already sent when ReadTimeout
//     passes is not cut short (PC/SC cannot cancel a Transmit): a card that hangs in one
//     is bounded by the reader's own timeouts, not by ReadTimeout.
//   - device.State: connecting (start, pcsc_service_unavailable: the service is not
//     there at all, SCARD_E_NO_SERVICE), connected (readers found),
//     disconnected (no_reader, service_lost), stopped; and, while connected,
//     card_removed when a card leaves a reader (Detail: the reader) and the PSAM's
//     psam_ready / psam_absent / psam_pin_rejected / psam_failed when they change.
//
// The PSAM is opened (SELECT DF01, VERIFY PIN) once per power-on and held exclusively. A
// PIN it refuses is never presented again until the PSAM is reinserted or the device
// re-created: a few wrong tries block a PSAM for good. The PIN is never logged.
package pcsc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/ebfe/scard"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// Config is one PC/SC device: one or more card readers, and optionally a PSAM.
type Config struct {
	Name string
	// Reader names the card reader(s): an exact PC/SC reader name, or a pattern
	// (path.Match: "ACS ACR1281U* 00 00", "*"). The PSAM reader is never a card reader.
	Reader string
	// PSAMReader names the PSAM's reader (the second slot of a reader is a reader of its
	// own in PC/SC), exactly or as a pattern; "" means no PSAM: RHCs are read partially.
	PSAMReader string
	// PSAMPIN is the VERIFY data of the PSAM (hex 123456 is 12 34 56).
	PSAMPIN PIN
	// ReadTimeout bounds one card read; 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// Refresh is how often the reader list is read again; 0 means DefaultRefresh.
	Refresh time.Duration
	// NoPhoto skips the RHC's photo (EF07).
	NoPhoto bool
	Logger  *slog.Logger // nil means slog.Default()
}

// PIN is a PSAM PIN. It prints as "[redacted]" however it is formatted or logged.
type PIN []byte

func (PIN) String() string               { return "[redacted]" }
func (PIN) GoString() string             { return "[redacted]" }
func (PIN) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (p PIN) Format(f fmt.State, _ rune) { f.Write([]byte(p.String())) }

// Defaults and bounds.
const (
	DefaultReadTimeout = 1900 * time.Millisecond // CARDS.md: a failing read ends with an event within 2 s (removalWait included); the card reset and hand-over after the deadline take the rest
	DefaultRefresh     = 1500 * time.Millisecond // reader list, and the longest GetStatusChange wait
	MinBackoff         = 100 * time.Millisecond  // new context after a dead one
	MaxBackoff         = 2 * time.Second         // keeps a pcscd restart to well under 5 s
	// removalWait is how long a failed read waits for the reader to report the card
	// gone: pcscd polls vpcd every 0.4 s and a real reader interrupts sooner. The wait
	// ends at the read's deadline (ReadTimeout) if that comes first.
	removalWait = 900 * time.Millisecond
	pnp         = `\\?PnP?\Notification`
)

// Reasons of this driver's reads and states (protocol/cards adds the card reasons).
const (
	ReasonStart       = "start"                    // connecting: Run began
	ReasonNoService   = "pcsc_service_unavailable" // connecting: pcscd (the Windows smart-card service) is not there
	ReasonServiceLost = "service_lost"             // disconnected: the PC/SC context died; a new one follows
	ReasonNoReader    = "no_reader"                // disconnected: no reader matches Reader
	ReasonStopped     = "stopped"                  // stopped: Run's context ended
	ReasonCardRemoved = "card_removed"             // read and state: the card left the reader
	ReasonTimeout     = "timeout"                  // read: ReadTimeout passed
	ReasonCardMute    = "card_mute"                // read: the card gave no ATR
	ReasonCardBusy    = "card_busy"                // read: another program holds the card exclusively
	ReasonPSAMReady   = "psam_ready"               // state: the PSAM is open
	ReasonPSAMAbsent  = "psam_absent"              // state: no PSAM reader or no card in it
	ReasonPSAMPIN     = "psam_pin_rejected"
	ReasonPSAMFailed  = "psam_failed"
)

// Device is a PC/SC device. It implements device.Device.
type Device struct {
	cfg Config
	log *slog.Logger
}

var _ device.Device = (*Device)(nil)

// New checks c; nothing is opened before Run.
func New(c Config) (*Device, error) {
	switch {
	case c.Name == "":
		return nil, errors.New("pcsc: missing name")
	case c.Reader == "":
		return nil, fmt.Errorf("pcsc %s: missing reader", c.Name)
	case c.PSAMReader != "" && len(c.PSAMPIN) == 0:
		return nil, fmt.Errorf("pcsc %s: a PSAM reader needs the PSAM's PIN", c.Name)
	case c.ReadTimeout < 0 || c.Refresh < 0:
		return nil, fmt.Errorf("pcsc %s: negative duration", c.Name)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Device{cfg: c, log: log.With("device", c.Name, "driver", "pcsc")}, nil
}

// Name is the configured device name.
func (d *Device) Name() string { return d.cfg.Name }

// matches reports whether reader is named by pattern: exactly, or as a path.Match pattern.
func matches(pattern, reader string) bool {
	if pattern == "" {
		return false
	}
	if pattern == reader {
		return true
	}
	ok, err := path.Match(pattern, reader)
	return ok && err == nil
}

// Run watches the readers until ctx ends; it returns nil then.
func (d *Device) Run(ctx context.Context, sink device.Sink) error {
	d.state(sink, device.StateConnecting, ReasonStart, "")
	backoff := MinBackoff
	lastReason := ""
	for ctx.Err() == nil {
		sc, err := scard.EstablishContext()
		if err != nil {
			if lastReason != ReasonNoService {
				d.state(sink, device.StateConnecting, ReasonNoService, err.Error())
				lastReason = ReasonNoService
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, MaxBackoff)
			continue
		}
		m := newMonitor(d, sc, sink)
		err = m.run(ctx)
		m.close()
		sc.Release()
		if ctx.Err() != nil {
			break
		}
		if m.healthy {
			backoff = MinBackoff
		}
		d.log.Warn("PC/SC context lost; making a new one", "reason", ReasonServiceLost, "err", err, "retry_in", backoff.String())
		d.state(sink, device.StateDisconnected, ReasonServiceLost, errText(err))
		lastReason = ReasonServiceLost
		sleep(ctx, backoff)
		backoff = min(2*backoff, MaxBackoff)
	}
	d.state(sink, device.StateStopped, ReasonStopped, "")
	return nil
}

func (d *Device) state(sink device.Sink, state, reason, detail string) {
	sink.State(device.State{Device: d.cfg.Name, State: state, Reason: reason, Detail: detail, At: time.Now()})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sleep waits for d or ctx.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// contextDead reports errors after which the PC/SC context is of no further use.
func contextDead(err error) bool {
	switch err {
	case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrCommError, scard.ErrInvalidHandle,
		scard.ErrInternalError, scard.ErrNoMemory, scard.ErrUnknownError, scard.ErrShutdown:
		return true
	}
	return false
}

// readerGone reports errors that mean a reader left the list.
func readerGone(err error) bool {
	switch err {
	case scard.ErrUnknownReader, scard.ErrReaderUnavailable, scard.ErrNoReadersAvailable:
		return true
	}
	return false
}

// Probe asks the smart-card service once which of its readers pattern names (as
// Config.Reader does), for `ehc-agent doctor`. reason is ReasonNoService when the
// service is not there, ReasonNoReader when it runs but no reader matches, else "";
// all lists every reader the service knows.
func Probe(pattern string) (matched, all []string, reason string, err error) {
	sc, err := scard.EstablishContext()
	if err != nil {
		return nil, nil, ReasonNoService, err
	}
	defer sc.Release()
	all, err = sc.ListReaders()
	if err != nil && err != scard.ErrNoReadersAvailable {
		if contextDead(err) {
			return nil, nil, ReasonNoService, err
		}
		return nil, nil, ReasonNoReader, err
	}
	for _, r := range all {
		if matches(pattern, r) {
			matched = append(matched, r)
		}
	}
	if len(matched) == 0 {
		return nil, all, ReasonNoReader, nil
	}
	return matched, all, "", nil
}
