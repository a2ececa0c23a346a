package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// triggerTimeout bounds a trigger command: a scanner answers in milliseconds or not at all.
const triggerTimeout = 3 * time.Second

// handleTrigger: POST /v1/devices/{name}/trigger and /untrigger. 404 for a device that
// is not configured, 409 for one without a host trigger, 503 while it is not connected
// or when the command fails (the kiosk may retry).
func (s *Server) handleTrigger(on bool) http.Handler {
	action := "untrigger"
	if on {
		action = "trigger"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var dev device.Device
		ok := false
		if s.o.Devices != nil {
			dev, ok = s.o.Devices.Device(name)
		}
		if !ok {
			writeError(w, http.StatusNotFound, "unknown_device", "no device of that name is configured")
			return
		}
		t, ok := dev.(device.Triggerer)
		if !ok {
			writeError(w, http.StatusConflict, "no_trigger", "this device has no host trigger (devices[].trigger.type)")
			return
		}
		if st, ok := s.o.Devices.DeviceStates()[name]; !ok || st.State != device.StateConnected {
			writeError(w, http.StatusServiceUnavailable, "not_connected", "the device is not connected")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), triggerTimeout)
		defer cancel()
		var err error
		if on {
			err = t.Trigger(ctx)
		} else {
			err = t.Untrigger(ctx)
		}
		if errors.Is(err, device.ErrNoTrigger) { // a serial or USB scanner without trigger.type
			writeError(w, http.StatusConflict, "no_trigger", "this device has no host trigger (devices[].trigger.type)")
			return
		}
		if err != nil {
			s.log.Warn("local API: trigger failed", "device", name, "action", action, "reason", "trigger_failed", "err", err)
			writeError(w, http.StatusServiceUnavailable, "trigger_failed", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"device": name, "action": action})
	})
}
