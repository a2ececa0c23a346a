package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// Lending is what the lend endpoints need from the agent: the daemon implements it,
// keeping the one-lender-at-a-time rule and the deadline with each device's driver
// (device.Loan). Errors are the device.Err… values, possibly wrapped.
type Lending interface {
	// Lend closes the device called name for another program for d; it returns when
	// the lend ends at the latest.
	Lend(ctx context.Context, name string, d time.Duration) (until time.Time, err error)
	// Reclaim ends a lend early.
	Reclaim(ctx context.Context, name string) error
}

// lendTimeout bounds a lend or reclaim request: the driver finishes a scan in progress
// (device.LendGrace) and closes its port, or gives up.
const lendTimeout = device.LendGrace + 4*time.Second

// lendRequest is the body of POST /v1/devices/{name}/lend.
type lendRequest struct {
	Seconds *int `json:"seconds"`
}

// LendResponse answers a lend or reclaim.
type LendResponse struct {
	Device string     `json:"device"`
	State  string     `json:"state"`           // "lent" after a lend, "connecting" after a reclaim
	Until  *time.Time `json:"until,omitempty"` // when a lend ends by itself
}

// handleLend: POST /v1/devices/{name}/lend with {"seconds": N}, 1 ≤ N ≤ 600.
func (s *Server) handleLend(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req lendRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Seconds == nil {
		writeError(w, http.StatusBadRequest, "bad_body", `the body must be {"seconds": N} with N from 1 to 600`)
		return
	}
	n := *req.Seconds
	if n < int(device.MinLend/time.Second) || n > int(device.MaxLend/time.Second) {
		writeError(w, http.StatusBadRequest, device.ErrBadLendTime.Error(), "seconds must be from 1 to 600")
		return
	}
	if s.o.Lending == nil {
		writeError(w, http.StatusNotFound, device.ErrUnknownDevice.Error(), "no device of that name is configured")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lendTimeout)
	defer cancel()
	until, err := s.o.Lending.Lend(ctx, name, time.Duration(n)*time.Second)
	if err != nil {
		s.lendError(w, name, "lend", err)
		return
	}
	until = until.UTC()
	writeJSON(w, http.StatusOK, LendResponse{Device: name, State: device.StateLent, Until: &until})
}

// handleReclaim: POST /v1/devices/{name}/reclaim.
func (s *Server) handleReclaim(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.o.Lending == nil {
		writeError(w, http.StatusNotFound, device.ErrUnknownDevice.Error(), "no device of that name is configured")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lendTimeout)
	defer cancel()
	if err := s.o.Lending.Reclaim(ctx, name); err != nil {
		s.lendError(w, name, "reclaim", err)
		return
	}
	writeJSON(w, http.StatusOK, LendResponse{Device: name, State: device.StateConnecting})
}

// lendError answers a refused or failed lend or reclaim with its reason code.
func (s *Server) lendError(w http.ResponseWriter, name, action string, err error) {
	status, reason := http.StatusInternalServerError, action+"_failed"
	for _, c := range []struct {
		err    error
		status int
	}{
		{device.ErrUnknownDevice, http.StatusNotFound},
		{device.ErrBadLendTime, http.StatusBadRequest},
		{device.ErrAlreadyLent, http.StatusConflict},
		{device.ErrNotLent, http.StatusConflict},
		{device.ErrNotLendable, http.StatusConflict},
		{device.ErrNotRunning, http.StatusServiceUnavailable},
	} {
		if errors.Is(err, c.err) {
			status, reason = c.status, c.err.Error()
			break
		}
	}
	if status >= 500 {
		s.log.Warn("local API: "+action+" failed", "device", name, "reason", reason, "err", err)
	}
	writeError(w, status, reason, err.Error())
}
