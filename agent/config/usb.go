package config

// USB is a USB HID scanner device (SCANNERS.md, USB).
type USB struct {
	VID string `mapstructure:"vid"`
	PID string `mapstructure:"pid"`
}

func (u *USB) validate(key string, bad func(key, format string, args ...any)) {
	if !usbID.MatchString(u.VID) || !usbID.MatchString(u.PID) {
		bad(key+".vid", "vid %q and pid %q must each be 4 hex digits", u.VID, u.PID)
	}
}
