package config

import (
	"path/filepath"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
)

// Platform is the central platform the outbox delivers to (PLATFORM.md). An empty URL
// means no platform: events are committed to the outbox and wait.
type Platform struct {
	URL        string `mapstructure:"url"`         // https://…, or http:// on loopback only (the emulator)
	CAFile     string `mapstructure:"ca_file"`     // PEM: the only CAs trusted for the platform (https)
	ClientCert string `mapstructure:"client_cert"` // PEM: mTLS client certificate, when the deployment asks
	ClientKey  string `mapstructure:"client_key"`  // PEM: its key
	// TerminalKey is the SM2 private key that signs every request; created (0600) at
	// first start when missing, with its public key in TerminalKey+".pub" for
	// registration at the platform. Empty: <state_dir>/terminal.key.
	TerminalKey       string        `mapstructure:"terminal_key"`
	Timeout           time.Duration `mapstructure:"timeout"`             // one delivery or trust request
	ResolveTimeout    time.Duration `mapstructure:"resolve_timeout"`     // one /codes/resolve
	ClockOffsetLimit  time.Duration `mapstructure:"clock_offset_limit"`  // beyond: clock_offset, platform time used
	TrustSyncInterval time.Duration `mapstructure:"trust_sync_interval"` // longest pause between trust syncs
}

// KeyPath is where the terminal key lives: TerminalKey, or terminal.key in stateDir.
func (p *Platform) KeyPath(stateDir string) string {
	if p.TerminalKey != "" {
		return p.TerminalKey
	}
	return filepath.Join(stateDir, "terminal.key")
}

// validate applies the defaults of unset durations (zero) and checks every key.
func (p *Platform) validate(bad func(key, format string, args ...any)) {
	for _, d := range []struct {
		key      string
		v        *time.Duration
		def      time.Duration
		min, max time.Duration
		why      string
	}{
		{"platform.timeout", &p.Timeout, uplink.DefaultTimeout, time.Second, 5 * time.Minute, ""},
		{"platform.resolve_timeout", &p.ResolveTimeout, uplink.DefaultResolveTimeout, 100 * time.Millisecond, 30 * time.Second, ""},
		// At or above the platform's 300 s window, an offset between the two would be
		// refused as stale_timestamp forever without ever being corrected.
		{"platform.clock_offset_limit", &p.ClockOffsetLimit, uplink.DefaultClockOffsetLimit, time.Second, 299 * time.Second,
			" (it must stay below the platform's 300 s timestamp window)"},
		{"platform.trust_sync_interval", &p.TrustSyncInterval, uplink.DefaultTrustSyncInterval, time.Second, 24 * time.Hour, ""},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < d.min || *d.v > d.max {
			bad(d.key, "%s is outside %s..%s%s", *d.v, d.min, d.max, d.why)
		}
	}
	if p.URL == "" {
		return
	}
	u, err := uplink.CheckURL(p.URL)
	if err != nil {
		bad("platform.url", "%v", err)
		return
	}
	if u.Scheme == "https" && p.CAFile == "" {
		bad("platform.ca_file", "required for an https url: the platform's CA is pinned, the system's CAs are not used")
	}
	if (p.ClientCert == "") != (p.ClientKey == "") {
		bad("platform.client_cert", "client_cert and client_key go together")
	}
}
