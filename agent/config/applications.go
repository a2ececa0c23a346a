package config

import (
	"time"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
)

// Applications is the card application of institutional terminals (PLATFORM.md, "Card
// application"): POST /v1/applications on the local API, the platform's answer shown
// and printed on the printer (printer.*), when one is configured.
type Applications struct {
	Enabled bool `mapstructure:"enabled"`
	// Timeout is how long the platform has to answer, retries included; then the kiosk
	// hears platform_unreachable.
	Timeout time.Duration `mapstructure:"timeout"`
	// ReceiptTitle is the receipt's first line; "" is 居民电子健康卡.
	ReceiptTitle string `mapstructure:"receipt_title"`
}

// validate applies the default timeout and checks the keys; applications need a
// platform (they are online only) and the local API (the kiosk applies through it).
func (a *Applications) validate(c *Config, bad func(key, format string, args ...any)) {
	if a.Timeout == 0 {
		a.Timeout = uplink.DefaultApplyTimeout
	}
	if a.Timeout < 500*time.Millisecond || a.Timeout > time.Minute {
		bad("applications.timeout", "%s is outside 500ms..1m", a.Timeout)
	}
	if len([]rune(a.ReceiptTitle)) > 16 {
		bad("applications.receipt_title", "at most 16 characters (it prints in double size)")
	}
	if !a.Enabled {
		return
	}
	if c.Platform.URL == "" {
		bad("applications.enabled", "card applications are online only: set platform.url")
	}
	if c.API.Listen == "" {
		bad("applications.enabled", "the kiosk applies through the local API: set api.listen")
	}
}
