package platformsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ehc-agent/ehc-agent/protocol/codes"
	"github.com/ehc-agent/ehc-agent/protocol/idnumber"
)

// normaliseCode is CODES.md's normal form of an ehc_online code (uppercase hex and
// ":"), and false for anything that is not one.
func normaliseCode(c string) (string, bool) {
	r := codes.Classify([]byte(c), nil)
	return r.Normalized, r.Type == codes.TypeEHCOnline
}

// identity is what /codes/resolve answers: at least ehc_id, id_type, id_number and
// name, and whatever else the table holds.
type identity map[string]any

// codeTable is DataDir/codes.json, re-read when it changes, so a demo can add codes to
// a running emulator: {"<code>": {"ehc_id": …, "id_type": …, "id_number": …, "name": …,
// "expires_at": "<RFC 3339, optional>", …}, …}.
type codeTable struct {
	path  string
	mu    sync.Mutex
	mtime time.Time
	size  int64
	codes map[string]identity
}

func (t *codeTable) lookup(code string) (identity, error) {
	if t.path == "" {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st, err := os.Stat(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !st.ModTime().Equal(t.mtime) || st.Size() != t.size {
		b, err := os.ReadFile(t.path)
		if err != nil {
			return nil, err
		}
		var raw map[string]identity
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, err
		}
		t.codes = make(map[string]identity, len(raw))
		for c, id := range raw {
			if n, ok := normaliseCode(c); ok {
				t.codes[n] = id
			}
		}
		t.mtime, t.size = st.ModTime(), st.Size()
	}
	return t.codes[code], nil
}

func (s *Server) handleResolve(_ *http.Request, _ string, body []byte, now time.Time) reply {
	var req struct {
		Code *string `json:"code"`
	}
	if json.Unmarshal(body, &req) != nil || req.Code == nil {
		return reasonReply(http.StatusBadRequest, "malformed")
	}
	code, ok := normaliseCode(*req.Code)
	if !ok {
		return reasonReply(http.StatusBadRequest, "malformed")
	}
	s.mu.Lock()
	id, ok := s.issued[code]
	s.mu.Unlock()
	if !ok {
		var err error
		if id, err = s.codes.lookup(code); err != nil {
			s.log.Error("codes.json does not load", "err", err)
			return reasonReply(http.StatusInternalServerError, "storage")
		}
	}
	if id == nil {
		return reasonReply(http.StatusNotFound, "unknown_code")
	}
	out := identity{}
	for k, v := range id {
		out[k] = v
	}
	if exp, ok := out["expires_at"].(string); ok {
		t, err := time.Parse(time.RFC3339, exp)
		if err == nil && now.After(t) {
			return reasonReply(http.StatusNotFound, "expired_code")
		}
		delete(out, "expires_at")
	}
	return jsonReply(http.StatusOK, out)
}

// application is the card application of PLATFORM.md, "Card application".
type application struct {
	ApplicationID string `json:"application_id"`
	TerminalID    string `json:"terminal_id"`
	Applicant     *struct {
		IDType   string `json:"id_type"`
		IDNumber string `json:"id_number"`
		Name     string `json:"name"`
		Gender   string `json:"gender"`
	} `json:"applicant"`
	Source  string `json:"source"`
	Consent *struct {
		TextVersion string `json:"text_version"`
		At          string `json:"at"`
	} `json:"consent"`
}

// handleApply issues a card: the same application_id always gets the same answer, and a
// resident who has a card — issued here, or listed in codes.json — gets its code back
// with created false. A resident ID card number (id_type 01) with a wrong GB 11643
// check digit is refused with 422 bad_id_number. Applicant data stays in memory, never
// in DataDir.
func (s *Server) handleApply(_ *http.Request, terminal string, body []byte, _ time.Time) reply {
	var a application
	if json.Unmarshal(body, &a) != nil {
		return reasonReply(http.StatusBadRequest, "malformed")
	}
	u, err := uuid.Parse(a.ApplicationID)
	switch {
	case err != nil || len(a.ApplicationID) != 36 || u.Version() != 7:
		return reasonReply(http.StatusUnprocessableEntity, "bad_application_id")
	case a.TerminalID != terminal:
		return reasonReply(http.StatusUnprocessableEntity, "terminal_mismatch")
	case a.Applicant == nil || a.Applicant.IDType == "" || a.Applicant.IDNumber == "" || a.Applicant.Name == "":
		return reasonReply(http.StatusUnprocessableEntity, "invalid_applicant")
	case a.Applicant.IDType == "01" && !idnumber.Valid(a.Applicant.IDNumber):
		return reasonReply(http.StatusUnprocessableEntity, "bad_id_number")
	case a.Source != "id_card_reader" && a.Source != "manual":
		return reasonReply(http.StatusUnprocessableEntity, "bad_source")
	case a.Consent == nil || a.Consent.TextVersion == "" || a.Consent.At == "":
		return reasonReply(http.StatusUnprocessableEntity, "no_consent")
	}
	key := strings.ToLower(a.ApplicationID)
	resident := a.Applicant.IDType + "/" + a.Applicant.IDNumber
	// codes.json is read outside s.mu: its table has a lock of its own.
	listed, err := s.codes.holder(a.Applicant.IDType, a.Applicant.IDNumber)
	if err != nil {
		s.log.Error("codes.json does not load", "err", err)
		return reasonReply(http.StatusInternalServerError, "storage")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Applications++
	if rep, ok := s.apps[key]; ok {
		return rep
	}
	var rep reply
	switch ehcID, ok := s.residents[resident]; {
	case ok:
		rep = jsonReply(http.StatusOK, map[string]any{"ehc_id": ehcID, "code": ehcID + ":1", "created": false})
	case listed != nil:
		rep = jsonReply(http.StatusOK, map[string]any{"ehc_id": listed.ehcID, "code": listed.code, "created": false})
	default:
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return reasonReply(http.StatusInternalServerError, "random")
		}
		ehcID := strings.ToUpper(hex.EncodeToString(b[:]))
		s.residents[resident] = ehcID
		id := identity{"ehc_id": ehcID, "id_type": a.Applicant.IDType, "id_number": a.Applicant.IDNumber, "name": a.Applicant.Name}
		if a.Applicant.Gender != "" {
			id["gender"] = a.Applicant.Gender
		}
		s.issued[ehcID+":1"] = id
		s.stats.CardsIssued++
		rep = jsonReply(http.StatusCreated, map[string]any{"ehc_id": ehcID, "code": ehcID + ":1", "created": true})
	}
	s.apps[key] = rep
	return rep
}

// listedCard is a card codes.json holds for a resident.
type listedCard struct{ ehcID, code string }

// holder finds the card codes.json lists for a resident, if any (the first code in
// sorted order, so the answer does not change between calls).
func (t *codeTable) holder(idType, idNumber string) (*listedCard, error) {
	if _, err := t.lookup(""); err != nil { // (re)loads the table
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var best *listedCard
	for code, id := range t.codes {
		if id["id_type"] == idType && id["id_number"] == idNumber {
			if e, ok := id["ehc_id"].(string); ok && (best == nil || code < best.code) {
				best = &listedCard{ehcID: e, code: code}
			}
		}
	}
	return best, nil
}
