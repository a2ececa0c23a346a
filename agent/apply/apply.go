// Package apply is the card application of institutional terminals (PLATFORM.md, "Card
// application"; PRINTERS.md): a resident without an electronic health card places the
// resident ID card on the reader, confirms and consents on the kiosk, and leaves with
// the new card's code on screen and on a printed receipt.
//
// The Service holds the last resident ID card read on this terminal (it is a
// pipeline.Subscriber), for HoldFor and in memory only: a timer forgets it then, a new
// card placed replaces it, and a successful application forgets it at once, so the
// next patient cannot apply with it. An application is sent online only, through
// Platform (the uplink, which retries a lost answer with the same application_id until
// the timeout): nothing is queued, and when the platform does not answer in time the
// kiosk hears platform_unreachable and nothing is kept. The answer — application id,
// ehc_id and code, never the applicant — is kept in memory for KeepResults, so that
// the kiosk can fetch the code's QR image, reprint the receipt, or repeat a request
// whose answer it lost and get the same answer.
//
// The receipt is printed after the kiosk has its answer: the answer says the receipt is
// "printing" (or "none" without a printer), and one goroutine the Service owns prints
// the queued receipts one at a time — a 9600-baud printer takes a second a receipt,
// a hung one the printer's timeout, and neither may keep the code off the screen. The
// printer's paper status is asked first (drivers/printer): paper out or an offline
// printer prints nothing, and the receipt's state becomes "failed" with the reason
// and a hint. The outcome is kept with the answer (Result) and told to the listener
// set with OnReceipt (the local API pushes it to the kiosk). The paper status the
// agent saw last is not used to answer "failed" at once: it may be old (paper loaded
// since), and the print job asks the printer itself within milliseconds. Personal
// data never reaches a log line: logs carry reason codes, the application id and the
// masked ehc_id.
//
// Every application sent to the platform becomes one card_application event (protocol/
// event, Application) through Options.Events (the pipeline's Record): created,
// existing, refused, platform_unreachable or failed, with the applicant masked, so the
// local API's subscribers and, through the outbox, the platform see each attempt. The
// event is committed before the kiosk gets its answer. Requests refused here before
// anything was sent (no card on hold, a mistyped ID number, no consent) and repeats
// answered from memory make no event.
package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/drivers/printer"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
	"github.com/ehc-agent/ehc-agent/protocol/event"
	"github.com/ehc-agent/ehc-agent/protocol/idnumber"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

// Limits.
const (
	// HoldFor: an ID card read longer ago than this is not used for an application
	// (the issue: "the last ID card read on this terminal within the last 2 minutes").
	HoldFor = 2 * time.Minute
	// KeepResults: how long an answer stays for its QR image, a reprint or a repeat.
	KeepResults = 10 * time.Minute
	maxResults  = 64
	// maxQueued receipts wait for the printer; one more is refused as printer_busy (a
	// kiosk serves one patient at a time: a queue this long means a hung printer).
	maxQueued = 4
)

// Receipt states.
const (
	ReceiptNone     = "none"     // the terminal has no printer
	ReceiptPrinting = "printing" // queued or being printed
	ReceiptPrinted  = "printed"
	ReceiptFailed   = "failed" // Reason and Hint say why; nothing or part was printed
)

// Reasons a receipt was not printed, beside the printer's own (paper_out, offline,
// timeout, not_connected).
const (
	ReasonPrinterBusy  = "printer_busy"  // maxQueued receipts are waiting already
	ReasonPrintFailed  = "print_failed"  // anything else
	ReasonShuttingDown = "shutting_down" // the agent stopped before the receipt was printed
)

// Sources of an application's data (PLATFORM.md).
const (
	SourceIDCard = "id_card_reader"
	SourceManual = "manual"
)

