package main

// Checks of an installed agent for `ehc-agent doctor`: configuration, state directory,
// trust store, pcscd, the running agent (outbox, clock, platform), the local API port,
// the receipt printer.
// Each failure says how to fix it. Like every doctor check they only look: doctor runs
// beside a live agent, whose database it never opens (bbolt allows one process), asking
// the agent's local API instead.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/daemon"
	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/holder"
	"github.com/ehc-agent/ehc-agent/drivers/pcsc"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
	"github.com/ehc-agent/ehc-agent/offline/reserve"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

func init() {
	doctorChecks = append(doctorChecks, func(ctx context.Context) []doctorResult {
		var rows []doctorResult
		for _, c := range doctorInstallChecks(installedConfig(doctorConfigPath())) {
			rows = append(rows, c(ctx)...)
		}
		return rows
	})
}

// installedConfig is path, or when none was given the configuration the package or
// the Windows service reads, if it exists: doctor checks what the service will run.
func installedConfig(path string) string {
	if path != "" {
		return path
	}
	def := "/etc/ehc-agent/agent.yaml"
	if runtime.GOOS == "windows" {
		def = filepath.Join(os.Getenv("ProgramData"), "ehc-agent", "agent.yaml")
	}
	if _, err := os.Stat(def); err == nil {
		return def
	}
	return ""
}

// doctorInstallChecks returns the installation checks for the configuration at path
// ("" = built-in defaults and the environment, as `run` reads them).
func doctorInstallChecks(path string) []doctorCheck {
	e := &doctorEnv{path: path, now: time.Now, pcscSocket: pcscSocketPath(), pcscProbe: pcsc.Probe}
	return []doctorCheck{e.checkConfig, e.checkStateDir, e.checkTrust, e.checkPCSC, e.checkAgent, e.checkDevices, e.checkAPIPort, e.checkPrinter}
}

// doctorEnv is what the checks share: the configuration, loaded once, and the running
// agent's status, asked once.
type doctorEnv struct {
	path       string
	now        func() time.Time
	pcscSocket string // "" where pcscd is not a unix socket (Windows)
	// pcscProbe asks the smart-card service for the readers a pattern names (pcsc.Probe);
	// nil skips that question.
	pcscProbe func(pattern string) (matched, all []string, reason string, err error)

	cfgOnce sync.Once
	cfg     *config.Config
	cfgErr  error

	agentOnce sync.Once
	agent     agentProbe
}

// agentProbe is what the local API said.
type agentProbe struct {
	answered bool // something ehc-agent-like answered /healthz
	status   *daemon.Status
	err      error // why there is no status
}

func (e *doctorEnv) config() (*config.Config, error) {
	e.cfgOnce.Do(func() { e.cfg, e.cfgErr = config.Load(e.path) })
	return e.cfg, e.cfgErr
}

func row(check, status, detail string) []doctorResult {
	return []doctorResult{{Check: check, Status: status, Detail: detail}}
}

func (e *doctorEnv) checkConfig(context.Context) []doctorResult {
	name := e.path
	if name == "" {
		name = "(built-in defaults and EHC_AGENT_* environment)"
	}
	cfg, err := e.config()
	if err != nil {
		var problems []string
		if es, ok := config.AsErrors(err); ok {
			for _, x := range es {
				problems = append(problems, x.Error())
			}
		} else {
			problems = append(problems, err.Error())
		}
		return row("configuration", doctorFail, fmt.Sprintf("%s: %s — fix: correct these keys (every key is explained in agent.example.yaml)",
			name, strings.Join(problems, "; ")))
	}
	drivers := map[string]bool{}
	for _, d := range daemon.Drivers() {
		drivers[d] = true
	}
	for i, d := range cfg.Devices {
		if !drivers[d.Driver] {
			return row("configuration", doctorFail, fmt.Sprintf("%s: devices[%d].driver %q is not in this build (drivers: %s) — fix: use one of those, or the Linux build for USB",
				name, i, d.Driver, strings.Join(daemon.Drivers(), ", ")))
		}
	}
	return row("configuration", doctorPass, fmt.Sprintf("%s: terminal %s, %d device(s)", name, cfg.TerminalID, len(cfg.Devices)))
}

