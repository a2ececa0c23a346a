package api

import (
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/cards"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// The HIS-compatible social security card read (docs/HIS.md): GET /compat/v1/sscard answers
// what the national SSC reader interface's basic read (iReadCardBas) answers, so that HIS
// code written against a vendor's reader DLL can switch to the agent by changing the call,
// not the parsing.
//
// Which card: the card in a PC/SC reader now, if one is there and was read; else the next
// card read on this terminal within the timeout. A card is "there" from its read until the
// driver reports it removed (the card_removed state), the device stops or loses its readers.
// With several cards there, the newest social security card read in full wins, else the
// newest card. A resident ID card reader is not a social security card reader: its reads
// are not considered.

// Defaults and bounds of /compat/v1/sscard.
const (
	SSCardDefaultTimeout = 10 * time.Second
	SSCardMaxTimeout     = 60 * time.Second
)

// reasonCardRemoved is the device state reason drivers/pcsc reports when a card leaves a
// reader (State.Detail names the reader).
const reasonCardRemoved = "card_removed"

// SSCard is the JSON form of the answer; the field names are the national interface's.
type SSCard struct {
	IssuingAreaCode        string // region: the first six characters of the card identification code
	SocialSecurityNumber   string
	CardNumber             string
	CardIdentificationCode string
	Name                   string
	CardResetInfo          string // the ATR's historical bytes, upper-case hex
	SpecificationVersion   string
	IssuingDate            string // YYYYMMDD
	ExpirationDate         string // YYYYMMDD
	TerminalNumber         string // the agent's terminal_id
	TerminalDeviceNumber   string // the reader's name
}

// pipe is the interface string: every field followed by "|".
func (c *SSCard) pipe() string {
	var b strings.Builder
	for _, f := range c.fields() {
		b.WriteString(f)
		b.WriteByte('|')
	}
	return b.String()
}

func (c *SSCard) fields() []string {
	return []string{c.IssuingAreaCode, c.SocialSecurityNumber, c.CardNumber, c.CardIdentificationCode, c.Name,
		c.CardResetInfo, c.SpecificationVersion, c.IssuingDate, c.ExpirationDate, c.TerminalNumber, c.TerminalDeviceNumber}
}

// sscardError is an answer other than a card; Kind names the card that is not one.
type sscardError struct {
	status int
	Error  string `json:"error"`
	Msg    string `json:"message,omitempty"`
	Kind   string `json:"card_kind,omitempty"`
}

// sscardFrom turns a card read into the interface's answer, or says why it cannot.
func sscardFrom(e *event.Event) (*SSCard, *sscardError) {
	c, id := e.Card, e.Identity
	reason := ""
	if e.Verification != nil {
		reason = e.Verification.Reason
	}
	switch {
	case c.Kind == cards.KindSSC && id != nil && !id.IdentityPartial:
	case c.Kind == cards.KindSSC, c.Kind == cards.KindUnknown && reason != "" && reason != cards.ReasonUnsupported:
		// The card was not read: pulled, mute, garbage… the reader's own reason says which.
		if reason == "" {
			reason = cards.ReasonReadFailed
		}
		return nil, &sscardError{status: http.StatusUnprocessableEntity, Error: reason, Kind: c.Kind,
			Msg: "the card in " + c.Reader + " could not be read (" + reason + "); take it out and insert it again"}
	default:
		return nil, &sscardError{status: http.StatusUnprocessableEntity, Error: "not_social_security_card", Kind: c.Kind,
			Msg: "the card in " + c.Reader + " is not a social security card (" + c.Kind + ")"}
	}
	atr, err := hex.DecodeString(c.ATR)
	var hist []byte
	if err == nil {
		hist, err = cards.HistoricalBytes(atr)
	}
	if err != nil {
		return nil, &sscardError{status: http.StatusUnprocessableEntity, Error: "bad_atr", Kind: c.Kind,
			Msg: "the card's ATR has no readable historical bytes"}
	}
	if len(c.CardID) < 6 {
		return nil, &sscardError{status: http.StatusUnprocessableEntity, Error: "card_incomplete", Kind: c.Kind,
			Msg: "the card has no card identification code (EF05 tag 01)"}
	}
	s := &SSCard{
		IssuingAreaCode:        c.CardID[:6],
		SocialSecurityNumber:   id.IDNumber,
		CardNumber:             id.CardNo,
		CardIdentificationCode: c.CardID,
		Name:                   id.Name,
		CardResetInfo:          strings.ToUpper(hex.EncodeToString(hist)),
		SpecificationVersion:   c.Version,
		IssuingDate:            c.IssueDate,
		ExpirationDate:         c.Expiry,
		TerminalNumber:         e.TerminalID,
		TerminalDeviceNumber:   c.Reader,
	}
	for _, f := range s.fields() {
		if strings.ContainsAny(f, "|\r\n") {
			return nil, &sscardError{status: http.StatusUnprocessableEntity, Error: cards.ReasonBadAnswer, Kind: c.Kind,
				Msg: "a field of the card holds a separator and cannot be given as the interface string"}
		}
	}
	return s, nil
}

// readerKey names one card reader of one device.
type readerKey struct{ device, reader string }

// cardWatch keeps the card reads whose card is still in its reader, and wakes waiters
// at each new read. Event and DeviceState feed it; neither waits for a client.
type cardWatch struct {
	mu      sync.Mutex
	present map[readerKey]*event.Event
	last    *event.Event  // the newest card read, there or not
	wake    chan struct{} // closed and replaced at each card read
}

func newCardWatch() *cardWatch {
	return &cardWatch{present: map[readerKey]*event.Event{}, wake: make(chan struct{})}
}

// read takes a committed event; only PC/SC card reads count.
func (w *cardWatch) read(e *event.Event) {
	if e.Card == nil || e.Source.Driver != "pcsc" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	k := readerKey{e.Source.Device, e.Card.Reader}
	if e.Verification != nil && e.Verification.Reason == reasonCardRemoved {
		delete(w.present, k)
	} else {
		w.present[k] = e
	}
	w.last = e
	close(w.wake)
	w.wake = make(chan struct{})
}

// state forgets the cards a device no longer holds: one on card_removed, all of them when
// the device is not connected (its reads start over when it is back).
func (w *cardWatch) state(st device.State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.present {
		if k.device != st.Device {
			continue
		}
		if st.State != device.StateConnected || st.Reason == reasonCardRemoved && st.Detail == k.reader {
			delete(w.present, k)
		}
	}
}

// now returns the card to answer with at once, if any, the seq of the newest card read,
// and a channel closed at the next read.
func (w *cardWatch) now() (e *event.Event, lastSeq uint64, wake <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.present {
		if e == nil || better(p, e) {
			e = p
		}
	}
	if w.last != nil {
		lastSeq = w.last.Seq
	}
	return e, lastSeq, w.wake
}

// since returns the newest card read after seq, or nil.
func (w *cardWatch) since(seq uint64) *event.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last != nil && w.last.Seq > seq {
		return w.last
	}
	return nil
}