// Reasons an application fails, for the kiosk and the logs.
const (
	ReasonNoIDCard          = "no_id_card"          // no ID card read in the last HoldFor
	ReasonIDCardChanged     = "id_card_changed"     // the card on hold is not the one the kiosk showed
	ReasonInvalidIDNumber   = "invalid_id_number"   // manual entry: GB 11643 says no
	ReasonInvalidApplicant  = "invalid_applicant"   // manual entry: a field is missing or malformed
	ReasonConsentRequired   = "consent_required"    // no consent text version
	ReasonBadRequest        = "bad_request"         // source or application id malformed
	ReasonRefused           = "application_refused" // the platform said 422; Message has its reason
	ReasonUnreachable       = "platform_unreachable"
	ReasonAuthFailed        = "auth_failed"
	ReasonBadAnswer         = "bad_answer"
	ReasonUnknown           = "unknown_application" // no answer kept under that id
	ReasonNoPrinter         = "no_printer"
	ReasonApplicationFailed = "application_failed" // anything else
)

// Error is a failed application, with a stable reason and a message for the kiosk's
// operator (never personal data).
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return "apply: " + e.Reason + ": " + e.Message }

// Platform is the card application call (uplink.Uplink).
type Platform interface {
	Apply(ctx context.Context, a *uplink.Application, timeout time.Duration) (*uplink.Issued, error)
}

// Events records an event that no device read (pipeline.Pipeline.Record): committed
// to the outbox, then told to the local API, when it returns nil.
type Events interface {
	Record(ctx context.Context, e *event.Event) error
}

// recordWait bounds how long an answer to the kiosk waits for the pipeline to take
// the application's event (it is committed within milliseconds once taken).
const recordWait = 5 * time.Second

// Printer prints a receipt after asking for its paper status (printer.Printer).
type Printer interface {
	Print(ctx context.Context, receipt []byte) error
}

