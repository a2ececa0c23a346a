package daemon

import (
	"log/slog"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
)

func init() {
	register("serial", func(c config.Device, log *slog.Logger) (device.Device, error) {
		f, err := c.FramingConfig()
		if err != nil {
			return nil, err
		}
		t, err := c.TriggerCommands()
		if err != nil {
			return nil, err
		}
		s := c.Serial
		return serial.New(serial.Config{
			Name: c.Name, Path: s.Path, VID: s.VID, PID: s.PID, SerialNumber: s.SerialNumber,
			Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits, DTR: s.DTR, RTS: s.RTS,
			Framing: f, Trigger: t, Logger: log,
		})
	})
}