// better prefers a social security card read in full, then the newer read.
func better(a, b *event.Event) bool {
	aok, bok := fullSSC(a), fullSSC(b)
	if aok != bok {
		return aok
	}
	return a.Seq > b.Seq
}

func fullSSC(e *event.Event) bool {
	return e.Card.Kind == cards.KindSSC && e.Identity != nil && !e.Identity.IdentityPartial
}

// handleSSCard is GET /compat/v1/sscard?timeout=10s&charset=gbk|utf-8&format=pipe|json.
func (s *Server) handleSSCard(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := strings.ToLower(q.Get("format"))
	switch format {
	case "":
		format = "pipe"
	case "pipe", "json":
	default:
		writeError(w, http.StatusBadRequest, "bad_format", "format is pipe (the interface string) or json")
		return
	}
	charset := strings.ToLower(q.Get("charset"))
	switch charset {
	case "":
		// The vendor DLLs answer GBK, and HIS code decodes GBK; JSON is UTF-8 (RFC 8259).
		charset = map[string]string{"pipe": "gbk", "json": "utf-8"}[format]
	case "utf8":
		charset = "utf-8"
	case "gbk", "utf-8":
	default:
		writeError(w, http.StatusBadRequest, "bad_charset", "charset is gbk or utf-8")
		return
	}
	if format == "json" && charset != "utf-8" {
		writeError(w, http.StatusBadRequest, "bad_charset", "JSON is always UTF-8 (RFC 8259); charset=gbk is for format=pipe")
		return
	}
	timeout := SSCardDefaultTimeout
	if v := q.Get("timeout"); v != "" {
		d, err := parseWait(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_timeout", "timeout must be a duration such as 10s, or seconds")
			return
		}
		timeout = min(d, SSCardMaxTimeout)
	}

	start := time.Now()
	e, after, wake := s.cards.now()
	if e == nil {
		t := time.NewTimer(timeout)
		defer t.Stop()
		for e == nil {
			select {
			case <-wake:
			case <-t.C:
				s.log.Info("compat sscard", "reason", "no_card", "waited", time.Since(start).Round(time.Millisecond).String())
				writeJSON(w, http.StatusGatewayTimeout, apiError{Error: "no_card",
					Message: "no card was read within " + timeout.String() + "; insert the social security card and call again"})
				return
			case <-s.closing:
				writeError(w, http.StatusServiceUnavailable, "agent_stopping", "the agent is stopping")
				return
			case <-r.Context().Done():
				return
			}
			_, _, wake = s.cards.now()
			e = s.cards.since(after)
		}
	}
	card, bad := sscardFrom(e)
	if bad == nil && charset == "gbk" && format == "pipe" {
		var body []byte
		body, bad = gbk(card.pipe())
		if bad == nil {
			s.log.Info("compat sscard", "reason", "", "seq", e.Seq, "reader", e.Card.Reader)
			writeBody(w, "text/plain; charset=GBK", body)
			return
		}
	}
	if bad != nil {
		s.log.Info("compat sscard", "reason", bad.Error, "seq", e.Seq, "reader", e.Card.Reader, "kind", e.Card.Kind)
		writeJSON(w, bad.status, bad)
		return
	}
	s.log.Info("compat sscard", "reason", "", "seq", e.Seq, "reader", e.Card.Reader)
	if format == "json" {
		writeJSON(w, http.StatusOK, card)
		return
	}
	writeBody(w, "text/plain; charset=utf-8", []byte(card.pipe()))
}

// gbk encodes s as the vendor interface does. Text read from a card is GBK to begin with,
// so a failure means a character that came from elsewhere.
func gbk(s string) ([]byte, *sscardError) {
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		return nil, &sscardError{status: http.StatusUnprocessableEntity, Error: "not_encodable",
			Msg: "the answer has a character GBK cannot encode; ask with charset=utf-8"}
	}
	return b, nil
}

func writeBody(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