func (e *doctorEnv) checkStateDir(ctx context.Context) []doctorResult {
	cfg, err := e.config()
	if err != nil {
		return nil // the configuration row said why
	}
	dir := cfg.StateDir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return row("state_dir", doctorWarn, dir+" does not exist yet; the agent creates it at its first start")
	case err != nil:
		return row("state_dir", doctorFail, err.Error()+" — fix: check the permissions of its parent directories")
	case !fi.IsDir():
		return row("state_dir", doctorFail, dir+" is not a directory — fix: set state_dir to a directory")
	}
	// Writable is proven by writing: permission bits do not tell about ACLs, read-only
	// mounts or a full disk. The probe file is removed at once.
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return row("state_dir", doctorFail, fmt.Sprintf("%s is not writable by this user: %v — fix: run doctor as the agent's user (sudo -u ehc-agent ehc-agent doctor) or chown -R ehc-agent:ehc-agent %s", dir, err, dir))
	}
	f.Close()
	os.Remove(f.Name())
	var rows []doctorResult
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		rows = row("state_dir", doctorWarn, fmt.Sprintf("%s is writable, but mode %v lets other users in (it holds the outbox key and the API token) — fix: chmod 700 %s", dir, fi.Mode().Perm(), dir))
	} else {
		rows = row("state_dir", doctorPass, dir+" is writable")
	}
	d, err := durableWrites(ctx, filepath.Join(dir, fmt.Sprintf(".doctor-%d.storage", os.Getpid())), storageProbeWrites, storageProbeGap)
	rows = append(rows, storageRow(dir, d, err)...)
	free, size, err := reserve.DiskFree(dir)
	rows = append(rows, diskRow(dir, free, size, err)...)
	return append(rows, reserveRow(filepath.Join(dir, "agent.reserve"))...)
}

// reserveRow tells whether the disk space the agent keeps for a full disk is kept:
// a short reserve means the disk filled up and events are being committed in it.
func reserveRow(path string) []doctorResult {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return row("reserve", doctorInfo, path+" does not exist yet; the agent makes it at start")
	case err != nil:
		return row("reserve", doctorWarn, err.Error())
	case fi.Size() < reserve.DefaultSize:
		return row("reserve", doctorFail, fmt.Sprintf("%s is in use: the disk filled up and events are committed in the space kept for them — fix: %s", path, hints.For(pipeline.ReasonDiskFull)))
	}
	return row("reserve", doctorPass, fmt.Sprintf("%s keeps %s for a full disk", path, bytesIEC(uint64(fi.Size()))))
}

// Free space on the state_dir's filesystem: the outbox grows there while the platform
// cannot be reached (up to outbox.max_pending events, some 2 KiB each).
const (
	lowDisk       = 256 << 20 // warn: a day's outage of a busy kiosk, and bbolt's growth
	exhaustedDisk = 16 << 20  // fail: the next outbox growth can fail, and events with it
)

// diskRow judges the free space of the state_dir's filesystem.
func diskRow(dir string, free, size uint64, err error) []doctorResult {
	if err != nil {
		return row("disk", doctorInfo, fmt.Sprintf("%s: free space unknown (%v)", dir, err))
	}
	detail := fmt.Sprintf("%s free of %s on the filesystem of %s", bytesIEC(free), bytesIEC(size), dir)
	switch {
	case free < exhaustedDisk:
		return row("disk", doctorFail, detail+" — fix: free space now (old logs, journald's vacuum): events are kept on this disk until the platform has them")
	case free < lowDisk:
		return row("disk", doctorWarn, detail+" — fix: free some space; while the platform is unreachable the outbox grows here")
	}
	return row("disk", doctorPass, detail)
}

