package daemon

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// factory makes the driver instance for one configured device.
type factory func(c config.Device, log *slog.Logger) (device.Device, error)

// factories holds the drivers built into this binary; each registers itself from its
// own file (devices_<driver>.go), some only under build tags (USB needs cgo).
var factories = map[string]factory{}

func register(name string, f factory) { factories[name] = f }

// Drivers lists the drivers built into this binary.
func Drivers() []string {
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkDrivers refuses, at start, a configuration that asks for a driver this build
// does not have (the Windows build has no USB), naming the key.
func checkDrivers(cfg *config.Config) error {
	var errs config.Errors
	for i, d := range cfg.Devices {
		if _, ok := factories[d.Driver]; !ok {
			errs = append(errs, config.Errorf(fmt.Sprintf("devices[%d].driver", i),
				"%q is not in this build (drivers: %s)", d.Driver, strings.Join(Drivers(), ", ")))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func newDevice(c config.Device, log *slog.Logger) (device.Device, error) {
	f, ok := factories[c.Driver]
	if !ok {
		return nil, fmt.Errorf("driver %q is not in this build", c.Driver)
	}
	return f(c, log) // each driver names its device in its own log lines
}
