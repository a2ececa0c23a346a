package reserve

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// allocate asks the filesystem for the blocks without writing them; a filesystem that
// cannot (some FUSE and network ones) gets zeros written.
func allocate(h *os.File, size int64) error {
	err := unix.Fallocate(int(h.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return zeros(h, size)
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: h.Name(), Err: err}
	}
	return nil
}

// NoSpace reports whether err is a write refused for lack of space: the disk is full,
// or the agent's user is over its quota.
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// DiskFree returns the bytes free for an unprivileged user, and the size, of the
// filesystem that holds path.
func DiskFree(path string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