// bytesIEC shows n in KiB, MiB or GiB with one decimal.
func bytesIEC(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

// The storage probe: a few durable writes, paced like scans, in the state_dir.
const (
	storageProbeWrites = 8
	storageProbeGap    = 20 * time.Millisecond
	// slowStorage is the median durable write above which storage is called slow:
	// every event waits for a journal commit (about two such writes) before the
	// kiosk is told, so 20 ms here is some 50 ms on every scan.
	slowStorage = 20 * time.Millisecond
)

// storageRow judges the state_dir's storage by the durable writes the probe timed.
func storageRow(dir string, d []time.Duration, err error) []doctorResult {
	if err != nil {
		return row("storage", doctorFail, fmt.Sprintf("%s: a durable write failed: %v — fix: check the disk (dmesg, smartctl) and the free space; the agent cannot keep events without it", dir, err))
	}
	s := slices.Clone(d)
	slices.Sort(s)
	med, worst := s[len(s)/2], s[len(s)-1]
	detail := fmt.Sprintf("a durable write (4 KiB + flush) takes %s, at most %s (%d tried)", roundDur(med), roundDur(worst), len(s))
	if med > slowStorage {
		return row("storage", doctorWarn, fmt.Sprintf("%s: %s — fix: %s", hints.SlowStorage, detail, hints.For(hints.SlowStorage)))
	}
	return row("storage", doctorPass, detail)
}

// roundDur shows a duration to three significant digits (0.412ms, 35.2ms).
func roundDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func (e *doctorEnv) checkTrust(ctx context.Context) []doctorResult {
	cfg, err := e.config()
	if err != nil {
		return nil
	}
	anchorPath := filepath.Join(cfg.Trust.Dir, trust.AnchorFile)
	b, err := os.ReadFile(anchorPath)
	if err != nil {
		return row("trust anchor", doctorFail, fmt.Sprintf("%v — fix: put the platform's trust anchor public key in %s (the agent does not start without it)", err, anchorPath))
	}
	if _, err := sm2sig.ParsePublicKeyText(b); err != nil {
		return row("trust anchor", doctorFail, fmt.Sprintf("%s: not a trust anchor public key (%v) — fix: 130 hex digits 04‖X‖Y or a PEM PUBLIC KEY", anchorPath, err))
	}
	rows := row("trust anchor", doctorPass, anchorPath)

	// The running agent's store may hold a newer key set than the directory (trust
	// sync): ask it first.
	if a := e.probeAgent(ctx); a.status != nil {
		return append(rows, trustRow("trust store", a.status.Trust, "the running agent", cfg.Trust.Staleness)...)
	}
	ks := filepath.Join(cfg.Trust.Dir, trust.KeySetFile)
	if _, err := os.Stat(ks); errors.Is(err, fs.ErrNotExist) {
		return append(rows, row("trust store", doctorWarn, fmt.Sprintf("no %s, and no running agent to ask for its cached one: codes verify only once the platform sent a key set — fix: configure platform.url, or put a key set in %s", trust.KeySetFile, ks))...)
	}
	st, err := trust.LoadDir(cfg.Trust.Dir, trust.Options{StalenessLimit: cfg.Trust.Staleness})
	if err != nil {
		return append(rows, row("trust store", doctorFail, err.Error()+" — fix: replace it with the platform's current documents")...)
	}
	return append(rows, trustRow("trust store", st.Versions(e.now()), cfg.Trust.Dir, cfg.Trust.Staleness)...)
}

func trustRow(check string, v trust.Versions, from string, limit time.Duration) []doctorResult {
	switch v.Reason {
	case trust.ReasonNeverUpdated:
		return row(check, doctorFail, fmt.Sprintf("%s: %s: no key set was ever installed or synced, every code fails with unknown_root_key — fix: %s",
			from, v.Reason, hints.For(v.Reason)))
	case trust.ReasonStale:
		return row(check, doctorWarn, fmt.Sprintf("%s: %s: key set v%d is stale (next_update %s, more than %v ago): results carry trust_stale — fix: %s",
			from, v.Reason, v.KeySet, v.NextUpdate.UTC().Format(time.RFC3339), limit, hints.For(v.Reason)))
	}
	return row(check, doctorPass, fmt.Sprintf("%s: key set v%d, next update %s, revocations v%d", from, v.KeySet, v.NextUpdate.UTC().Format(time.RFC3339), v.Revocations))
}

// pcscSocketPath is where pcsc-lite's clients find pcscd (its PCSCLITE_CSOCK_NAME).
func pcscSocketPath() string {
	if runtime.GOOS == "windows" {
		return ""
	}
	if p := os.Getenv("PCSCLITE_CSOCK_NAME"); p != "" {
		return p
	}
	return "/run/pcscd/pcscd.comm"
}

func (e *doctorEnv) checkPCSC(ctx context.Context) []doctorResult {
	cfg, err := e.config()
	if err != nil {
		return nil
	}
	var readers []string
	for _, d := range cfg.Devices {
		if d.Driver == "pcsc" {
			readers = append(readers, d.Name)
		}
	}
	if len(readers) == 0 {
		return row("pcscd", doctorInfo, "no card reader configured")
	}
	if e.pcscSocket == "" {
		return row("pcscd", doctorInfo, "Windows: card readers go through the Smart Card service (SCardSvr); check it runs: sc.exe query SCardSvr")
	}
	// Connecting is what every PC/SC client does first; with socket activation it also
	// starts pcscd. Whether the agent's user may go further is polkit's decision
	// (60-ehc-agent-pcscd.rules), which the readers' state in the agent's status shows.
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "unix", e.pcscSocket)
	if err != nil {
		return row("pcscd", doctorFail, fmt.Sprintf("%s: not reachable at %s (%v), needed by %s — fix: %s",
			pcsc.ReasonNoService, e.pcscSocket, err, strings.Join(readers, ", "), hints.For(pcsc.ReasonNoService)))
	}
	c.Close()
	rows := row("pcscd", doctorPass, fmt.Sprintf("reachable at %s, for %s", e.pcscSocket, strings.Join(readers, ", ")))
	if e.pcscProbe == nil {
		return rows
	}
	// The readers each device names, asked of the service as the driver would.
	for _, d := range cfg.Devices {
		if d.Driver != "pcsc" {
			continue
		}
		matched, all, reason, err := e.pcscProbe(d.PCSC.Reader)
		check := "card reader " + d.Name
		switch {
		case reason == "":
			rows = append(rows, row(check, doctorPass, strings.Join(matched, ", "))...)
		case reason == pcsc.ReasonNoReader && err == nil:
			rows = append(rows, row(check, doctorFail, fmt.Sprintf("%s: pcsc.reader %q matches none of the service's readers (%s) — fix: %s",
				reason, d.PCSC.Reader, orNone(all), hints.For(reason)))...)
		default:
			rows = append(rows, row(check, doctorFail, fmt.Sprintf("%s: %v — fix: %s", reason, err, hints.For(reason)))...)
		}
	}
	return rows
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// checkDevices shows each device's state: the running agent's, with the reason and
// its fix; without a running agent, a serial port another program holds (port_busy),
// which is what would stop the agent's next start from reading it.
func (e *doctorEnv) checkDevices(ctx context.Context) []doctorResult {
	cfg, err := e.config()
	if err != nil {
		return nil
	}
	if a := e.probeAgent(ctx); a.status != nil {
		names := make([]string, 0, len(a.status.Devices))
		for n := range a.status.Devices {
			names = append(names, n)
		}
		sort.Strings(names)
		var rows []doctorResult
		for _, n := range names {
			rows = append(rows, deviceRow(a.status.Devices[n])...)
		}
		return rows
	}
	var rows []doctorResult
	for _, d := range cfg.Devices {
		path := ""
		switch d.Driver {
		case "serial":
			path = d.Serial.Path
		case "idcard":
			path = d.IDCard.Path
		}
		if path == "" {
			continue // found by USB ids: the serial ports row lists what is attached
		}
		if _, err := os.Stat(path); err != nil {
			rows = append(rows, row("device "+d.Name, doctorFail, fmt.Sprintf("%s: %s: %v — fix: %s",
				serial.ReasonNotFound, path, errors.Unwrap(err), hints.For(serial.ReasonNotFound)))...)
			continue
		}
		ps, err := holder.File(path, 0)
		if err != nil || len(ps) == 0 {
			rows = append(rows, row("device "+d.Name, doctorPass, path+" is attached, and no other program holds it")...)
			continue
		}
		rows = append(rows, row("device "+d.Name, doctorFail, fmt.Sprintf("%s: %s: held by %s — fix: %s",
			serial.ReasonBusy, path, holder.Describe(ps), hints.For(serial.ReasonBusy)))...)
	}
	return rows
}

// deviceRow is one device's state as the running agent reports it.
func deviceRow(st device.State) []doctorResult {
	check := "device " + st.Device
	if st.State == device.StateConnected && st.Hint == "" {
		return row(check, doctorPass, strings.TrimSpace("connected "+st.Detail))
	}
	detail := st.State
	if st.Reason != "" {
		detail += " (" + st.Reason + ")"
	}
	if st.Detail != "" {
		detail += ": " + st.Detail
	}
	status := doctorWarn
	if st.Hint != "" {
		detail += " — fix: " + st.Hint
		if st.State != device.StateConnected {
			status = doctorFail
		}
	}
	return row(check, status, detail)
}

// probeAgent asks the local API of a running agent: /healthz, which needs no token,
// tells an agent from another program on the port; /v1/status needs the token file.
func (e *doctorEnv) probeAgent(ctx context.Context) agentProbe {
	e.agentOnce.Do(func() {
		cfg, err := e.config()
		if err != nil {
			e.agent.err = err
			return
		}
		e.agent = probeAPI(ctx, cfg)
	})
	return e.agent
}

func probeAPI(ctx context.Context, cfg *config.Config) agentProbe {
	l, err := newLocalAPI(cfg, 3*time.Second)
	if err != nil {
		return agentProbe{err: err}
	}
	resp, err := l.do(ctx, http.MethodGet, "/healthz", "", nil)
	if err != nil {
		return agentProbe{err: err}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return agentProbe{err: fmt.Errorf("%s/healthz answered %s: not an ehc-agent", l.base, resp.Status)}
	}
	p := agentProbe{answered: true}
	token, err := l.token()
	if err != nil {
		p.err = fmt.Errorf("cannot read the API token (%v): run doctor as root or as the ehc-agent user", err)
		return p
	}
	resp, err = l.do(ctx, http.MethodGet, "/v1/status", token, nil)
	if err != nil {
		p.err = err
		return p
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.err = fmt.Errorf("/v1/status answered %s", resp.Status)
		return p
	}
	var st daemon.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		p.err = fmt.Errorf("/v1/status: %v", err)
		return p
	}
	p.status = &st
	return p
}

