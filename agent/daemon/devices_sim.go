package daemon

import (
	"log/slog"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/sim"
)

func init() {
	register("sim", func(c config.Device, _ *slog.Logger) (device.Device, error) {
		return sim.New(sim.Config{Name: c.Name, File: c.Sim.File, Interval: c.Sim.Interval, Repeat: c.Sim.Repeat})
	})
}
