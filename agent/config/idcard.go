package config

import (
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/idcard"
)

// IDCard is a GA 467 resident ID card reader on a serial port (CARDS.md, "Resident ID
// card reader"), by path or by USB ids, like a serial scanner; always 8N1. Zero values
// take the driver's defaults (idcard.DefaultBaud, idcard.MinPoll), so a configuration
// built in code needs no defaults step.
type IDCard struct {
	Path         string        `mapstructure:"path"`
	VID          string        `mapstructure:"vid"`
	PID          string        `mapstructure:"pid"`
	SerialNumber string        `mapstructure:"serial_number"`
	Baud         int           `mapstructure:"baud"`          // 0: 115200
	PollInterval time.Duration `mapstructure:"poll_interval"` // 0: 300 ms, the least allowed
}

func (c *IDCard) validate(key string, bad func(key, format string, args ...any)) {
	switch {
	case c.Path == "" && c.VID == "":
		bad(key+".path", "missing: give a path, or vid and pid")
	case c.Path != "" && (c.VID != "" || c.PID != "" || c.SerialNumber != ""):
		bad(key+".path", "give a path or vid/pid, not both")
	case c.VID != "" && (!usbID.MatchString(c.VID) || !usbID.MatchString(c.PID)):
		bad(key+".vid", "vid %q and pid %q must each be 4 hex digits", c.VID, c.PID)
	}
	if c.Baud != 0 && !baudRates[c.Baud] {
		bad(key+".baud", "%d is not a supported rate (GA 467 readers use 115200, some 9600)", c.Baud)
	}
	if c.PollInterval != 0 && c.PollInterval < idcard.MinPoll {
		bad(key+".poll_interval", "%s is under %s, the fastest a reader may be polled (CARDS.md)", c.PollInterval, idcard.MinPoll)
	}
}
