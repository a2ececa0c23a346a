package serial

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ehc-agent/ehc-agent/drivers/holder/holdertest"
)

// withoutSysAdmin runs f on an OS thread of its own without CAP_SYS_ADMIN in its
// effective set: root bypasses TIOCEXCL with it, and tests here often run as root. The
// thread is never handed back (the goroutine exits locked), so the process keeps its
// capabilities everywhere else.
func withoutSysAdmin(t *testing.T, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[unix.CAP_SYS_ADMIN/32].Effective &^= 1 << (unix.CAP_SYS_ADMIN % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("dropping CAP_SYS_ADMIN on one thread: %v", err)
	}
}

// Issue #12: a port another process holds exclusively is port_busy, and the state's
// detail names that process by name and pid.
func TestPortBusyNamesHolder(t *testing.T) {
	path, pid := holdertest.ExclusivePTY(t)
	d, err := New(Config{Name: "scanner-1", Path: path, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var reason, detail string
	withoutSysAdmin(t, func() {
		var p interface{ Close() error }
		p, _, reason, detail = d.open()
		if p != nil {
			p.Close()
		}
	})
	if reason != "port_busy" {
		t.Fatalf("reason %q (%s), want port_busy", reason, detail)
	}
	if want := fmt.Sprintf("%s: held by sleep (pid %d)", path, pid); detail != want {
		t.Fatalf("detail %q, want %q", detail, want)
	}
}

// A busy port whose holder cannot be found keeps the OS error as its detail.
func TestOpenDetailWithoutHolder(t *testing.T) {
	got := OpenDetail("/dev/ttyNOSUCH", ReasonBusy, fmt.Errorf("Serial port busy"))
	if !strings.Contains(got, "/dev/ttyNOSUCH: Serial port busy") {
		t.Fatalf("detail %q", got)
	}
}