// Options configure a Service.
type Options struct {
	TerminalID   string
	Platform     Platform // required
	Printer      Printer  // nil: the terminal has no printer
	Events       Events   // nil: no card_application events (tests of the flow alone)
	PrintWidth   int      // printable dots; 0 is 384 (58 mm)
	ReceiptTitle string   // "" is escpos.DefaultTitle
	Timeout      time.Duration
	// HoldFor is how long an ID card read is kept; 0 or more than HoldFor is HoldFor.
	HoldFor time.Duration
	// Now is the trusted time (uplink.Now) for the consent time and the receipt; nil is
	// time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Request is what the kiosk sends.
type Request struct {
	// ApplicationID repeats an earlier request (a UUIDv7 the kiosk chose, or the one an
	// earlier answer gave); "" is a new application.
	ApplicationID string
	Source        string // SourceIDCard | SourceManual
	// CardSeq is the event seq of the ID card the kiosk showed for confirmation; 0 takes
	// the card on hold, whichever it is.
	CardSeq uint64
	// Applicant: for SourceManual the typed data; for SourceIDCard only Phone is taken
	// (the card has no phone number).
	Applicant      Applicant
	ConsentVersion string
}

// Applicant is typed applicant data.
type Applicant struct {
	IDNumber  string `json:"id_number"`
	Name      string `json:"name"`
	Gender    string `json:"gender,omitempty"`
	Ethnicity string `json:"ethnicity,omitempty"`
	BirthDate string `json:"birth_date,omitempty"`
	Address   string `json:"address,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

// Result is the answer to the kiosk.
type Result struct {
	ApplicationID string  `json:"application_id"`
	EHCID         string  `json:"ehc_id"`
	Code          string  `json:"code"`
	Created       bool    `json:"created"`
	Source        string  `json:"source"`
	Receipt       Receipt `json:"receipt"`
}

// Receipt is where the receipt is: none, printing, printed or failed; when failed (or
// none) Reason is the code and Hint what to do.
type Receipt struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"` // paper_out, offline, timeout, not_connected, printer_busy, no_printer, …
	Hint   string `json:"hint,omitempty"`
}

// Card is the ID card on hold, as the kiosk shows it for confirmation.
type Card struct {
	Seq      uint64         `json:"seq"`    // its identity event's seq
	Reader   string         `json:"reader"` // the reader's configured name (its event's source.device)
	ReadAt   time.Time      `json:"read_at"`
	Identity event.Identity `json:"identity"`
}

// kept is an answer kept for KeepResults: no applicant data but the masked name and ID
// number a reprint needs.
type kept struct {
	res          Result
	at           time.Time
	maskedName   string
	maskedNumber string
}

// Service runs applications. Its methods are safe for concurrent use.
type Service struct {
	o   Options
	log *slog.Logger

	applyMu sync.Mutex // one application at a time: a kiosk serves one patient

	mu        sync.Mutex
	card      *Card
	forget    *time.Timer
	results   map[string]*kept // k.res.Receipt is written by the print loop: read under mu
	closed    bool
	onReceipt func(applicationID string, r Receipt)

	// The print loop (started by New when there is a printer, ended by Close): it takes
	// the receipts from queue one at a time; stop ends it and the print in progress.
	queue chan printJob
	stop  context.Context
	halt  context.CancelFunc
	done  chan struct{}
}

// printJob is a receipt waiting for the printer.
type printJob struct {
	k  *kept
	at time.Time
}

// New checks o and returns the service.
func New(o Options) (*Service, error) {
	if o.Platform == nil {
		return nil, errors.New("apply: no platform")
	}
	if o.Timeout <= 0 {
		o.Timeout = uplink.DefaultApplyTimeout
	}
	if o.PrintWidth == 0 {
		o.PrintWidth = escpos.Dots58mm
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HoldFor <= 0 || o.HoldFor > HoldFor {
		o.HoldFor = HoldFor
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{o: o, log: o.Logger, results: map[string]*kept{}, queue: make(chan printJob, maxQueued), done: make(chan struct{})}
	s.stop, s.halt = context.WithCancel(context.Background())
	if o.Printer != nil {
		go s.printLoop()
	} else {
		close(s.done)
	}
	return s, nil
}

// OnReceipt sets the function told each receipt's outcome (printed or failed), from
// the print loop: it must not block. nil stops telling.
func (s *Service) OnReceipt(f func(applicationID string, r Receipt)) {
	s.mu.Lock()
	s.onReceipt = f
	s.mu.Unlock()
}

// Close forgets the card on hold and every answer, stops the timer, and ends the print
// loop: the receipt being printed is cut off (the printer driver closes its
// connection), the queued ones are dropped. It returns once the loop has ended.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.onReceipt = nil
	s.dropCardLocked()
	s.mu.Unlock()
	s.halt()
	<-s.done
	s.mu.Lock()
	s.results = map[string]*kept{}
	s.mu.Unlock()
}

// Event implements pipeline.Subscriber: a resident ID card placed on a reader replaces
// the card on hold (a failed read forgets it: someone else is at the reader).
func (s *Service) Event(e *event.Event) {
	if e.Card == nil || e.Card.Kind != "resident_id_card" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.dropCardLocked()
	if e.Identity == nil || e.Identity.IDNumber == "" || e.Identity.Name == "" {
		return
	}
	id := *e.Identity
	id.Photo = ""
	c := &Card{Seq: e.Seq, Reader: e.Source.Device, ReadAt: time.Now(), Identity: id}
	s.card = c
	s.forget = time.AfterFunc(s.o.HoldFor, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.card == c {
			s.dropCardLocked()
		}
	})
}

func (s *Service) dropCardLocked() {
	if s.forget != nil {
		s.forget.Stop()
		s.forget = nil
	}
	s.card = nil
}

// HeldCard returns the ID card on hold, if one was read within HoldFor.
func (s *Service) HeldCard() (Card, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.card == nil || time.Since(s.card.ReadAt) >= s.o.HoldFor {
		return Card{}, false
	}
	return *s.card, true
}

// Apply runs one application: the applicant's data, the platform call, the receipt.
func (s *Service) Apply(ctx context.Context, req Request) (*Result, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()

	if req.ApplicationID != "" {
		u, err := uuid.Parse(req.ApplicationID)
		if err != nil || u.Version() != 7 || len(req.ApplicationID) != 36 {
			return nil, &Error{ReasonBadRequest, "application_id must be a UUIDv7"}
		}
		req.ApplicationID = strings.ToLower(req.ApplicationID)
		if r, ok := s.snapshot(req.ApplicationID); ok {
			s.log.Info("card application repeated", "application_id", r.ApplicationID, "ehc_id", mask.Token(r.EHCID))
			return r, nil
		}
	} else {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, &Error{ReasonApplicationFailed, err.Error()}
		}
		req.ApplicationID = u.String()
	}
	if strings.TrimSpace(req.ConsentVersion) == "" || len(req.ConsentVersion) > 64 {
		return nil, &Error{ReasonConsentRequired, "the applicant must consent: send the consent text version shown"}
	}
	if err := checkPhone(req.Applicant.Phone); err != nil {
		return nil, err
	}

	var ap uplink.Applicant
	var heldSeq uint64
	device := event.DeviceLocalAPI
	switch req.Source {
	case SourceIDCard:
		c, ok := s.HeldCard()
		switch {
		case !ok:
			return nil, &Error{ReasonNoIDCard, "no resident ID card was read in the last 2 minutes: place it on the reader"}
		case req.CardSeq != 0 && req.CardSeq != c.Seq:
			return nil, &Error{ReasonIDCardChanged, "another ID card was placed since this one was shown: confirm again"}
		}
		heldSeq, device = c.Seq, c.Reader
		id := c.Identity
		ap = uplink.Applicant{IDType: "01", IDNumber: id.IDNumber, Name: id.Name, Gender: id.Gender, Ethnicity: id.Ethnicity,
			BirthDate: id.BirthDate, Address: id.Address, IDValidTo: id.IDValidTo, Phone: req.Applicant.Phone}
	case SourceManual:
		var err error
		if ap, err = manual(req.Applicant); err != nil {
			return nil, err
		}
	default:
		return nil, &Error{ReasonBadRequest, "source must be id_card_reader or manual"}
	}

	now := s.o.Now()
	app := &uplink.Application{
		ApplicationID: req.ApplicationID, TerminalID: s.o.TerminalID, Applicant: ap, Source: req.Source,
		Consent: uplink.Consent{TextVersion: req.ConsentVersion, At: now.UTC().Format(time.RFC3339)},
	}
	t0 := time.Now()
	is, err := s.o.Platform.Apply(ctx, app, s.o.Timeout)
	ev := &event.Application{ApplicationID: app.ApplicationID, Source: req.Source, CardSeq: heldSeq,
		Applicant: event.MaskApplicant(ap.IDType, ap.IDNumber, ap.Name)}
	if err != nil {
		e := platformError(err)
		s.log.Warn("card application failed", "application_id", app.ApplicationID, "source", req.Source,
			"reason", e.Reason, "detail", e.Message, "took", time.Since(t0).Round(time.Millisecond).String())
		ev.Result, ev.Reason = failedResult(err, e)
		s.record(ctx, device, ev)
		return nil, e
	}
	ev.Result, ev.EHCID = event.ApplicationExisting, is.EHCID
	if is.Created {
		ev.Result = event.ApplicationCreated
	}
	s.record(ctx, device, ev)
	res := Result{ApplicationID: app.ApplicationID, EHCID: is.EHCID, Code: is.Code, Created: is.Created, Source: req.Source}
	k := &kept{res: res, at: time.Now(), maskedName: mask.Name(ap.Name), maskedNumber: mask.Number(ap.IDNumber)}
	s.mu.Lock()
	if req.Source == SourceIDCard && s.card != nil && s.card.Seq == heldSeq {
		s.dropCardLocked() // done with: the next patient must place their own
	}
	s.mu.Unlock()
	s.log.Info("card application answered", "application_id", app.ApplicationID, "source", req.Source,
		"created", is.Created, "ehc_id", mask.Token(is.EHCID), "took", time.Since(t0).Round(time.Millisecond).String())

	// Kept before the receipt is queued, so that its outcome has an answer to go to
	// and GET /v1/applications/{id} finds it at once.
	s.keep(k)
	s.enqueue(k, now)
	r, _ := s.snapshot(app.ApplicationID)
	return r, nil
}

