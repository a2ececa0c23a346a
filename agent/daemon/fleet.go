package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/fleet"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// runFleet connects the terminal to the fleet broker, when one is configured: one
// goroutine, registered in wg, that ends when ctx does (after publishing "stopped").
// Files that cannot work (CA, client certificate, fleet key) are an error, so the
// agent does not start half-connected; a broker that is away is not: the client
// keeps trying, and nothing else waits for it.
func (d *Daemon) runFleet(ctx context.Context, wg *sync.WaitGroup) error {
	fc := &d.cfg.Fleet
	if fc == nil || fc.Broker == "" {
		return nil
	}
	return d.startFleet(ctx, wg, *fc)
}

func (d *Daemon) startFleet(ctx context.Context, wg *sync.WaitGroup, fc config.Fleet) error {
	c, err := d.newFleet(fc)
	if err != nil {
		return err
	}
	if fc.Events {
		d.pipe.Subscribe(c)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); err != nil {
			d.log.Error("fleet client stopped", "reason", "fleet_failed", "err", err)
		}
	}()
	return nil
}

func (d *Daemon) newFleet(fc config.Fleet) (*fleet.Client, error) {
	o := fleet.Options{
		Broker: fc.Broker, Prefix: fc.Prefix, TerminalID: d.cfg.TerminalID, Events: fc.Events,
		KeepAlive: fc.KeepAlive, SessionExpiry: fc.SessionExpiry,
		ReconnectMin: fc.ReconnectMin, ReconnectMax: fc.ReconnectMax, Heartbeat: fc.Heartbeat,
		Status: d.fleetStatus, Handle: d.fleetCommand, Build: buildInfo(),
		Logger: d.log,
	}
	if u, err := fleet.ParseBroker(fc.Broker); err == nil && fleet.IsTLS(u) {
		var tlsCfg *tls.Config
		if tlsCfg, err = uplink.LoadTLS(fc.CAFile, fc.ClientCert, fc.ClientKey); err != nil {
			return nil, fmt.Errorf("fleet.ca_file / client_cert: %w", err)
		}
		o.TLS = tlsCfg
	}
	if fc.CommandKey != "" {
		k, err := fleet.ParseCommandKey(fc.CommandKey)
		if err != nil {
			return nil, fmt.Errorf("fleet.command_key: %w", err)
		}
		o.CommandKey = k
	} else {
		d.log.Warn("no fleet.command_key: fleet commands will be refused", "reason", "fleet_commands_disabled")
	}
	if d.uplink != nil {
		// Command freshness is judged on trusted time, as code validity is.
		o.Now = d.uplink.Now
	}
	c, err := fleet.New(o)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return c, nil
}

// fleetStatus is the agent's part of the retained status.
func (d *Daemon) fleetStatus() fleet.Status {
	s := d.Status()
	return fleet.Status{Devices: s.Devices, Drops: s.Drops, Trust: &s.Trust, Outbox: fleet.OutboxOf(s.Outbox), Uplink: s.Uplink}
}

// fleetCommand runs one verified fleet command. Results carry no personal data.
func (d *Daemon) fleetCommand(ctx context.Context, c *fleet.Command) (any, error) {
	switch c.Verb {
	case fleet.VerbTrigger, fleet.VerbUntrigger:
		var a struct {
			Device string `json:"device"`
		}
		if err := json.Unmarshal(c.Args, &a); err != nil || a.Device == "" {
			return nil, fleet.Refuse(fleet.ReasonBadArgs, `args must be {"device": "<configured device name>"}`)
		}
		dev, ok := d.Device(a.Device)
		if !ok {
			return nil, fleet.Refuse("unknown_device", "no running device %q", a.Device)
		}
		t, ok := dev.(device.Triggerer)
		if !ok {
			return nil, fleet.Refuse("not_triggerable", "device %q has no host trigger configured", a.Device)
		}
		do := t.Trigger
		if c.Verb == fleet.VerbUntrigger {
			do = t.Untrigger
		}
		if err := do(ctx); err != nil {
			return nil, err
		}
		return map[string]string{"device": a.Device}, nil
	case fleet.VerbLend, fleet.VerbReclaim:
		return d.fleetLend(ctx, c)
	case fleet.VerbReload:
		if err := d.fleetReload(ctx); err != nil {
			return nil, err
		}
		return map[string]int{"devices": len(d.DeviceStates())}, nil
	case fleet.VerbResyncTrust:
		if d.uplink == nil {
			return nil, fleet.Refuse("no_platform", "no platform is configured to fetch trust documents from")
		}
		if err := d.uplink.SyncTrust(ctx); err != nil {
			return nil, err
		}
		return d.trust.Versions(d.uplink.Now()), nil
	case fleet.VerbDoctor:
		return d.fleetDoctor(), nil
	}
	return nil, fleet.Refuse(fleet.ReasonUnknownVerb, "%q", c.Verb)
}

// fleetLend runs lend ({"device": NAME, "seconds": N}) and reclaim ({"device": NAME})
// through the same path as the local API. A refusal carries the device error's reason
// code (unknown_device, not_lendable, already_lent, not_lent, bad_seconds, not_running).
func (d *Daemon) fleetLend(ctx context.Context, c *fleet.Command) (any, error) {
	var a struct {
		Device  string `json:"device"`
		Seconds *int   `json:"seconds"`
	}
	usage := `args must be {"device": "<configured device name>", "seconds": 1..600}`
	if c.Verb == fleet.VerbReclaim {
		usage = `args must be {"device": "<configured device name>"}`
	}
	if err := json.Unmarshal(c.Args, &a); err != nil || a.Device == "" || (c.Verb == fleet.VerbLend) != (a.Seconds != nil) {
		return nil, fleet.Refuse(fleet.ReasonBadArgs, "%s", usage)
	}
	if c.Verb == fleet.VerbReclaim {
		if err := d.Reclaim(ctx, a.Device, "fleet"); err != nil {
			return nil, lendRefusal(err)
		}
		return map[string]string{"device": a.Device, "state": device.StateConnecting}, nil
	}
	n := *a.Seconds
	if n < int(device.MinLend/time.Second) || n > int(device.MaxLend/time.Second) {
		return nil, fleet.Refuse(device.ErrBadLendTime.Error(), "seconds must be from 1 to 600")
	}
	until, err := d.Lend(ctx, a.Device, time.Duration(n)*time.Second, "fleet")
	if err != nil {
		return nil, lendRefusal(err)
	}
	return map[string]any{"device": a.Device, "state": device.StateLent, "until": until.UTC()}, nil
}

