// Package daemon wires the agent together: configuration, store, verifier, outbox,
// pipeline and devices, and runs them until told to stop. It is the one place that knows
// every part; each part is a library that can be tested alone.
//
// Lifecycle: the context given to Run ending (SIGTERM/SIGINT) stops the devices first, so
// no new read starts, then lets the pipeline commit what it already accepted, then closes
// the store, all within StopTimeout. SIGHUP (Reload) re-reads the configuration: a valid
// one re-creates the devices that changed; an invalid one is refused with a log line and
// the running configuration stays.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/reserve"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// StopTimeout bounds a shutdown: devices get most of it, the pipeline the rest.
const StopTimeout = 4500 * time.Millisecond

// Daemon is a running agent.
type Daemon struct {
	path   string
	stdout io.Writer
	level  *slog.LevelVar
	log    *slog.Logger

	cfg    *config.Config
	db     *bbolt.DB
	reset  *StateReset // the last state reset while its damaged file is kept (statereset.go)
	lost   *stateWatch // the pipeline's journal: the outbox, watching for a lost state_dir (statelost.go)
	outbox *outbox.Outbox
	pipe   *pipeline.Pipeline
	// journal keeps the recent commit times and failures for Status (slow storage and
	// a full disk show there).
	journal journalTimes
	// reserve is disk space kept aside so that events are still committed on a full
	// disk (offline/reserve); the outbox releases it, watchReserve takes it back.
	reserve *reserve.File
	closer  io.Closer // the verifier's resources
	trust   *trust.Store
	api     *api.Server    // nil when the local API is off
	uplink  *uplink.Uplink // nil when no platform is configured
	// printer is the receipt printer, nil when none is configured. Opening it only
	// checks the configuration: it is connected per query and per receipt.
	printer *printerMonitor

	// reloadRequests lets other goroutines (the fleet) ask Run's goroutine, the only
	// one that may touch the devices, to reload; the reply is the reload's error.
	reloadRequests chan chan error

	mu      sync.Mutex // guards the maps below; d.devices is written only by Run's goroutine
	devices map[string]*running
	states  map[string]device.State
	drops   map[string]uint64
}

type running struct {
	cfg    config.Device
	dev    device.Device
	cancel context.CancelFunc
	done   chan struct{}
}