// Reprint queues the receipt of a kept answer again (after paper was loaded) and
// answers at once, the receipt "printing"; a receipt still printing or queued is not
// queued twice (a double tap prints one receipt).
func (s *Service) Reprint(ctx context.Context, applicationID string) (*Result, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	id := strings.ToLower(applicationID)
	k := s.result(id)
	if k == nil {
		return nil, &Error{ReasonUnknown, "no application of that id was answered here in the last 10 minutes"}
	}
	s.mu.Lock()
	busy := k.res.Receipt.State == ReceiptPrinting
	s.mu.Unlock()
	if !busy {
		s.enqueue(k, s.o.Now())
	}
	r, ok := s.snapshot(id)
	if !ok {
		return nil, &Error{ReasonUnknown, "no application of that id was answered here in the last 10 minutes"}
	}
	return r, nil
}

// Result is a kept answer, with its receipt's state as it is now.
func (s *Service) Result(applicationID string) (*Result, error) {
	r, ok := s.snapshot(strings.ToLower(applicationID))
	if !ok {
		return nil, &Error{ReasonUnknown, "no application of that id was answered here in the last 10 minutes"}
	}
	return r, nil
}

// snapshot copies a kept answer under the lock (the print loop writes its receipt).
func (s *Service) snapshot(id string) (*Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	k := s.results[id]
	if k == nil {
		return nil, false
	}
	r := k.res
	return &r, true
}

