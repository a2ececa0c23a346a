package daemon

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/api"
)

// runAPI starts the local API for the kiosk application, when one is configured: it
// binds the address now (a taken port or a missing certificate stops the start), then
// serves in wg until ctx ends, when it stops within api.ShutdownTimeout.
func (d *Daemon) runAPI(ctx context.Context, wg *sync.WaitGroup) error {
	c := d.cfg.API
	if c.Listen == "" {
		return nil
	}
	path := c.TokenPath(d.cfg.StateDir)
	token, created, err := api.LoadOrCreateToken(path)
	if err != nil {
		return err
	}
	if created {
		d.log.Info("local API token created", "token_file", path)
	}
	apps, appsCloser, err := d.newApply()
	if err != nil {
		return err
	}
	var applications api.Applications
	if apps != nil {
		applications = apps
	}
	opts := api.Options{
		Listen:         c.Listen,
		Token:          token,
		AllowedOrigins: c.AllowedOrigins,
		TLSCert:        c.TLSCert,
		TLSKey:         c.TLSKey,
		WSBuffer:       c.WSBuffer,
		// Events up to the journal's last seq were committed before this start and are
		// not in the API's memory: a client resuming from before them is told so.
		StartSeq:    d.outbox.Stats().LastSeq,
		Status:      func() any { return d.Status() },
		Devices:     d,
		Lending:     apiLending{d},
		OutboxDepth: func() float64 { return float64(d.outbox.Stats().Pending) },
		ReserveInUse: func() bool {
			inUse, _ := d.reserve.InUse()
			return inUse
		},
		StateReset: func() float64 { return boolGauge(d.reset != nil) },
		Build:      buildInfo(),
		Logger:     d.log,
	}
	opts.Applications = applications
	if u := d.uplink; u != nil {
		// Read from one Status, as /v1/status shows it, so metrics and status agree.
		opts.Platform = func() api.PlatformState {
			st := u.Status()
			return api.PlatformState{
				AuthFailed:          st.AuthFailed,
				ClockOffset:         time.Duration(st.ClockOffsetSeconds * float64(time.Second)),
				ClockMeasured:       !st.ClockMeasuredAt.IsZero(),
				ClockOffsetExceeded: st.ClockOffset,
			}
		}
	}
	srv, err := api.New(opts)
	if err != nil {
		appsCloser.Close()
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		appsCloser.Close()
		return err
	}
	d.pipe.Subscribe(srv)
	d.mu.Lock()
	d.api = srv
	for _, st := range d.states {
		srv.DeviceState(st)
	}
	d.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer appsCloser.Close()
		if err := srv.Serve(ctx, ln); err != nil {
			d.log.Error("local API stopped", "reason", "api_failed", "err", err)
		}
	}()
	return nil
}

// buildInfo is what /v1/status shows as "build" unless Status carries its own.
func buildInfo() map[string]string {
	b := map[string]string{"go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b["module_version"] = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b["commit"] = s.Value
			}
		}
	}
	return b
}
