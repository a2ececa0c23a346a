package platformsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/google/uuid"
)

// Event rejection reasons (PLATFORM.md, Delivery rules).
const (
	RejectSchema           = "schema"
	RejectBadEventID       = "bad_event_id"
	RejectTerminalMismatch = "terminal_mismatch"
	RejectTooLarge         = "too_large"
)

// Rejected is one entry of the answer's "rejected" list.
type Rejected struct {
	Index   int    `json:"index"`
	EventID string `json:"event_id,omitempty"`
	Reason  string `json:"reason"`
}

// EventsAnswer is the 200 answer to POST /api/v1/events.
type EventsAnswer struct {
	Accepted   []string   `json:"accepted"`
	Duplicates []string   `json:"duplicates"`
	Rejected   []Rejected `json:"rejected"`
}

// eventFields are the fields the emulator checks; anything else is the agent's own
// business and passes through.
type eventFields struct {
	EventID    *string      `json:"event_id"`
	TerminalID *string      `json:"terminal_id"`
	Seq        *json.Number `json:"seq"`
	OccurredAt *string      `json:"occurred_at"`
	Source     *struct {
		Kind   *string `json:"kind"`
		Device *string `json:"device"`
		Driver *string `json:"driver"`
	} `json:"source"`
	Identity *struct {
		Photo *string `json:"photo"`
		// The resident ID card's own fields: local API only (event.ForPlatform).
		Address     *string `json:"address"`
		IDAuthority *string `json:"id_authority"`
		IDValidFrom *string `json:"id_valid_from"`
		IDValidTo   *string `json:"id_valid_to"`
	} `json:"identity"`
	// A card application's event (PLATFORM.md, Card application; source.kind
	// "card_application"): its object must be whole, its applicant masked.
	Application *struct {
		ApplicationID *string `json:"application_id"`
		Result        *string `json:"result"`
		Source        *string `json:"source"`
		Applicant     *struct {
			IDNumber *string `json:"id_number"`
			Name     *string `json:"name"`
		} `json:"applicant"`
	} `json:"application"`
}

// Application results an event may carry.
var applicationResults = map[string]bool{"created": true, "existing": true, "refused": true, "platform_unreachable": true, "failed": true}

// Personal data the platform must never receive in an event (each counted in Stats).
const (
	leakPhoto             = "photo"
	leakIDCardDetails     = "id_card_details"
	leakUnmaskedApplicant = "unmasked_applicant"
)

// leakOf names what e carries that it must not, or "".
func leakOf(e *eventFields) string {
	if id := e.Identity; id != nil {
		if id.Photo != nil {
			return leakPhoto
		}
		if id.Address != nil || id.IDAuthority != nil || id.IDValidFrom != nil || id.IDValidTo != nil {
			return leakIDCardDetails
		}
	}
	if a := e.Application; a != nil && a.Applicant != nil {
		// Masked: 1101**********1234 and 张*: stars, and no more than the ends.
		n, m := *a.Applicant.IDNumber, *a.Applicant.Name
		if stars := strings.Count(n, "*"); stars == 0 || len(n)-stars > 8 || !strings.Contains(m, "*") {
			return leakUnmaskedApplicant
		}
	}
	return ""
}

// checkEvent returns the event's id (as sent, "" when unreadable), its seq, and the
// rejection reason, if any.
func (s *Server) checkEvent(raw []byte, terminal string) (id string, seq uint64, leak string, reason string) {
	var e eventFields
	err := json.Unmarshal(raw, &e)
	if e.EventID != nil {
		id = *e.EventID
	}
	if len(raw) > s.o.MaxEventBytes {
		return id, 0, "", RejectTooLarge
	}
	if err != nil || e.EventID == nil || e.TerminalID == nil || e.Seq == nil || e.OccurredAt == nil ||
		e.Source == nil || e.Source.Kind == nil || e.Source.Device == nil || e.Source.Driver == nil {
		return id, 0, "", RejectSchema
	}
	seq, err = strconv.ParseUint(e.Seq.String(), 10, 64)
	if err != nil || seq == 0 {
		return id, 0, "", RejectSchema
	}
	if a := e.Application; a != nil && (a.ApplicationID == nil || *a.ApplicationID == "" || a.Result == nil || !applicationResults[*a.Result] ||
		a.Source == nil || a.Applicant == nil || a.Applicant.IDNumber == nil || a.Applicant.Name == nil) {
		return id, 0, "", RejectSchema
	}
	if _, err := time.Parse(time.RFC3339Nano, *e.OccurredAt); err != nil {
		return id, 0, "", RejectSchema
	}
	// Only the canonical 36-character form: uuid.Parse would also take braces and urn:.
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		return id, 0, "", RejectBadEventID
	}
	if *e.TerminalID != terminal {
		return id, 0, "", RejectTerminalMismatch
	}
	return id, seq, leakOf(&e), ""
}

