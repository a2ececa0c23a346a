//go:build !linux && !windows

package reserve

import (
	"errors"
	"os"
	"syscall"
)

func allocate(h *os.File, size int64) error { return zeros(h, size) }

// NoSpace reports whether err is a write refused for lack of space.
func NoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// DiskFree is not known on this system; Restore then waits for a restart.
func DiskFree(string) (free, size uint64, err error) {
	return 0, 0, errors.New("free space is not known on this system")
}
