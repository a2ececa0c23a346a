package daemon

import (
	"time"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// Status is the agent's state as the local API, doctor and the fleet report it. Each
// device state and the trust store carry their reason code with a fix hint for hospital
// IT (agent/hints).
type Status struct {
	TerminalID string                  `json:"terminal_id"`
	Devices    map[string]device.State `json:"devices"`
	Drops      map[string]uint64       `json:"drops"` // "device/reason" → count
	Trust      trust.Versions          `json:"trust"`
	Outbox     outbox.Stats            `json:"outbox"`
	Uplink     *uplink.Status          `json:"uplink,omitempty"` // nil: no platform configured
	Printer    PrinterStatus           `json:"printer"`          // configured: false when none
	Journal    JournalStatus           `json:"journal"`
	// StateReset is set while the damaged agent.db of a state reset is kept (statereset.go).
	StateReset *StateReset `json:"state_reset,omitempty"`
	Time       time.Time   `json:"time"`
}

// Status returns the agent's state now.
func (d *Daemon) Status() Status {
	now := time.Now()
	s := Status{TerminalID: d.cfg.TerminalID, Devices: d.DeviceStates(), Outbox: d.outbox.Stats(), Journal: d.journal.status(), Time: now,
		StateReset: d.reset}
	if d.printer != nil {
		s.Printer = d.printer.status()
	}
	if d.uplink != nil {
		u := d.uplink.Status()
		s.Uplink = &u
	}
	if d.trust != nil {
		s.Trust = d.trust.Versions(now)
		s.Trust.Hint = hints.For(s.Trust.Reason)
	}
	d.mu.Lock()
	s.Drops = make(map[string]uint64, len(d.drops))
	for k, v := range d.drops {
		s.Drops[k] = v
	}
	d.mu.Unlock()
	return s
}
