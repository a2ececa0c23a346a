package daemon

import (
	"fmt"
	"log/slog"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/sim"
)

// Drivers lists the drivers built into this binary.
func Drivers() []string { return []string{"serial", "sim"} }

// newDevice makes the driver instance for one configured device.
func newDevice(c config.Device, log *slog.Logger) (device.Device, error) {
	switch c.Driver {
	case "sim":
		return sim.New(sim.Config{Name: c.Name, File: c.Sim.File, Interval: c.Sim.Interval, Repeat: c.Sim.Repeat})
	}
	return nil, fmt.Errorf("driver %q is not in this build", c.Driver)
}
