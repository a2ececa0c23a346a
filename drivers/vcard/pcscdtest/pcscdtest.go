//go:build linux

// Package pcscdtest runs a private pcscd with vpcd readers for tests (DESIGN.md,
// "Virtual devices", PC/SC): Debian's pcscd started as `pcscd -f -c DIR` on a
// configuration directory of its own, its vpcd readers on free ports, killed at the end.
//
// pcscd's client socket is fixed (/run/pcscd/pcscd.comm), so only one can run per
// machine: Start takes an exclusive flock on a file in os.TempDir() and holds it until
// the test ends, which serialises the test binaries of several packages running at once.
// A pcscd left behind by a test binary that was killed is recognised by its directory
// and stopped; any other pcscd is reported, never touched.
//
// Without pcscd or vpcd installed, Start skips the test with a message, except under
// CI=true, where it fails it: there, these tests must run.
package pcscdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"
)

// Paths of Debian's packages (scripts/install-deps.sh installs them).
var (
	pcscdPaths = []string{"/usr/sbin/pcscd", "/usr/local/sbin/pcscd"}
	vpcdPaths  = []string{"/usr/lib/pcsc/drivers/serial/libifdvpcd.so", "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so"}
)

const (
	runDir    = "/run/pcscd"
	dirPrefix = "ehc-pcscd-" // our configuration directories: how an orphan is recognised
	// ReaderName is the vpcd readers' friendly name; pcscd adds " 00 00" and " 00 01".
	ReaderName = "Virtual PCD"
)

// Daemon is a running private pcscd.
type Daemon struct {
	Dir     string   // its configuration directory
	Port    int      // vpcd port of reader 0; reader i listens on Port+i
	Readers []string // PC/SC names of the two readers

	t      testing.TB
	pcscd  string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lockedBuffer
}

// Start locks, writes a configuration with two vpcd readers and starts pcscd. It
// returns once both are listed; the test's cleanup stops pcscd and unlocks.
func Start(t testing.TB) *Daemon {
	t.Helper()
	pcscd, vpcd := find(pcscdPaths), find(vpcdPaths)
	if pcscd == "" || vpcd == "" {
		msg := "pcscd and vsmartcard-vpcd are not installed (bash scripts/install-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + ": under CI=true the PC/SC tests must run")
		}
		t.Skip(msg)
	}
	unlock := lock(t)
	t.Cleanup(unlock)
	d := &Daemon{t: t, pcscd: pcscd}
	d.Dir = t.TempDir()
	// A directory name we recognise as ours, should this pcscd outlive the test.
	d.Dir = filepath.Join(d.Dir, dirPrefix+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(d.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d.Port = freePorts(t, 2)
	var conf strings.Builder
	// vpcd listens on CHANNELID for slot 0 and CHANNELID+1 for slot 1. Debian's vpcd
	// has two slots and keeps them in globals: a second reader entry would take over
	// the first's, so two readers is all one pcscd gets.
	fmt.Fprintf(&conf, "FRIENDLYNAME \"%s\"\nDEVICENAME /dev/null:0x%04X\nLIBPATH %s\nCHANNELID 0x%04X\n",
		ReaderName, d.Port, vpcd, d.Port)
	d.Readers = []string{ReaderName + " 00 00", ReaderName + " 00 01"}
	if err := os.WriteFile(filepath.Join(d.Dir, "vpcd"), []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	stopOrphan(t)
	d.start()
	t.Cleanup(d.Stop)
	return d
}

// Addr is the vpcd address of reader i, for vcard.Insert.
func (d *Daemon) Addr(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Port+i)) }

// Log is what pcscd printed so far.
func (d *Daemon) Log() string { return d.out.String() }

func (d *Daemon) start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.out = &lockedBuffer{}
	cmd := exec.Command(d.pcscd, "-f", "-c", d.Dir)
	cmd.Stdout, cmd.Stderr = d.out, d.out
	// pcscd dies with the test binary: a killed `go test` leaves no pcscd holding the
	// machine's one socket. Pdeathsig follows the thread that forks, so hold it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		d.t.Fatalf("pcscd: %v", err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); close(exited) }(d.exited)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-d.exited:
			d.t.Fatalf("pcscd exited at start: %s\n%s", cmd.ProcessState, d.out.String())
		default:
		}
		if d.ready() {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("pcscd did not list its %d readers within 10 s:\n%s", len(d.Readers), d.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *Daemon) ready() bool {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return false
	}
	defer ctx.Release()
	readers, err := ctx.ListReaders()
	if err != nil {
		return false
	}
	n := 0
	for _, r := range readers {
		for _, want := range d.Readers {
			if r == want {
				n++
			}
		}
	}
	return n == len(d.Readers)
}

// WaitCard waits until pcscd reports reader i with a card (present) or without one: a
// virtual card is seen at pcscd's next poll of vpcd, not when it connects.
func (d *Daemon) WaitCard(i int, present bool) {
	d.t.Helper()
	ctx, err := scard.EstablishContext()
	if err != nil {
		d.t.Fatalf("pcscd: %v", err)
	}
	defer ctx.Release()
	rs := []scard.ReaderState{{Reader: d.Readers[i], CurrentState: scard.StateUnaware}}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := ctx.GetStatusChange(rs, time.Until(deadline)); err != nil && err != scard.ErrTimeout {
			d.t.Fatalf("pcscd: %v", err)
		}
		if (rs[0].EventState&scard.StatePresent != 0) == present {
			return
		}
		rs[0].CurrentState = rs[0].EventState &^ scard.StateChanged
	}
	d.t.Fatalf("%s: no card %v within 5 s", d.Readers[i], present)
}

// Stop terminates pcscd (SIGTERM) and waits; it does nothing if pcscd is not running.
func (d *Daemon) Stop() { d.signal(syscall.SIGTERM) }

// Kill kills pcscd (SIGKILL) and waits: a crash, as opposed to Stop.
func (d *Daemon) Kill() { d.signal(syscall.SIGKILL) }

func (d *Daemon) signal(sig syscall.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
	if sig == syscall.SIGKILL {
		// What a crashed pcscd leaves behind; the next one refuses to start on a live
		// pid, not on a stale one, but clean up all the same.
		os.Remove(filepath.Join(runDir, "pcscd.pid"))
	}
}

// Restart starts pcscd again after Stop or Kill, with the same readers and ports.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.Stop()
	d.start()
}

// Running reports whether this pcscd is up.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

func find(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// lock takes the machine-wide pcscd lock, waiting for other test binaries.
func lock(t testing.TB) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "ehc-agent-pcscd.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("pcscd lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("pcscd lock: %v", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}

// stopOrphan kills a pcscd a killed test binary left behind (its -c directory is one of
// ours, and we hold the lock, so no test is using it), and refuses to go on beside any
// other pcscd: the machine's own, or one started by hand.
func stopOrphan(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, "pcscd.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !bytes.Contains(cmdline, []byte(dirPrefix)) {
		msg := fmt.Sprintf("another pcscd (pid %d: %s) is running; these tests need the machine's pcscd socket: stop it (systemctl stop pcscd.socket pcscd)",
			pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	os.Remove(filepath.Join(runDir, "pcscd.pid"))
}

// freePorts finds n consecutive free TCP ports. vpcd binds them on all interfaces.
func freePorts(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+n > 65535 {
			continue
		}
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free consecutive ports for vpcd")
	return 0
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
