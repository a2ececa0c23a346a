package config

import (
	"strings"
	"testing"
	"time"
)

func TestIDCardValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    IDCard
		want string // "" for valid, else the key of the one problem
	}{
		{"path, defaults", IDCard{Path: "/dev/ttyUSB0"}, ""},
		{"usb ids", IDCard{VID: "10C4", PID: "ea60", SerialNumber: "X1", Baud: 9600, PollInterval: time.Second}, ""},
		{"nothing", IDCard{}, "r.path"},
		{"both", IDCard{Path: "/dev/ttyUSB0", VID: "10c4", PID: "ea60"}, "r.path"},
		{"serial number with path", IDCard{Path: "/dev/ttyUSB0", SerialNumber: "X1"}, "r.path"},
		{"bad vid", IDCard{VID: "10c", PID: "ea60"}, "r.vid"},
		{"no pid", IDCard{VID: "10c4"}, "r.vid"},
		{"baud", IDCard{Path: "/dev/ttyUSB0", Baud: 115201}, "r.baud"},
		{"poll too fast", IDCard{Path: "/dev/ttyUSB0", PollInterval: 299 * time.Millisecond}, "r.poll_interval"},
		{"poll negative", IDCard{Path: "/dev/ttyUSB0", PollInterval: -time.Second}, "r.poll_interval"},
	} {
		var keys []string
		tc.c.validate("r", func(key, format string, args ...any) { keys = append(keys, key) })
		if got := strings.Join(keys, ","); got != tc.want {
			t.Errorf("%s: problems at %q, want %q", tc.name, got, tc.want)
		}
	}
}