func (s *Server) handleEvents(_ *http.Request, terminal string, body []byte, now time.Time) reply {
	var batch struct {
		Events *[]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &batch); err != nil || batch.Events == nil {
		s.count(func(st *Stats) { st.BadBatches++ })
		return reasonReply(http.StatusBadRequest, RejectSchema)
	}
	events := *batch.Events
	if len(events) > s.o.MaxEvents {
		s.count(func(st *Stats) { st.TooLarge++ })
		return reasonReply(http.StatusRequestEntityTooLarge, "too_many_events")
	}
	ans := EventsAnswer{Accepted: []string{}, Duplicates: []string{}, Rejected: []Rejected{}}
	var fresh []Received
	var buf bytes.Buffer

	s.mu.Lock()
	defer s.mu.Unlock()
	for i, raw := range events {
		// An id already accepted is a duplicate whatever this copy holds — "the first
		// wins" (PLATFORM.md, Delivery rules) — so it is recognised before any check of
		// the content: a second copy that would fail one is still no rejection.
		if id := peekEventID(raw); id != "" {
			if first, ok := s.seen[strings.ToLower(id)]; ok {
				ans.Duplicates = append(ans.Duplicates, id)
				s.stats.Duplicates++
				buf.Reset()
				sum := []byte(nil)
				if json.Compact(&buf, raw) == nil {
					sum = contentSum(buf.Bytes(), id)
				}
				if !bytes.Equal(first, sum) {
					s.stats.Conflicts++
					s.log.Warn("duplicate event_id with other content; the first is kept", "reason", "conflict", "event_id", strings.ToLower(id), "terminal", terminal)
				}
				continue
			}
		}
		id, seq, leak, why := s.checkEvent(raw, terminal)
		if why != "" {
			ans.Rejected = append(ans.Rejected, Rejected{Index: i, EventID: id, Reason: why})
			s.stats.Rejected[why]++
			continue
		}
		buf.Reset()
		if err := json.Compact(&buf, raw); err != nil {
			ans.Rejected = append(ans.Rejected, Rejected{Index: i, EventID: id, Reason: RejectSchema})
			s.stats.Rejected[RejectSchema]++
			continue
		}
		key := strings.ToLower(id)
		sum := contentSum(buf.Bytes(), id)
		switch leak {
		case leakPhoto:
			s.stats.PhotoLeaks++
			s.log.Error("event carries identity.photo, which never goes to the platform", "event_id", key)
		case leakIDCardDetails:
			s.stats.IDCardDetailLeaks++
			s.log.Error("event carries the ID card's address, authority or validity, which stay on the terminal", "event_id", key)
		case leakUnmaskedApplicant:
			s.stats.UnmaskedApplicants++
			s.log.Error("card_application event carries an unmasked applicant", "event_id", key)
		}
		s.seen[key] = sum
		fresh = append(fresh, Received{Terminal: terminal, EventID: key, Seq: seq, JSON: bytes.Clone(buf.Bytes()), At: now})
		ans.Accepted = append(ans.Accepted, id)
	}
	if err := s.record(fresh); err != nil {
		// Nothing of this batch was acknowledged: forget it, so that the retry is
		// accepted rather than answered as duplicates of events never stored.
		for _, r := range fresh {
			delete(s.seen, r.EventID)
		}
		s.log.Error("events not recorded", "err", err)
		return reasonReply(http.StatusInternalServerError, "storage")
	}
	s.events = append(s.events, fresh...)
	s.stats.Accepted += len(fresh)
	s.stats.Batches++
	return jsonReply(http.StatusOK, ans)
}

// peekEventID returns the event_id of a batch entry, "" when there is none to read.
func peekEventID(raw []byte) string {
	var e struct {
		EventID *string `json:"event_id"`
	}
	if json.Unmarshal(raw, &e) != nil || e.EventID == nil {
		return ""
	}
	return *e.EventID
}

// contentSum identifies an event's content for the conflict check; the id's case is
// not content, since ids compare case-insensitively.
func contentSum(compact []byte, id string) []byte {
	field := []byte(`"event_id":"` + id + `"`)
	c := bytes.Replace(compact, field, bytes.ToLower(field), 1)
	sum := sm3.Sum(c)
	return sum[:]
}

// record appends events to the journal and syncs it: the platform acknowledges only
// what it stored.
func (s *Server) record(events []Received) error {
	if s.journal == nil || len(events) == 0 {
		return nil
	}
	var b bytes.Buffer
	for _, e := range events {
		b.Write(e.JSON)
		b.WriteByte('\n')
	}
	if _, err := s.journal.Write(b.Bytes()); err != nil {
		return err
	}
	return s.journal.Sync()
}

// loadJournal reads the events recorded by an earlier run, so that dedup holds across
// emulator restarts, and opens the journal for appending.
func (s *Server) loadJournal(path string) error {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 2*MaxBodyBytes)
		for sc.Scan() {
			line := sc.Bytes()
			var e struct {
				EventID    string `json:"event_id"`
				TerminalID string `json:"terminal_id"`
				Seq        uint64 `json:"seq"`
			}
			if json.Unmarshal(line, &e) != nil || e.EventID == "" {
				continue // a torn last line from a crash: that batch was not acknowledged
			}
			key := strings.ToLower(e.EventID)
			sum := contentSum(line, e.EventID)
			s.seen[key] = sum
			s.events = append(s.events, Received{Terminal: e.TerminalID, EventID: key, Seq: e.Seq, JSON: bytes.Clone(line)})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	s.journal, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// A torn last line gets its newline, so the next batch starts a line of its own.
	if st, err := s.journal.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := s.journal.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			_, err = s.journal.Write([]byte{'\n'})
			return err
		}
	}
	return nil
}