// outboxOldestWarn is the age of the oldest undelivered event past which the platform
// is considered out of reach for long enough to look at.
const outboxOldestWarn = time.Hour

func (e *doctorEnv) checkAgent(ctx context.Context) []doctorResult {
	if _, err := e.config(); err != nil {
		return nil
	}
	a := e.probeAgent(ctx)
	if a.status == nil {
		if a.answered {
			return row("agent", doctorWarn, "running, but its status is not readable: "+a.err.Error())
		}
		return row("agent", doctorInfo, fmt.Sprintf("not running or not reachable (%v); outbox: `ehc-agent queue status` reads it while the agent is stopped", a.err))
	}
	s := a.status
	rows := row("agent", doctorPass, "running, terminal "+s.TerminalID)
	rows = append(rows, stateResetRow(s.StateReset)...)

	ob := s.Outbox
	detail := fmt.Sprintf("%d pending, %d dead letter(s), last seq %d", ob.Pending, ob.Dead, ob.LastSeq)
	age := time.Duration(0)
	if ob.Pending > 0 && !ob.Oldest.IsZero() {
		age = e.now().Sub(ob.Oldest)
		detail += fmt.Sprintf(", oldest %s old", age.Round(time.Second))
	}
	switch {
	case ob.Full:
		rows = append(rows, row("outbox", doctorFail, detail+": over its cap (outbox_full) — fix: restore the platform connection; nothing is dropped meanwhile")...)
	case ob.Dead > 0:
		rows = append(rows, row("outbox", doctorWarn, detail+" — fix: `ehc-agent queue dead` shows why the platform refused them; `queue retry` once fixed")...)
	case age > outboxOldestWarn:
		rows = append(rows, row("outbox", doctorWarn, detail+" — fix: check the platform connection below")...)
	default:
		rows = append(rows, row("outbox", doctorPass, detail)...)
	}

	u := s.Uplink
	if u == nil {
		return append(rows, row("platform", doctorInfo, "no platform configured: events wait in the outbox; clock offset unknown")...)
	}
	switch u.State {
	case "auth_failed":
		rows = append(rows, row("platform", doctorFail, u.URL+": the platform refuses this terminal's signature ("+u.LastError+") — fix: register the public key in <terminal_key>.pub at the platform")...)
	case "retrying":
		rows = append(rows, row("platform", doctorWarn, fmt.Sprintf("%s: retrying since %s (%s) — fix: check network, DNS, proxy and platform.ca_file",
			u.URL, u.LastErrorAt.UTC().Format(time.RFC3339), u.LastError))...)
	default:
		rows = append(rows, row("platform", doctorPass, u.URL+": "+u.State)...)
	}
	off := fmt.Sprintf("%+.1f s from the platform's clock", u.ClockOffsetSeconds)
	if u.ClockMeasuredAt.IsZero() {
		// Even a refused request measures the clock (its answer has a Date); until one
		// has, 0 would claim the clocks agree.
		rows = append(rows, row("clock", doctorInfo, "offset unknown: no answer from the platform yet")...)
	} else if u.ClockOffset {
		rows = append(rows, row("clock", doctorWarn, off+": beyond platform.clock_offset_limit, the agent uses the platform's time — fix: enable time sync (timedatectl set-ntp true; on Windows w32tm /resync)")...)
	} else {
		rows = append(rows, row("clock", doctorPass, off)...)
	}
	return rows
}

