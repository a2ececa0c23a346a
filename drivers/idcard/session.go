package idcard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goserial "go.bug.st/serial"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
	"github.com/ehc-agent/ehc-agent/protocol/event"
	"github.com/ehc-agent/ehc-agent/protocol/ga467"
)

// Polling rules.
const (
	// removeAfter "no card" answers in a row, one poll apart, mean the card is gone. One
	// is not enough: a card at the edge of the field drops out for a poll and back.
	removeAfter = 2
	// silentAfter polls in a row without a single answer end the session.
	silentAfter = 3
	// selectTries: a card found but not selectable this many polls in a row is reported
	// (select_failed) instead of being tried for ever.
	selectTries = 3
	// readTries: a read answer garbled or missing is asked for again this many times in
	// all; the card stays selected meanwhile.
	readTries = 3
)

// Transaction outcomes other than an answer.
var (
	errNoAnswer  = errors.New("no answer")
	errBadAnswer = errors.New("garbled answer")
)

// portError ends a session: the port failed, and reason says how.
type portError struct{ reason, detail string }

func (e *portError) Error() string { return e.reason + ": " + e.detail }

// session is one open port: its decoder, the card on the reader, and the closer that
// ends a blocked read when ctx ends. Touched only by Run's goroutine, but for mu.
type session struct {
	*run
	port goserial.Port
	path string

	mu     sync.Mutex // guards closed, and every write: no write to a closed (reused) descriptor
	closed bool

	dec ga467.Decoder
	evs []ga467.Event
	buf []byte

	answered bool // the reader has answered since the port was opened
	silent   int  // polls in a row without any answer

	present  bool // a card was read (or its read failed) and has not been seen gone
	misses   int  // "no card" answers in a row while present
	selFails int  // polls in a row whose card could not be selected
}

// session polls one open port until it fails or ctx ends, and always leaves it closed.
// answered says whether the reader ever answered (then it was reported "connected").
func (r *run) session(ctx context.Context, port goserial.Port, path string) (answered bool, reason, detail string) {
	s := &session{run: r, port: port, path: path, buf: make([]byte, 4096)}

	// Closing the port is the only way to end a blocked Read; this goroutine does it
	// when ctx ends, and is gone before session returns.
	stop, closed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-ctx.Done():
			s.close()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-closed
		s.close()
		s.drops(s.dec.Reset(s.evs[:0]))
	}()

	for {
		err := s.poll()
		var pe *portError
		switch {
		case ctx.Err() != nil:
			return s.answered, serial.ReasonStopped, ""
		case errors.As(err, &pe):
			return s.answered, pe.reason, pe.detail
		case err != nil: // no answer, or a garbled one, to the find
			s.silent++
			if s.silent >= silentAfter {
				return s.answered, ReasonNoAnswer, fmt.Sprintf("%s: no answer to %d polls at %d baud", path, s.silent, s.d.cfg.Baud)
			}
		}
		// Between polls no card read is in progress: a lend closes the port here.
		if s.d.loan.Asked() {
			return s.answered, device.ReasonLent, ""
		}
		if !sleep(ctx, s.d.loan.Wake(), s.d.cfg.Poll) {
			return s.answered, serial.ReasonStopped, ""
		}
		if s.d.loan.Asked() {
			return s.answered, device.ReasonLent, ""
		}
	}
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.port.Close()
	}
}

// poll is one find, and the select and read when a new card is there.
func (s *session) poll() error {
	a, err := s.ask(ga467.FindCard, s.d.findTimeout, 1)
	if err != nil {
		return err
	}
	switch a.SW3 {
	case ga467.StatusCardFound:
		s.misses = 0
		if !s.present {
			return s.readCard()
		}
	case ga467.StatusFindFailed:
		s.selFails = 0
		if s.present {
			if s.misses++; s.misses >= removeAfter {
				s.present, s.misses = false, 0
				s.d.log.Info("id card removed")
			}
		}
	default:
		// A garbled command (10) or a status CARDS.md does not name: the reader is
		// alive, and the next poll asks again.
		s.d.log.Warn("id card reader refused find", "reason", ga467.StatusReason(a.SW3), "code", fmt.Sprintf("%02X", a.SW3))
	}
	return nil
}

