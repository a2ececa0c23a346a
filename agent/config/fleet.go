package config

import (
	"time"

	"github.com/ehc-agent/ehc-agent/agent/fleet"
)

// Fleet is the connection to the hospital's MQTT broker, through which IT sees this
// terminal and steers it (agent/fleet, docs/FLEET.md). An empty broker means no
// fleet: the agent works fully without one.
type Fleet struct {
	Broker     string `mapstructure:"broker"`      // mqtts://host[:8883]; mqtt:// on loopback only
	Prefix     string `mapstructure:"prefix"`      // topics are <prefix>/<terminal_id>/…
	CAFile     string `mapstructure:"ca_file"`     // PEM: the only CAs trusted for the broker
	ClientCert string `mapstructure:"client_cert"` // PEM: this terminal's certificate (CN = terminal_id)
	ClientKey  string `mapstructure:"client_key"`  // PEM: its key
	// CommandKey is the fleet's SM2 public key that signs commands: 130 hex digits, or
	// the path of a file holding hex or a PEM "PUBLIC KEY". Empty: commands refused.
	CommandKey    string        `mapstructure:"command_key"`
	Events        bool          `mapstructure:"events"`         // publish masked verdict summaries
	KeepAlive     time.Duration `mapstructure:"keepalive"`      // MQTT keep-alive
	SessionExpiry time.Duration `mapstructure:"session_expiry"` // broker keeps the session this long while away
	ReconnectMin  time.Duration `mapstructure:"reconnect_min"`  // backoff base after a lost connection
	ReconnectMax  time.Duration `mapstructure:"reconnect_max"`  // backoff cap
	Heartbeat     time.Duration `mapstructure:"heartbeat"`      // status republished at least this often
}

// validate applies the defaults of unset durations and prefix, and checks every key;
// with no broker only the values that are set are checked.
func (f *Fleet) validate(bad func(key, format string, args ...any)) {
	if f.Prefix == "" {
		f.Prefix = DefaultFleetPrefix
	}
	for _, d := range []struct {
		key      string
		v        *time.Duration
		def      time.Duration
		min, max time.Duration
		why      string
	}{
		// MQTT carries the keep-alive in seconds, in 16 bits.
		{"fleet.keepalive", &f.KeepAlive, fleet.DefaultKeepAlive, 5 * time.Second, 18 * time.Hour, ""},
		{"fleet.session_expiry", &f.SessionExpiry, fleet.DefaultSessionExpiry, time.Minute, 7 * 24 * time.Hour, ""},
		{"fleet.reconnect_min", &f.ReconnectMin, fleet.DefaultReconnectMin, 100 * time.Millisecond, time.Minute, ""},
		{"fleet.reconnect_max", &f.ReconnectMax, fleet.DefaultReconnectMax, time.Second, time.Hour, ""},
		// Below a few seconds a heartbeat is load on a broker of thousands, not news.
		{"fleet.heartbeat", &f.Heartbeat, fleet.DefaultHeartbeat, 10 * time.Second, time.Hour, ""},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < d.min || *d.v > d.max {
			bad(d.key, "%s is outside %s..%s%s", *d.v, d.min, d.max, d.why)
		}
	}
	if f.ReconnectMax < f.ReconnectMin {
		bad("fleet.reconnect_max", "%s is below reconnect_min %s", f.ReconnectMax, f.ReconnectMin)
	}
	if err := fleet.CheckPrefix(f.Prefix); err != nil {
		bad("fleet.prefix", "%v", err)
	}
	if f.CommandKey != "" {
		if _, err := fleet.ParseCommandKey(f.CommandKey); err != nil {
			bad("fleet.command_key", "%v", err)
		}
	}
	if (f.ClientCert == "") != (f.ClientKey == "") {
		bad("fleet.client_cert", "client_cert and client_key go together")
	}
	if f.Broker == "" {
		return
	}
	u, err := fleet.ParseBroker(f.Broker)
	if err != nil {
		bad("fleet.broker", "%v", err)
		return
	}
	if fleet.IsTLS(u) {
		if f.CAFile == "" {
			bad("fleet.ca_file", "required for mqtts: the broker's CA is pinned, the system's CAs are not used")
		}
		if f.ClientCert == "" {
			bad("fleet.client_cert", "required for mqtts: the broker knows a terminal by its certificate (CN = terminal_id)")
		}
	}
}

// DefaultFleetPrefix is the topic prefix when none is configured.
const DefaultFleetPrefix = "ehc"
