package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// Lending devices to other programs (issue 12: the medical-insurance SDK opens the
// scanner's port itself). The local API, the CLI (through the local API) and the fleet
// all come here; the one-lender-at-a-time rule and the deadline live with each driver
// (device.Loan), so this only checks, logs and maps names to devices.
//
// A lend lasts as long as the driver instance: a reload that changes the device's
// configuration, or a restart of the agent, makes a new driver that opens the port.

// Lend lends the device called name for dur (device.MinLend to device.MaxLend) on
// behalf of by ("local_api", "fleet"), and returns when the lend ends by itself.
func (d *Daemon) Lend(ctx context.Context, name string, dur time.Duration, by string) (time.Time, error) {
	if dur < device.MinLend || dur > device.MaxLend {
		return time.Time{}, fmt.Errorf("%w: %s is outside %s to %s", device.ErrBadLendTime, dur, device.MinLend, device.MaxLend)
	}
	l, err := d.lender(name)
	if err != nil {
		return time.Time{}, err
	}
	until := time.Now().Add(dur).Truncate(time.Millisecond)
	if err := l.Lend(ctx, until); err != nil {
		d.log.Warn("device not lent", "device", name, "by", by, "reason", reasonOf(err), "err", err)
		return time.Time{}, err
	}
	d.log.Info("device lent", "device", name, "by", by, "seconds", dur.Seconds(), "until", until.Format(time.RFC3339), "reason", device.ReasonLent)
	return until, nil
}

// Reclaim ends the lend of the device called name on behalf of by.
func (d *Daemon) Reclaim(ctx context.Context, name, by string) error {
	l, err := d.lender(name)
	if err != nil {
		return err
	}
	if err := l.Reclaim(ctx); err != nil {
		d.log.Warn("device not reclaimed", "device", name, "by", by, "reason", reasonOf(err), "err", err)
		return err
	}
	d.log.Info("device reclaimed", "device", name, "by", by, "reason", device.ReasonReclaimed)
	return nil
}

func (d *Daemon) lender(name string) (device.Lender, error) {
	d.mu.Lock()
	r, ok := d.devices[name]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no device %q is configured", device.ErrUnknownDevice, name)
	}
	l, ok := r.dev.(device.Lender)
	if !ok {
		return nil, fmt.Errorf("%w: the %s driver does not hand its device to other programs (only serial, usbhid and idcard devices can be lent)",
			device.ErrNotLendable, r.cfg.Driver)
	}
	return l, nil
}

// reasonOf is the stable reason code of a lend error, for logs.
func reasonOf(err error) string {
	for _, e := range []error{device.ErrUnknownDevice, device.ErrNotLendable, device.ErrAlreadyLent, device.ErrNotLent,
		device.ErrBadLendTime, device.ErrNotRunning} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "lend_failed"
}

// apiLending is the daemon as the local API's api.Lending.
type apiLending struct{ d *Daemon }

func (a apiLending) Lend(ctx context.Context, name string, dur time.Duration) (time.Time, error) {
	return a.d.Lend(ctx, name, dur, "local_api")
}

func (a apiLending) Reclaim(ctx context.Context, name string) error {
	return a.d.Reclaim(ctx, name, "local_api")
}