// QRPNG is the PNG of the QR symbol of a kept answer's code, size×size pixels.
func (s *Service) QRPNG(applicationID string, size int) ([]byte, error) {
	k := s.result(strings.ToLower(applicationID))
	if k == nil {
		return nil, &Error{ReasonUnknown, "no application of that id was answered here in the last 10 minutes"}
	}
	return qrimage.QRPNG(k.res.Code, size)
}

// enqueue sets k's receipt to printing and queues it, or to none without a printer,
// or to failed (printer_busy) when the queue is full.
func (s *Service) enqueue(k *kept, at time.Time) {
	if s.o.Printer == nil {
		s.setReceipt(k, Receipt{State: ReceiptNone, Reason: ReasonNoPrinter, Hint: "this terminal has no receipt printer"}, false)
		return
	}
	s.setReceipt(k, Receipt{State: ReceiptPrinting}, false)
	select {
	case s.queue <- printJob{k: k, at: at}:
	default:
		s.log.Warn("receipt not printed", "application_id", k.res.ApplicationID, "reason", ReasonPrinterBusy)
		s.setReceipt(k, Receipt{State: ReceiptFailed, Reason: ReasonPrinterBusy,
			Hint: "the printer has " + fmt.Sprint(maxQueued) + " receipts waiting and prints none: check it, then print again"}, false)
	}
}

// setReceipt records a receipt's state and, when tell, tells the listener.
func (s *Service) setReceipt(k *kept, r Receipt, tell bool) {
	s.mu.Lock()
	k.res.Receipt = r
	f := s.onReceipt
	if s.closed {
		f = nil
	}
	s.mu.Unlock()
	if tell && f != nil {
		f(k.res.ApplicationID, r)
	}
}

