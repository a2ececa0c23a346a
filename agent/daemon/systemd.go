package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// runSystemd speaks the sd_notify protocol when systemd started the agent (Type=notify,
// NOTIFY_SOCKET set): READY=1 now, WATCHDOG=1 every half WatchdogSec while the pipeline
// is healthy, STOPPING=1 when ctx ends. Without NOTIFY_SOCKET (a terminal, a test, Windows)
// it does nothing.
//
// The pings prove more than "the process is alive": they stop once a read has sat in the
// pipeline without progress for half WatchdogSec (a journal write hung in fsync, a
// blocked subscriber), so systemd kills and restarts an agent that would otherwise look
// fine while every scan piles up. An idle pipeline is healthy: kiosks wait for patients.
//
// The goroutine it starts is registered in wg and ends when ctx does. The error is a
// notify socket that does not take READY=1; the agent then runs on, and systemd, which
// never heard it is ready, will stop it after TimeoutStartSec.
func (d *Daemon) runSystemd(ctx context.Context, wg *sync.WaitGroup) error {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		// A malformed WATCHDOG_USEC is the unit's mistake; without pings systemd will
		// restart the agent, so say why in the log.
		d.log.Error("systemd watchdog disabled", "reason", "watchdog_env", "err", err)
		interval = 0
	}
	ready := fmt.Sprintf("READY=1\nSTATUS=running, %d device(s)", len(d.cfg.Devices))
	sent, err := sd.SdNotify(false, ready)
	if err != nil {
		return fmt.Errorf("systemd notify: %w", err)
	}
	if !sent {
		return nil // not started by systemd
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.watchdog(ctx, interval)
		// Tells systemd that the exit which follows is a stop, not a crash.
		_, _ = sd.SdNotify(false, "STOPPING=1\nSTATUS=stopping")
	}()
	return nil
}

// watchdog pings every interval/2 while the pipeline is healthy, until ctx ends.
// interval 0 (no WatchdogSec) just waits for ctx.
func (d *Daemon) watchdog(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	period := interval / 2
	// The stall bound equals the ping period: a hang is seen at the first tick after it
	// begins and declared one period later, so systemd restarts the agent between 1 and
	// 2 WatchdogSec after the hang, and a slow (not stuck) fsync shorter than the period
	// never costs a restart.
	bound := period
	health := d.pipe.NewHealth()
	t := time.NewTicker(period)
	defer t.Stop()
	healthy := true
	_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			ok, stuck := health.Check(now, bound)
			switch {
			case ok:
				_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
				if !healthy {
					d.log.Info("pipeline progressing again; watchdog pings resumed")
					_, _ = sd.SdNotify(false, "STATUS=running")
				}
			case healthy:
				d.log.Error("pipeline stuck: no progress on pending reads; watchdog pings withheld so systemd restarts the agent",
					"reason", "pipeline_stuck", "stuck_for", stuck.Round(time.Millisecond).String(), "watchdog", interval.String())
				_, _ = sd.SdNotify(false, "STATUS=pipeline stuck, watchdog pings withheld")
			}
			healthy = ok
		}
	}
}