// New builds the agent from a valid configuration; nothing runs until Run.
func New(path string, cfg *config.Config, stdout io.Writer) (*Daemon, error) {
	d := &Daemon{path: path, stdout: stdout, cfg: cfg, level: new(slog.LevelVar), reloadRequests: make(chan chan error),
		devices: map[string]*running{}, states: map[string]device.State{}, drops: map[string]uint64{}}
	d.log = NewLogger(stdout, cfg.Log, d.level, cfg.Console)
	if err := checkDrivers(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	db, reset, err := openState(cfg.StateDir, time.Now()) // a damaged agent.db is moved aside (statereset.go)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	d.db = db
	if d.reserve, err = reserve.Open(filepath.Join(cfg.StateDir, "agent.reserve"), reserveSize); err != nil {
		db.Close()
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	d.journal.reserve = d.reserve
	floor, err := openFloor(cfg.StateDir, d.log)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	ring, err := seal.LoadOrCreate(filepath.Join(cfg.StateDir, "outbox.key"))
	if err != nil {
		db.Close()
		return nil, err
	}
	v, ts, rc, err := newVerifier(cfg, db, d.log)
	if err != nil {
		db.Close()
		return nil, err
	}
	d.trust, d.closer = ts, rc
	// Codes accepted by the replay cache are written in the commit of their events: one
	// fsync for both, and a kiosk is never shown an event whose code a crash could let
	// through a second time.
	ob := outbox.Options{MaxPending: cfg.Outbox.MaxPending, Retention: cfg.Outbox.Retention, InCommit: rc.WriteTx,
		Reserve: d.reserve, Floor: floor}
	if d.outbox, err = outbox.Open(db, ring, ob); err != nil {
		rc.Close()
		db.Close()
		return nil, err
	}
	// A reset of this start, or one whose salvage an earlier start did not finish,
	// salvages its damaged file now (Restore skips what is already queued).
	if d.reset = lastReset(cfg.StateDir); reset != nil {
		d.reset = reset
	}
	if d.reset != nil && d.reset.SalvageMethod == salvagePending {
		finishReset(d.reset, d.outbox, ring, cfg.Outbox.MaxPending, d.log)
	}
	if d.uplink, err = d.newUplink(); err != nil {
		rc.Close()
		db.Close()
		return nil, err
	}
	if cfg.Printer.Enabled() {
		if d.printer, err = newPrinterMonitor(cfg.Printer, d.log); err != nil {
			rc.Close()
			db.Close()
			return nil, fmt.Errorf("printer: %w", err)
		}
	}
	d.lost = newStateWatch(cfg.StateDir, d.outbox, floor, ring)
	d.pipe = pipeline.New(d.pipelineOptions(cfg), v, d.lost)
	d.pipe.Subscribe(&d.journal)
	if cfg.Console {
		d.pipe.Subscribe(console{w: stdout})
	}
	return d, nil
}

func (d *Daemon) pipelineOptions(cfg *config.Config) pipeline.Options {
	o := pipeline.Options{TerminalID: cfg.TerminalID, Logger: d.log}
	if d.uplink != nil {
		// Trusted time: local clock corrected by the platform's once the offset is
		// beyond the limit (PLATFORM.md, Time).
		o.Now = d.uplink.Now
		o.Resolver, o.ResolveError = d.uplink, uplink.ResolveReason
	}
	for _, p := range cfg.Codes.InsurancePatterns {
		o.Insurance = append(o.Insurance, regexp.MustCompile(p)) // validated by config
	}
	return o
}

// Subscribe adds a receiver of committed events (the local API, tests).
func (d *Daemon) Subscribe(s pipeline.Subscriber) { d.pipe.Subscribe(s) }

// Run runs the agent until ctx ends, reloading the configuration on each value from
// reload. It returns after a clean stop.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	pctx, pcancel := context.WithCancel(context.Background())
	pdone := make(chan struct{})
	go func() { defer close(pdone); d.pipe.Run(pctx) }()

	// Services (uplink, local API) stop after the devices and the pipeline, so the last
	// committed events still reach the kiosk and, if the network allows, the platform.
	sctx, scancel := context.WithCancel(context.Background())
	var swg sync.WaitGroup
	defer func() {
		scancel()
		swg.Wait()
		if d.printer != nil {
			d.printer.close() // after the local API: no receipt is in progress
		}
	}()
	if d.printer != nil {
		swg.Add(1)
		go func() { defer swg.Done(); d.printer.run(sctx) }()
	}
	swg.Add(1)
	go func() { defer swg.Done(); d.watchReserve(sctx, d.reserve) }()
	if err := d.runUplink(sctx, &swg); err != nil {
		pcancel()
		return err
	}
	if err := d.runAPI(sctx, &swg); err != nil {
		pcancel()
		return err
	}
	if err := d.runFleet(sctx, &swg); err != nil {
		pcancel()
		return err
	}

	d.lost.keep(d.cfg.Platform.KeyPath(d.cfg.StateDir), d.cfg.API.TokenPath(d.cfg.StateDir)) // all exist now

	dctx, dcancel := context.WithCancel(context.Background())
	d.applyDevices(dctx, d.cfg.Devices)
	d.log.Info("agent ready", "terminal_id", d.cfg.TerminalID, "devices", len(d.cfg.Devices), "last_seq", d.outbox.Stats().LastSeq)
	// Run's own ctx, so that STOPPING=1 goes out as soon as shutdown starts.
	if err := d.runSystemd(ctx, &swg); err != nil {
		d.log.Error("systemd notify failed", "reason", "sd_notify", "err", err)
	}

	var lost error
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-d.lost.lostC():
			lost, running = d.recoverLost(ctx), false
		case <-reload:
			d.Reload(dctx)
		case done := <-d.reloadRequests:
			done <- d.Reload(dctx)
		}
	}

	start := time.Now()
	d.log.Info("stopping")
	dcancel()
	d.waitDevices(time.Now().Add(StopTimeout - 500*time.Millisecond))
	pcancel()
	select {
	case <-pdone:
	case <-time.After(StopTimeout - time.Since(start)):
		d.log.Error("pipeline did not drain in time", "reason", "stop_timeout")
	}
	err := errors.Join(lost, d.closer.Close(), d.db.Close())
	d.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond).String())
	flushLog(d.log)
	return err
}