// readCard selects and reads the card just found, and reports the outcome once.
func (s *session) readCard() error {
	a, err := s.ask(ga467.SelectCard, s.d.findTimeout, 1)
	if err != nil {
		return err
	}
	if a.SW3 != ga467.StatusOK {
		// A card moving into the field often fails its first select; only a card that
		// keeps failing is worth telling the kiosk about.
		if s.selFails++; s.selFails >= selectTries {
			s.selFails = 0
			s.report(KindResidentIDCard, nil, ga467.StatusReason(a.SW3), a.SW3)
		}
		return nil
	}
	s.selFails = 0
	a, err = s.ask(ga467.ReadCard, s.d.readTimeout, readTries)
	var pe *portError
	switch {
	case errors.As(err, &pe):
		return err // the card on the reader is read again after the reconnect
	case errors.Is(err, errBadAnswer):
		s.report(KindResidentIDCard, nil, ReasonBadAnswer, 0)
	case err != nil:
		s.report(KindResidentIDCard, nil, ReasonReadTimeout, 0)
	case a.SW3 != ga467.StatusOK:
		s.report(KindResidentIDCard, nil, ga467.StatusReason(a.SW3), a.SW3)
	default:
		c, err := ga467.ParseCard(a.Data)
		var ue ga467.UnsupportedError
		switch {
		case errors.As(err, &ue):
			s.report(KindUnknown, nil, ReasonUnsupportedCard, 0)
		case err != nil:
			// The error names the field only, never its content.
			s.d.log.Warn("id card record malformed", "reason", ReasonBadCardData, "detail", err.Error())
			s.report(KindResidentIDCard, nil, ReasonBadCardData, 0)
		default:
			s.report(KindResidentIDCard, &c, "", 0)
		}
	}
	return nil
}

// report hands one card read to the sink, and marks the card as dealt with until it is
// lifted. code is the reader's status for a reader_error, else 0.
func (s *session) report(kind string, c *ga467.IDCard, reason string, code byte) {
	s.present, s.misses = true, 0
	cr := &device.CardRead{Kind: kind, Reader: s.path, Reason: reason}
	if reason == ga467.ReasonReaderError {
		// CARDS.md: a status it does not name is reported "with the code".
		cr.ReaderStatus = fmt.Sprintf("%02X", code)
	}
	if c != nil {
		cr.Identity = identity(c)
	}
	s.sink.Read(device.Read{Device: s.d.cfg.Name, Driver: "idcard", Kind: "card", Card: cr, At: time.Now()})
	if reason == "" {
		s.d.log.Info("id card read")
	} else if code != 0 {
		s.d.log.Warn("id card not read", "reason", reason, "code", fmt.Sprintf("%02X", code))
	} else {
		s.d.log.Warn("id card not read", "reason", reason)
	}
}

// identity is what the identity event carries of a card: everything but the photo,
// which is WLT, not the JPEG that Identity.Photo carries.
func identity(c *ga467.IDCard) *event.Identity {
	return &event.Identity{
		IDType:      "01", // resident ID card
		IDNumber:    c.IDNumber,
		Name:        c.Name,
		Gender:      c.Gender,
		Ethnicity:   c.Ethnicity,
		BirthDate:   c.BirthDate,
		Address:     c.Address,
		IDAuthority: c.Authority,
		IDValidFrom: c.ValidFrom,
		IDValidTo:   c.ValidTo,
	}
}

// ask sends cmd and waits for its answer, up to tries times in all while the answer is
// missing or garbled, or the reader says the command was (SW3 10: returned as an answer
// when it is the last). Errors are a *portError, errNoAnswer or errBadAnswer.
func (s *session) ask(cmd string, timeout time.Duration, tries int) (a ga467.Answer, err error) {
	for range tries {
		a, err = s.transact(cmd, timeout)
		var pe *portError
		switch {
		case errors.As(err, &pe):
			return a, err
		case err == nil && a.SW3 != ga467.StatusBadChecksum:
			return a, nil
		}
	}
	return a, err
}

