package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/ehc-agent/ehc-agent/agent/apply"
)

// Applications backs the card application endpoints (agent/apply.Service).
type Applications interface {
	HeldCard() (apply.Card, bool)
	Apply(ctx context.Context, req apply.Request) (*apply.Result, error)
	Reprint(ctx context.Context, applicationID string) (*apply.Result, error)
	Result(applicationID string) (*apply.Result, error)
	QRPNG(applicationID string, size int) ([]byte, error)
	// OnReceipt sets the function told each receipt's outcome; the server sets it once,
	// to push the outcome to the WebSocket clients.
	OnReceipt(func(applicationID string, r apply.Receipt))
}

// receiptMessage is the WebSocket message of a receipt's outcome: the kiosk shows the
// code at once and "receipt printed" or "paper out — reprint" when this comes.
type receiptMessage struct {
	Type          string        `json:"type"` // "receipt"
	ApplicationID string        `json:"application_id"`
	Receipt       apply.Receipt `json:"receipt"`
}

// receipt tells the WebSocket clients a receipt's outcome; it does not block (the hub
// drops a client that does not keep up).
func (s *Server) receipt(applicationID string, r apply.Receipt) {
	b, _ := json.Marshal(receiptMessage{Type: "receipt", ApplicationID: applicationID, Receipt: r})
	s.hub.broadcast(b)
}

// maxApplicationBody bounds POST /v1/applications: an applicant is a few hundred bytes.
const maxApplicationBody = 16 << 10

// DefaultQRSize is the side of GET /v1/applications/{id}/qr.png without ?size=.
const DefaultQRSize = 320

func (s *Server) applicationRoutes(m *http.ServeMux) {
	m.Handle("GET /v1/applications/id-card", s.access.token(s.applications(s.handleHeldCard)))
	m.Handle("POST /v1/applications", s.access.token(s.applications(s.handleApply)))
	m.Handle("GET /v1/applications/{id}", s.access.token(s.applications(s.handleResult)))
	m.Handle("GET /v1/applications/{id}/qr.png", s.access.token(s.applications(s.handleQR)))
	m.Handle("POST /v1/applications/{id}/receipt", s.access.token(s.applications(s.handleReprint)))
}

// applications answers 404 applications_off when the terminal takes no applications.
func (s *Server) applications(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.Applications == nil {
			writeError(w, http.StatusNotFound, "applications_off", "this terminal takes no card applications (applications.enabled)")
			return
		}
		h(w, r)
	})
}

// handleHeldCard: the ID card read in the last 2 minutes, for the kiosk's confirmation
// screen, unmasked like every identity on this API.
func (s *Server) handleHeldCard(w http.ResponseWriter, r *http.Request) {
	c, ok := s.o.Applications.HeldCard()
	if !ok {
		writeError(w, http.StatusNotFound, apply.ReasonNoIDCard, "no resident ID card was read in the last 2 minutes")
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// applicationBody is what the kiosk posts (agent/api/INTEGRATION.md).
type applicationBody struct {
	ApplicationID string          `json:"application_id"`
	Source        string          `json:"source"`
	CardSeq       uint64          `json:"card_seq"`
	Applicant     apply.Applicant `json:"applicant"`
	Consent       struct {
		TextVersion string `json:"text_version"`
	} `json:"consent"`
}

func (s *Server) handleApply(w http.ResponseWriter, r *http.Request) {
	var b applicationBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxApplicationBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, apply.ReasonBadRequest, "the body is not an application: "+err.Error())
		return
	}
	res, err := s.o.Applications.Apply(r.Context(), apply.Request{
		ApplicationID: b.ApplicationID, Source: b.Source, CardSeq: b.CardSeq,
		Applicant: b.Applicant, ConsentVersion: b.Consent.TextVersion,
	})
	if err != nil {
		writeApplyError(w, err)
		return
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
	}
	writeJSON(w, code, res)
}

func (s *Server) handleQR(w http.ResponseWriter, r *http.Request) {
	size := DefaultQRSize
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 64 || n > 2048 {
			writeError(w, http.StatusBadRequest, apply.ReasonBadRequest, "size: 64 to 2048 pixels")
			return
		}
		size = n
	}
	png, err := s.o.Applications.QRPNG(r.PathValue("id"), size)
	if err != nil {
		writeApplyError(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(png)
}

// handleResult: a kept answer, with its receipt's state now (printing, printed, failed),
// for a kiosk that missed the WebSocket message.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	res, err := s.o.Applications.Result(r.PathValue("id"))
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleReprint(w http.ResponseWriter, r *http.Request) {
	res, err := s.o.Applications.Reprint(r.Context(), r.PathValue("id"))
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// writeApplyError maps an application's reason to its HTTP status.
func writeApplyError(w http.ResponseWriter, err error) {
	var e *apply.Error
	if !errors.As(err, &e) {
		writeError(w, http.StatusInternalServerError, apply.ReasonApplicationFailed, err.Error())
		return
	}
	code := http.StatusInternalServerError
	switch e.Reason {
	case apply.ReasonBadRequest:
		code = http.StatusBadRequest
	case apply.ReasonUnknown:
		code = http.StatusNotFound
	case apply.ReasonNoIDCard, apply.ReasonIDCardChanged:
		code = http.StatusConflict
	case apply.ReasonInvalidIDNumber, apply.ReasonInvalidApplicant, apply.ReasonConsentRequired, apply.ReasonRefused:
		code = http.StatusUnprocessableEntity
	case apply.ReasonUnreachable, apply.ReasonAuthFailed:
		code = http.StatusServiceUnavailable
	case apply.ReasonBadAnswer:
		code = http.StatusBadGateway
	}
	writeError(w, code, e.Reason, e.Message)
}