// fleetReload asks Run's goroutine to reload and waits for the outcome.
func (d *Daemon) fleetReload(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case d.reloadRequests <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reload re-reads the configuration file and applies it, or refuses it (the error).
// Only Run's goroutine may call it.
func (d *Daemon) Reload(ctx context.Context) error {
	cfg, err := config.Load(d.path)
	if err == nil {
		err = checkDrivers(cfg)
	}
	if err != nil {
		d.log.Error("configuration reload refused; the running configuration stays", "reason", "config_invalid", "err", err.Error())
		return err
	}
	for _, k := range restartOnly(d.cfg, cfg) {
		d.log.Warn("configuration change needs a restart to take effect", "key", k)
	}
	d.level.Set(levelOf(cfg.Log.Level))
	d.pipe.SetOptions(d.pipelineOptions(cfg))
	d.applyDevices(ctx, cfg.Devices)
	d.cfg.Devices, d.cfg.Codes, d.cfg.Log.Level = cfg.Devices, cfg.Codes, cfg.Log.Level
	d.log.Info("configuration reloaded", "devices", len(cfg.Devices))
	return nil
}

// restartOnly names the top-level configuration keys whose change Reload does not apply
// (everything but devices, codes and log.level): each is logged as needing a restart.
// It compares every section, so a section added later is covered without a line here.
func restartOnly(old, new *config.Config) []string {
	a := *old
	a.Devices, a.Codes, a.Log.Level = new.Devices, new.Codes, new.Log.Level // what Reload applies
	va, vb := reflect.ValueOf(a), reflect.ValueOf(*new)
	var keys []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("mapstructure"), ",")
			keys = append(keys, name)
		}
	}
	return keys
}

// applyDevices makes the running devices match want: removed and changed ones are
// stopped, new and changed ones started. Unchanged devices keep running untouched.
func (d *Daemon) applyDevices(ctx context.Context, want []config.Device) {
	keep := map[string]bool{}
	for _, c := range want {
		if r, ok := d.devices[c.Name]; ok && reflect.DeepEqual(r.cfg, c) {
			keep[c.Name] = true
		}
	}
	for name, r := range d.devices {
		if !keep[name] {
			r.cancel()
			select {
			case <-r.done:
			case <-time.After(2 * time.Second):
				d.log.Error("device did not stop in time", "device", name, "reason", "stop_timeout")
			}
			d.mu.Lock()
			delete(d.devices, name)
			d.mu.Unlock()
		}
	}
	for _, c := range want {
		if keep[c.Name] {
			continue
		}
		dev, err := newDevice(c, d.log)
		if err != nil {
			d.log.Error("device not started", "device", c.Name, "reason", "device_config", "err", err)
			continue
		}
		dctx, cancel := context.WithCancel(ctx)
		r := &running{cfg: c, dev: dev, cancel: cancel, done: make(chan struct{})}
		d.mu.Lock()
		d.devices[c.Name] = r
		d.mu.Unlock()
		sink := &pipeline.DeviceSink{Ctx: dctx, P: d.pipe, Driver: c.Driver, Logger: d.log, OnState: d.onState, OnDrop: d.onDrop}
		go func() {
			defer close(r.done)
			if err := dev.Run(dctx, sink); err != nil {
				d.log.Error("device stopped", "device", c.Name, "reason", "device_failed", "err", err)
			}
		}()
	}
}

func (d *Daemon) waitDevices(deadline time.Time) {
	for name, r := range d.devices {
		select {
		case <-r.done:
		case <-time.After(time.Until(deadline)):
			d.log.Error("device did not stop in time", "device", name, "reason", "stop_timeout")
		}
	}
}

func (d *Daemon) onState(s device.State) {
	s.Hint = hints.For(s.Reason)
	d.mu.Lock()
	d.states[s.Device] = s
	a := d.api
	d.mu.Unlock()
	if a != nil {
		a.DeviceState(s)
	}
}

func (d *Daemon) onDrop(x device.Drop) {
	d.mu.Lock()
	d.drops[x.Device+"/"+x.Reason]++
	d.mu.Unlock()
}

// Device returns the running device called name; it may implement device.Triggerer.
func (d *Daemon) Device(name string) (device.Device, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.devices[name]
	if !ok {
		return nil, false
	}
	return r.dev, true
}

// DeviceStates returns the last state of every device.
func (d *Daemon) DeviceStates() map[string]device.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]device.State, len(d.states))
	for k, v := range d.states {
		out[k] = v
	}
	return out
}

// console prints each committed event as one readable, masked line (the demo's output).
type console struct{ w io.Writer }

func (c console) Event(e *event.Event) { fmt.Fprintln(c.w, e.Summary()) }