// transact writes one command and reads until its answer is complete, until timeout has
// passed, or, once a garbled frame has come, until the line goes quiet. A slow answer is
// waited for to the end: only the timeout cuts it short, never a pause inside it.
func (s *session) transact(cmd string, timeout time.Duration) (ga467.Answer, error) {
	// Whatever is in the input now came before this command: a late answer to an
	// earlier one, or noise. Neither may be taken for this command's answer.
	if s.dec.Pending() > 0 {
		s.drops(s.dec.Expire(s.evs[:0]))
	}
	s.flushInput()
	if err := s.write([]byte(cmd)); err != nil {
		return ga467.Answer{}, err
	}
	deadline := time.Now().Add(timeout)
	garbled := false
	for {
		wait := time.Until(deadline)
		if garbled {
			wait = min(wait, s.d.quiet)
		}
		n := 0
		if wait > 0 {
			s.port.SetReadTimeout(wait)
			var err error
			if n, err = s.port.Read(s.buf); err != nil {
				return ga467.Answer{}, readError(err)
			}
		}
		if n > 0 {
			s.evs = s.dec.Feed(s.buf[:n], s.evs[:0])
		} else {
			// Time is up: what is pending will not be completed, but a good frame may
			// wait behind it (a false preamble in junk, whose LEN swallowed it).
			s.evs = s.dec.Expire(s.evs[:0])
		}
		a, ok, bad := s.answer()
		if ok {
			if !s.answered {
				s.answered = true
				s.state(device.StateConnected, "", s.path)
				s.d.log.Info("id card reader answering", "path", s.path, "baud", s.d.cfg.Baud)
			}
			s.silent = 0
			return a, nil
		}
		garbled = garbled || bad
		if n == 0 {
			break
		}
	}
	if garbled {
		return ga467.Answer{}, errBadAnswer
	}
	return ga467.Answer{}, errNoAnswer
}

// answer goes through the decoder's events: drops are reported; the first frame that is
// an answer is returned, and any later one reported as unsolicited. bad says a frame was
// dropped for its checksum, its length or for being cut short: the answer came, garbled.
func (s *session) answer() (a ga467.Answer, ok, bad bool) {
	for _, e := range s.evs {
		switch {
		case e.Kind == ga467.EventDrop:
			s.drop(e.Reason, e.Dropped)
			bad = bad || e.Reason != ga467.ReasonNoise
		case ok:
			s.drop(ReasonUnsolicited, ga467.HeaderLen+len(e.Body)+1)
		default:
			var err error
			if a, err = ga467.ParseAnswer(e.Body); err == nil {
				ok = true
			} else {
				s.drop(ReasonUnsolicited, ga467.HeaderLen+len(e.Body)+1)
			}
		}
	}
	return a, ok, bad
}

func (s *session) drops(evs []ga467.Event) {
	for _, e := range evs {
		if e.Kind == ga467.EventDrop {
			s.drop(e.Reason, e.Dropped)
		} else {
			s.drop(ReasonUnsolicited, ga467.HeaderLen+len(e.Body)+1)
		}
	}
}

func (s *session) drop(reason string, n int) {
	s.sink.Drop(device.Drop{Device: s.d.cfg.Name, Reason: reason, Bytes: n, At: time.Now()})
	s.d.log.Info("id card reader input dropped", "reason", reason, "bytes", n)
}

// flushInput discards what the port has received and not yet read. A failure leaves the
// decoder to sort those bytes out.
func (s *session) flushInput() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.port.ResetInputBuffer()
	}
}

func (s *session) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &portError{serial.ReasonStopped, "port closed"}
	}
	for len(b) > 0 {
		n, err := s.port.Write(b)
		if err != nil {
			if serial.Gone(err) {
				return &portError{serial.ReasonPortClosed, err.Error()}
			}
			return &portError{ReasonWriteError, err.Error()}
		}
		b = b[n:]
	}
	return nil
}

// readError says how a failed read ended the session.
func readError(err error) error {
	if serial.Gone(err) {
		return &portError{serial.ReasonPortClosed, err.Error()}
	}
	return &portError{serial.ReasonReadError, err.Error()}
}