// lendRefusal turns a device lend error into a fleet refusal with its reason code;
// anything else stays an error (reason failed).
func lendRefusal(err error) error {
	if r := reasonOf(err); r != "lend_failed" {
		return fleet.Refuse(r, "%s", err.Error())
	}
	return err
}

// doctorRow is one finding of the fleet's doctor, in the form of `ehc-agent doctor`.
type doctorRow struct {
	Check  string `json:"check"`
	Status string `json:"status"` // pass | warn | fail | info
	Detail string `json:"detail,omitempty"`
}

// fleetDoctor judges the agent's own state, remotely: what needs IT's attention. It
// reads only what Status reads; the machine checks of `ehc-agent doctor` (serial
// ports, PC/SC) need a shell on the terminal.
func (d *Daemon) fleetDoctor() []doctorRow { return doctorRows(d.Status(), time.Now()) }

// doctorRows judges a status as the fleet's doctor command reports it, with the fix for
// each state that has one.
func doctorRows(s Status, now time.Time) []doctorRow {
	var rows []doctorRow
	add := func(check, status, format string, args ...any) {
		rows = append(rows, doctorRow{check, status, fmt.Sprintf(format, args...)})
	}
	names := make([]string, 0, len(s.Devices))
	for n := range s.Devices {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		add("devices", "warn", "none running")
	}
	for _, n := range names {
		st := s.Devices[n]
		status := "pass"
		switch st.State {
		case device.StateConnected:
		case device.StateLent: // on purpose, for a while: lent to another program
			status = "info"
		default:
			status = "fail"
		}
		detail := st.State
		if st.Reason != "" {
			detail += " (" + st.Reason + ")"
		}
		add("device "+n, status, "%s since %s%s", detail, st.At.UTC().Format(time.RFC3339), fix(st.Hint))
	}
	switch t := s.Trust; {
	case !t.HasKeySet:
		add("trust", "fail", "no key set (%s): offline codes cannot be verified%s", t.Reason, fix(t.Hint))
	case t.Stale:
		add("trust", "warn", "key set %d is stale (next_update %s)%s", t.KeySet, t.NextUpdate.UTC().Format(time.RFC3339), fix(t.Hint))
	default:
		add("trust", "pass", "key set %d, revocations %d", t.KeySet, t.Revocations)
	}
	if p := s.Printer; p.Configured {
		if p.Reason == "" {
			add("printer", "pass", "%s %s: paper %s", p.Transport, p.Where, p.Paper)
		} else {
			add("printer", "warn", "%s %s: %s%s", p.Transport, p.Where, p.Reason, fix(p.Hint))
		}
	}
	switch j := s.Journal; {
	case j.Failing:
		add("storage", "fail", "%s: %d reads could not be committed (the kiosk was told read_failed), the last at %s%s",
			j.Reason, j.Failures, j.LastFailureAt.Format(time.RFC3339), fix(j.Hint))
	case j.ReserveInUseSince != nil:
		add("storage", "warn", "disk_full since %s: events are committed in the disk reserve%s", j.ReserveInUseSince.Format(time.RFC3339), fix(j.Hint))
	case j.Commits == 0:
		add("storage", "info", "no event committed yet")
	case j.Reason != "":
		add("storage", "warn", "%s: a journal commit takes %.1f ms (median of the last %d), at most %.1f ms%s",
			j.Reason, j.RecentP50Ms, min(j.Commits, recentCommits), j.RecentMaxMs, fix(j.Hint))
	default:
		add("storage", "pass", "a journal commit takes %.3f ms (median of the last %d), at most %.3f ms", j.RecentP50Ms, min(j.Commits, recentCommits), j.RecentMaxMs)
	}
	o := s.Outbox
	switch {
	case o.Full:
		add("outbox", "fail", "full: %d events waiting", o.Pending)
	case o.Pending > 0 && now.Sub(o.Oldest) > time.Hour:
		add("outbox", "warn", "%d events waiting, oldest %s old", o.Pending, now.Sub(o.Oldest).Round(time.Second))
	default:
		add("outbox", "pass", "%d events waiting, %d dead-lettered", o.Pending, o.Dead)
	}
	if u := s.Uplink; u == nil {
		add("platform", "info", "none configured")
	} else {
		switch {
		case u.AuthFailed:
			add("platform", "fail", "the platform refuses this terminal's signature")
		case u.State == uplink.StateRetrying:
			add("platform", "warn", "retrying: %s", u.LastError)
		default:
			add("platform", "pass", "%s", u.State)
		}
		if u.ClockOffset {
			add("clock", "warn", "local clock is %.0f s off the platform's; using the platform's time", u.ClockOffsetSeconds)
		}
		if u.TrustError != "" {
			add("trust sync", "warn", "%s", u.TrustError)
		}
	}
	return rows
}

// fix appends a hint to a doctor row read by hospital IT on the fleet.
func fix(hint string) string {
	if hint == "" {
		return ""
	}
	return " — fix: " + hint
}
