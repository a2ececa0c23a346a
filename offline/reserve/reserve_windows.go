package reserve

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// allocate extends the file: NTFS allocates the clusters of a file it extends (files
// are not sparse unless marked so).
func allocate(h *os.File, size int64) error { return h.Truncate(size) }

// NoSpace reports whether err is a write refused for lack of space: the disk is full,
// or the agent's user is over its quota.
func NoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL) ||
		errors.Is(err, windows.ERROR_DISK_QUOTA_EXCEEDED)
}

// DiskFree returns the bytes free for this user, and the size, of the volume that
// holds path.
func DiskFree(path string) (free, size uint64, err error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0, err
	}
	var avail, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &totalFree); err != nil {
		return 0, 0, err
	}
	return avail, total, nil
}
