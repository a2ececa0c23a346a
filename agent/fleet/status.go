package fleet

import (
	"encoding/json"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Terminal states in Status.State.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// Offline reasons in Status.Reason.
const (
	OfflineConnectionLost = "connection_lost" // the broker's last will: the link or the agent died
	OfflineStopped        = "stopped"         // the agent stopped cleanly
)

// Status is the retained message on …/<terminal_id>/status. It carries no personal
// data: device states, counters, versions and times.
type Status struct {
	TerminalID  string            `json:"terminal_id"`
	State       string            `json:"state"`            // online | offline
	Reason      string            `json:"reason,omitempty"` // offline only
	At          time.Time         `json:"at,omitzero"`      // when published; absent in the last will
	OnlineSince time.Time         `json:"online_since,omitzero"`
	Build       map[string]string `json:"build,omitempty"`

	Devices map[string]device.State `json:"devices,omitempty"`
	Drops   map[string]uint64       `json:"drops,omitempty"` // "device/reason" → count
	Trust   *trust.Versions         `json:"trust,omitempty"`
	Outbox  *Outbox                 `json:"outbox,omitempty"`
	Uplink  *uplink.Status          `json:"uplink,omitempty"` // nil: no platform configured
	Fleet   *Counters               `json:"fleet,omitempty"`
}

// Outbox is the queue's state as the fleet sees it.
type Outbox struct {
	Depth  int       `json:"depth"` // events waiting for the platform
	Dead   int       `json:"dead"`
	Full   bool      `json:"full"`
	Oldest time.Time `json:"oldest,omitzero"` // occurred_at of the oldest waiting event
	// OldestAgeSeconds is now − Oldest when the message was made: it changes every
	// second, so it is left out of the comparison that decides whether to republish.
	OldestAgeSeconds float64 `json:"oldest_age_seconds,omitempty"`
	LastSeq          uint64  `json:"last_seq"`
}

// OutboxOf converts the outbox's stats.
func OutboxOf(s outbox.Stats) *Outbox {
	return &Outbox{Depth: s.Pending, Dead: s.Dead, Full: s.Full, Oldest: s.Oldest, LastSeq: s.LastSeq}
}

// Counters are the fleet client's own counters since start.
type Counters struct {
	Commands      uint64 `json:"commands"`       // commands received
	Refused       uint64 `json:"refused"`        // of which refused before running
	EventsDropped uint64 `json:"events_dropped"` // verdict summaries not published (queue full or broker down)
}

// fingerprint is what decides whether a status changed: the message without the fields
// that change by themselves with time.
func fingerprint(s Status) string {
	s.At = time.Time{}
	if s.Outbox != nil {
		o := *s.Outbox
		o.OldestAgeSeconds = 0
		s.Outbox = &o
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// Verdict is one message on …/<terminal_id>/events: what was read and what the verifier
// said, for dashboards. No identity, masked or not, no code text and no event id: it
// cannot serve as a second path of identity events to the platform.
type Verdict struct {
	Seq        uint64    `json:"seq"`
	At         time.Time `json:"at"`
	Device     string    `json:"device"`
	Source     string    `json:"source"`              // qr | card
	CodeType   string    `json:"code_type,omitempty"` // ehc_offline | ehc_online | payment | insurance | unknown
	CardKind   string    `json:"card_kind,omitempty"`
	Status     string    `json:"status,omitempty"` // valid | invalid | pending
	Reason     string    `json:"reason,omitempty"`
	Offline    bool      `json:"offline,omitempty"`
	TrustStale bool      `json:"trust_stale,omitempty"`
}

// VerdictOf summarises e; nothing from e.Identity or the code's text is read.
func VerdictOf(e *event.Event) Verdict {
	v := Verdict{Seq: e.Seq, At: e.OccurredAt, Device: e.Source.Device, Source: e.Source.Kind}
	if e.Code != nil {
		v.CodeType = e.Code.Type
	}
	if e.Card != nil {
		v.CardKind = e.Card.Kind
	}
	if x := e.Verification; x != nil {
		v.Status, v.Reason, v.Offline, v.TrustStale = x.Status, x.Reason, x.Offline, x.TrustStale
	}
	return v
}
