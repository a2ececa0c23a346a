// Package reserve keeps disk space aside for the agent's database, so that a full disk
// does not turn patients away.
//
// A kiosk's disk fills up: logs, a browser's cache, a week of events queued while the
// platform was out of reach. The database can then no longer grow, an event cannot be
// committed, and since the agent tells nobody of an event it has not committed, the
// patient in front of the kiosk gets no answer. The reserve is a file of allocated
// blocks beside the database. When a write fails for lack of space, its owner releases
// the reserve — the blocks go back to the filesystem — and writes once more: events go
// on being committed in that space while the status asks for the disk to be cleared.
// When enough space is free again, Restore takes the reserve back.
//
// The file holds no data. It is never deleted, only shortened, so its path always says
// where the space was kept.
package reserve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultSize is the space kept aside: some thousands of events, several days of a
// busy kiosk's scans, while the alarm is raised.
const DefaultSize = 16 << 20

// restoreFactor: the reserve is taken back only when this many times its size is free,
// so that taking it back does not fill the disk again at once.
const restoreFactor = 4

// File is a reserve of Size bytes at its path. It is safe for concurrent use.
type File struct {
	path string
	size int64

	mu       sync.Mutex
	inUse    bool          // released: its space is the database's now
	since    time.Time     // when it was released
	released chan struct{} // closed when it is released; a new one once restored
}

// Open makes sure path holds size allocated bytes. On a disk already too full for
// them it returns a File in use (released), as if the disk had filled up while
// running; any other failure (permissions, a read-only filesystem) is an error.
func Open(path string, size int64) (*File, error) {
	f := &File{path: path, size: size, released: make(chan struct{})}
	fi, err := os.Stat(path)
	if err == nil && fi.Size() >= size {
		return f, nil
	}
	if err := f.allocate(); err != nil {
		if NoSpace(err) {
			// ext4 keeps what a failed fallocate got: a reserve that cannot be whole
			// would hold the disk's last free blocks, that nothing could release.
			os.Truncate(path, 0)
			f.inUse, f.since = true, time.Now()
			close(f.released)
			return f, nil
		}
		return nil, err
	}
	return f, nil
}

// Path is where the reserve is kept.
func (f *File) Path() string { return f.path }

// Size is the space the reserve keeps when it is not in use.
func (f *File) Size() int64 { return f.size }

// InUse reports whether the reserve was released, and since when.
func (f *File) InUse() (bool, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inUse, f.since
}

// Released returns a channel that is closed once the reserve is in use: its owner
// learns that the disk is full without polling.
func (f *File) Released() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.released
}

// Release gives the reserve's space back to the filesystem. It reports whether there
// was space to give: false when the reserve is already in use, so the caller's write
// failing again is the disk really being full.
func (f *File) Release() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inUse {
		return false
	}
	// Shortening frees the blocks at once; the file stays, so the path keeps saying
	// where the reserve is.
	if err := os.Truncate(f.path, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false
	}
	f.inUse, f.since = true, time.Now()
	close(f.released)
	return true
}

// Restore takes the reserve back when it is in use and its filesystem has at least
// restoreFactor times its size free. It reports whether the reserve is whole again.
func (f *File) Restore() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.inUse {
		return true, nil
	}
	free, _, err := DiskFree(filepath.Dir(f.path))
	if err != nil {
		return false, err
	}
	if free < restoreFactor*uint64(f.size) {
		return false, nil
	}
	if err := f.allocate(); err != nil {
		os.Truncate(f.path, 0) // a partial allocation would be space kept for nothing
		if NoSpace(err) {
			return false, nil
		}
		return false, err
	}
	f.inUse, f.since, f.released = false, time.Time{}, make(chan struct{})
	return true, nil
}

// allocate gives the file its size in allocated blocks, durably: a reserve that a
// power cut turned back into a hole would keep nothing.
func (f *File) allocate() error {
	h, err := os.OpenFile(f.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	err = allocate(h, f.size)
	if err == nil {
		err = h.Sync()
	}
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reserve %s: %w", f.path, err)
	}
	return nil
}

// zeros allocates by writing: the way for filesystems that cannot be asked.
func zeros(h *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := h.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}
