package config

import "time"

// Outbox bounds the durable queue of events for the platform (offline/outbox,
// PLATFORM.md "Delivery rules").
type Outbox struct {
	// MaxPending is the number of undelivered events above which the status says
	// outbox_full (and each new event is logged with that reason) so the kiosk can fall
	// back. Events over the cap are still kept: nothing undelivered is ever dropped.
	MaxPending int `mapstructure:"max_pending"`
	// Retention is how long events the platform has taken are kept before they are
	// compacted away; undelivered and dead-lettered events are never compacted.
	Retention time.Duration `mapstructure:"retention"`
}

// Outbox defaults: the values offline/outbox.Open takes for zero, so that a
// configuration without an outbox section behaves as the agent always did.
const (
	DefaultOutboxMaxPending = 100_000
	DefaultOutboxRetention  = 24 * time.Hour
)

// Outbox bounds. Below a thousand events a network outage of an hour at a busy
// kiosk would already raise the alarm; ten million sealed events are gigabytes on a
// kiosk's disk. Retention below a minute leaves nothing to look at after a delivery;
// beyond 90 days the file only grows.
const (
	minOutboxMaxPending = 1_000
	maxOutboxMaxPending = 10_000_000
	minOutboxRetention  = time.Minute
	maxOutboxRetention  = 90 * 24 * time.Hour
)

// validate applies the defaults of unset values (zero, as offline/outbox reads it) and
// checks both keys.
func (o *Outbox) validate(bad func(key, format string, args ...any)) {
	if o.MaxPending == 0 {
		o.MaxPending = DefaultOutboxMaxPending
	}
	if o.Retention == 0 {
		o.Retention = DefaultOutboxRetention
	}
	if o.MaxPending < minOutboxMaxPending || o.MaxPending > maxOutboxMaxPending {
		bad("outbox.max_pending", "%d is outside %d..%d events", o.MaxPending, minOutboxMaxPending, maxOutboxMaxPending)
	}
	if o.Retention < minOutboxRetention || o.Retention > maxOutboxRetention {
		bad("outbox.retention", "%s is outside %s..%s", o.Retention, minOutboxRetention, maxOutboxRetention)
	}
}