// printLoop is the only goroutine that prints: one receipt at a time, until Close.
func (s *Service) printLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop.Done():
			return
		case j := <-s.queue:
			r := s.print(j.k, j.at)
			if s.stop.Err() != nil {
				return // stopped mid-print: nobody is left to tell
			}
			s.setReceipt(j.k, r, true)
		}
	}
}

func (s *Service) print(k *kept, at time.Time) Receipt {
	r := escpos.Receipt{Title: s.o.ReceiptTitle, Code: k.res.Code, Name: k.maskedName, IDNumber: k.maskedNumber,
		IssuedAt: at, TerminalID: s.o.TerminalID, PrintWidth: s.o.PrintWidth}
	job, err := r.Bytes()
	if err == nil {
		// The driver bounds the print by the printer's timeout; Close cuts it off.
		err = s.o.Printer.Print(s.stop, job)
	}
	if err != nil {
		reason := printer.Reason(err)
		hint := "the receipt was not printed; the code is on the screen"
		switch {
		case s.stop.Err() != nil:
			reason = ReasonShuttingDown
		case reason == printer.ReasonPaperOut:
			hint = "the printer is out of paper: nothing was printed; load paper, then print again"
		case reason == printer.ReasonOffline:
			hint = "the printer is offline (cover open?): nothing was printed"
		case reason == printer.ReasonTimeout:
			hint = "the printer did not answer in time: check it, then print again"
		case reason == printer.ReasonNotConnected:
			hint = "the printer is not connected: check its cable, then print again"
		case reason == "":
			reason = ReasonPrintFailed
		}
		s.log.Warn("receipt not printed", "application_id", k.res.ApplicationID, "reason", reason, "err", err.Error())
		return Receipt{State: ReceiptFailed, Reason: reason, Hint: hint}
	}
	s.log.Info("receipt printed", "application_id", k.res.ApplicationID)
	return Receipt{State: ReceiptPrinted}
}

func (s *Service) result(id string) *kept {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	return s.results[id]
}

func (s *Service) keep(k *kept) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	if len(s.results) >= maxResults {
		var oldest string
		for id, r := range s.results {
			if oldest == "" || r.at.Before(s.results[oldest].at) {
				oldest = id
			}
		}
		delete(s.results, oldest)
	}
	s.results[k.res.ApplicationID] = k
}

func (s *Service) pruneLocked() {
	for id, r := range s.results {
		if time.Since(r.at) > KeepResults {
			delete(s.results, id)
		}
	}
}

// record commits the application's event before the kiosk hears the answer. A failure
// is logged and does not change the answer: the platform has decided already.
func (s *Service) record(ctx context.Context, device string, a *event.Application) {
	if s.o.Events == nil {
		return
	}
	e := &event.Event{Source: event.Source{Kind: event.SourceApplication, Device: device, Driver: event.DriverApply}, Application: a}
	e.OccurredAt = s.o.Now().UTC()
	// A kiosk that went away must not cost the record.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordWait)
	defer cancel()
	if err := s.o.Events.Record(rctx, e); err != nil {
		s.log.Error("card application event not recorded", "reason", "event_not_recorded", "application_id", a.ApplicationID,
			"result", a.Result, "err", err.Error())
	}
}

// failedResult is the event's result and reason for a failed platform call: the
// platform's own reason for a refusal when it is a reason code, the kiosk's otherwise.
func failedResult(err error, e *Error) (result, reason string) {
	switch e.Reason {
	case ReasonRefused:
		var re *uplink.RefusedError
		if errors.As(err, &re) && isReasonCode(re.Reason) {
			return event.ApplicationRefused, re.Reason
		}
		return event.ApplicationRefused, ReasonRefused
	case ReasonUnreachable:
		return event.ApplicationUnreachable, ""
	}
	return event.ApplicationFailed, e.Reason
}

