package daemon

import (
	"log/slog"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/idcard"
)

func init() {
	register("idcard", func(c config.Device, log *slog.Logger) (device.Device, error) {
		r := c.IDCard
		return idcard.New(idcard.Config{
			Name: c.Name, Path: r.Path, VID: r.VID, PID: r.PID, SerialNumber: r.SerialNumber,
			Baud: r.Baud, Poll: r.PollInterval, Logger: log,
		})
	})
}
