package vscanner

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenRawPTY opens a pty pair with the slave set raw (cfmakeraw) before any host can
// open it: a new slave echoes and maps CR to NL, which would corrupt the first scans.
//
// It opens /dev/ptmx itself rather than through creack/pty, whose Open calls Fd() on
// the master and so leaves it in blocking mode: a Read blocked on such a file is not
// interrupted by Close, and Pull could then never finish. Opened non-blocking, the
// master goes to Go's poller and Close ends a blocked Read at once.
func OpenRawPTY() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	defer func() {
		if err != nil {
			master.Close()
			if slave != nil {
				slave.Close()
			}
		}
	}()
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		return nil, nil, err
	}
	if err = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, nil, err
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	// SyscallConn, not Fd: Fd would switch the descriptor to blocking mode.
	rc, err := slave.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	if cerr := rc.Control(func(fd uintptr) { err = makeRaw(int(fd)) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	return master, slave, nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// inputQueued is how many bytes wait in f's tty input queue.
func inputQueued(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); cerr != nil {
		return 0, cerr
	}
	return n, err
}