// isReasonCode: the platform's text goes into an event only as a short snake_case code.
func isReasonCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// platformError turns an uplink error into the kiosk's reason.
func platformError(err error) *Error {
	var re *uplink.RefusedError
	switch {
	case errors.As(err, &re):
		return &Error{ReasonRefused, "the platform refused the application: " + re.Reason}
	case errors.Is(err, uplink.ErrUnreachable):
		return &Error{ReasonUnreachable, "the platform did not answer in time; nothing was kept: try again"}
	case errors.Is(err, uplink.ErrAuth):
		return &Error{ReasonAuthFailed, "the platform does not accept this terminal's signature"}
	case errors.Is(err, uplink.ErrBadAnswer):
		return &Error{ReasonBadAnswer, "the platform's answer was not understood"}
	}
	return &Error{ReasonApplicationFailed, err.Error()}
}

// manual checks typed data: a GB 11643 number (a lower-case x accepted), a name, and
// the birth date and gender, which the number carries, filled in or checked against it.
func manual(a Applicant) (uplink.Applicant, error) {
	n := idnumber.Normalize(a.IDNumber)
	if err := idnumber.Check(n); err != nil {
		var ie *idnumber.Error
		why := "not a citizen identity number"
		if errors.As(err, &ie) {
			why = map[string]string{
				idnumber.ReasonLength:     "an ID number has 18 characters",
				idnumber.ReasonNotDigits:  "an ID number is 17 digits and a digit or X",
				idnumber.ReasonBirthDate:  "the birth date in the ID number is not a date",
				idnumber.ReasonCheckDigit: "the check digit does not match: a digit was mistyped",
			}[ie.Reason]
		}
		return uplink.Applicant{}, &Error{ReasonInvalidIDNumber, why}
	}
	name := strings.TrimSpace(a.Name)
	if name == "" || utf8.RuneCountInString(name) > 30 || !utf8.ValidString(name) || strings.ContainsAny(name, "\r\n\t") {
		return uplink.Applicant{}, &Error{ReasonInvalidApplicant, "name: 1 to 30 characters"}
	}
	birth := n[6:14]
	if a.BirthDate != "" && a.BirthDate != birth {
		return uplink.Applicant{}, &Error{ReasonInvalidApplicant, "birth_date differs from the one in the ID number"}
	}
	gender := "2"
	if (n[16]-'0')%2 == 1 {
		gender = "1"
	}
	if a.Gender != "" && a.Gender != gender {
		return uplink.Applicant{}, &Error{ReasonInvalidApplicant, "gender differs from the one the ID number gives"}
	}
	if a.Ethnicity != "" && (len(a.Ethnicity) != 2 || a.Ethnicity[0] < '0' || a.Ethnicity[0] > '9' || a.Ethnicity[1] < '0' || a.Ethnicity[1] > '9') {
		return uplink.Applicant{}, &Error{ReasonInvalidApplicant, "ethnicity: a GB 3304 two-digit code"}
	}
	if utf8.RuneCountInString(a.Address) > 70 {
		return uplink.Applicant{}, &Error{ReasonInvalidApplicant, "address: at most 70 characters"}
	}
	return uplink.Applicant{IDType: "01", IDNumber: n, Name: name, Gender: gender, Ethnicity: a.Ethnicity,
		BirthDate: birth, Address: strings.TrimSpace(a.Address), Phone: a.Phone}, nil
}

func checkPhone(p string) error {
	if p == "" {
		return nil
	}
	if len(p) < 5 || len(p) > 20 {
		return &Error{ReasonInvalidApplicant, fmt.Sprintf("phone: 5 to 20 digits, not %d characters", len(p))}
	}
	for i := 0; i < len(p); i++ {
		if (p[i] < '0' || p[i] > '9') && !(i == 0 && p[i] == '+') && p[i] != '-' {
			return &Error{ReasonInvalidApplicant, "phone: digits only (a leading + and dashes allowed)"}
		}
	}
	return nil
}
