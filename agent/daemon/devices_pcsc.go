package daemon

import (
	"fmt"
	"log/slog"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/pcsc"
)

func init() {
	register("pcsc", func(c config.Device, log *slog.Logger) (device.Device, error) {
		pc, err := PCSCConfig(c, log)
		if err != nil {
			return nil, err
		}
		return pcsc.New(pc)
	})
}

// PCSCConfig is the driver configuration of a configured pcsc device; `ehc-agent card
// read --config` reads with it too. Its error is a PIN file that went bad since the
// configuration was validated.
func PCSCConfig(c config.Device, log *slog.Logger) (pcsc.Config, error) {
	p := c.PCSC
	pin, err := p.PIN()
	if err != nil {
		return pcsc.Config{}, fmt.Errorf("pcsc.psam_pin_file: %w", err)
	}
	return pcsc.Config{
		Name: c.Name, Reader: p.Reader, PSAMReader: p.PSAMReader, PSAMPIN: pin,
		ReadTimeout: p.ReadTimeout, NoPhoto: p.Photo != nil && !*p.Photo, Logger: log,
	}, nil
}