func (e *doctorEnv) checkAPIPort(ctx context.Context) []doctorResult {
	cfg, err := e.config()
	if err != nil {
		return nil
	}
	addr := cfg.API.Listen
	if addr == "" {
		return row("local API", doctorInfo, "off (api.listen is empty)")
	}
	if a := e.probeAgent(ctx); a.answered {
		return row("local API", doctorPass, addr+" answered by the running agent")
	}
	// Nothing answers as an agent: the port must be free for the agent's next start.
	l, err := net.Listen("tcp", addr)
	if pt := api.PortTaken(addr, err); pt != nil {
		return row("local API", doctorFail, fmt.Sprintf("%s: %v — fix: %s", hints.APIPortTaken, pt, hints.For(hints.APIPortTaken)))
	}
	if err != nil {
		return row("local API", doctorFail, fmt.Sprintf("%s is not bindable (%v) — fix: set api.listen (and the kiosk's URL) to a loopback address and free port", addr, err))
	}
	l.Close()
	return row("local API", doctorPass, addr+" is free for the agent")
}

// checkPrinter shows the receipt printer's paper status: the running agent's (it asks
// every printer.status_interval), or, with no agent running, the printer's own answer
// to the ESC/POS real-time status query — nothing is printed either way. A running
// agent whose status is not readable is left alone with its printer.
func (e *doctorEnv) checkPrinter(ctx context.Context) []doctorResult {
	cfg, err := e.config()
	if err != nil {
		return nil
	}
	if !cfg.Printer.Enabled() {
		return row("printer", doctorInfo, "no receipt printer configured")
	}
	a := e.probeAgent(ctx)
	switch {
	case a.status != nil && !a.status.Printer.Configured:
		return row("printer", doctorWarn, "configured, but the running agent has no printer — fix: restart the agent to apply the printer settings")
	case a.status != nil:
		return printerRow(a.status.Printer, "the running agent", e.now())
	case a.answered:
		return row("printer", doctorInfo, "not asked: the running agent uses it, and its status is not readable ("+a.err.Error()+")")
	}
	st, err := daemon.CheckPrinter(ctx, cfg.Printer)
	if err != nil {
		return row("printer", doctorFail, err.Error()+" — fix: correct the printer settings")
	}
	return printerRow(st, "asked now", e.now())
}

// printerRow is the printer's state with its fix.
func printerRow(st daemon.PrinterStatus, from string, now time.Time) []doctorResult {
	detail := fmt.Sprintf("%s %s (%s", st.Transport, st.Where, from)
	if st.CheckedAt != nil && from != "asked now" {
		detail += fmt.Sprintf(", %s ago", now.Sub(*st.CheckedAt).Round(time.Second))
	}
	detail += "): " + st.Paper
	if st.Reason != "" && st.Reason != st.Paper {
		detail += " (" + st.Reason + ")"
	}
	switch {
	case st.Paper == daemon.PaperUnknown:
		return row("printer", doctorInfo, detail+": not asked yet")
	case st.Reason == "":
		return row("printer", doctorPass, detail)
	case st.Paper == daemon.PaperNearEnd:
		return row("printer", doctorWarn, detail+" — fix: "+st.Hint)
	}
	if st.Detail != "" {
		detail += ": " + st.Detail
	}
	if st.Hint != "" {
		detail += " — fix: " + st.Hint
	}
	return row("printer", doctorFail, detail)
}
