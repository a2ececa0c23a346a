package holdertest

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// ExclusivePTY gives the slave of a new pty to a child process (sleep, as its stdin)
// after setting TIOCEXCL on it, as a program that opened the port with exclusive
// access would (NationECCode, minicom, go.bug.st/serial itself); the test keeps only
// the master, and the child is killed when the test ends. It gives the slave's path
// and the child's pid.
func ExclusivePTY(t *testing.T) (path string, pid int) {
	t.Helper()
	master, slave, err := vscanner.OpenRawPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCEXCL, 0); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "300")
	cmd.Stdin = slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	path = slave.Name()
	slave.Close()
	return path, cmd.Process.Pid
}
