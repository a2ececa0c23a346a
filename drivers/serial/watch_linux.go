package serial

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// watcher tells Run that a node which may be its port has appeared, through inotify.
//
// It has watches only while Run is waiting to reconnect (arm before each attempt, disarm
// once the port is open), so a connected scanner costs nothing however busy /dev or
// /dev/pts is. Its one goroutine sleeps in a read of the inotify descriptor (in Go's
// poller) and ends when close closes it. Every failure here is logged and leaves Run on
// the backoff alone, which is all other systems have (watch_other.go).
type watcher struct {
	f    *os.File
	fd   int
	c    chan struct{} // one pending wake-up at most: bursts coalesce
	done chan struct{} // closed when the reader has returned
	log  *slog.Logger

	mu  sync.Mutex
	wds map[int32][]watchTarget // what each watch descriptor is for; nil while disarmed

	lastErr string // touched by Run's goroutine only
}

// Events on a watched directory that may make the port openable: a node or link created
// or renamed into place, or given the mode that lets us open it (udev sets it after the
// kernel creates the node). Deletions never help, so they are not asked for.
const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_ONLYDIR

// newWatcher returns nil if inotify is unavailable (per-user limit reached, seccomp).
func newWatcher(log *slog.Logger) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		log.Warn("device watch unavailable; reconnecting on the backoff alone", "reason", "watch_failed", "detail", err.Error())
		return nil
	}
	// Non-blocking, so that os.NewFile hands it to the poller: a blocked Read then parks
	// the goroutine without a thread, and Close ends it.
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, c: make(chan struct{}, 1), done: make(chan struct{}), log: log}
	go w.read()
	return w
}

// events fires (once per burst, at most one pending) when a watched name appears.
func (w *watcher) events() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.c
}

// arm makes the watches exactly ts, and forgets wake-ups from before: the attempt that
// follows sees the state they reported.
func (w *watcher) arm(ts []watchTarget) {
	if w == nil {
		return
	}
	wds := make(map[int32][]watchTarget, len(ts))
	var errs []error
	for _, t := range ts {
		// Watching an inode twice returns the same descriptor: its targets are merged.
		wd, err := unix.InotifyAddWatch(w.fd, t.dir, watchMask)
		if err != nil {
			errs = append(errs, &os.PathError{Op: "inotify_add_watch", Path: t.dir, Err: err})
			continue
		}
		wds[int32(wd)] = append(wds[int32(wd)], t)
	}
	w.mu.Lock()
	old := w.wds
	w.wds = wds
	w.mu.Unlock()
	for wd := range old {
		if _, keep := wds[wd]; !keep {
			unix.InotifyRmWatch(w.fd, uint32(wd)) // EINVAL if the directory went away: already gone
		}
	}
	select {
	case <-w.c:
	default:
	}
	// A directory we cannot watch (ENOSPC: the per-user watch limit) is news once, not on
	// every attempt; the backoff still covers it.
	if msg := errors.Join(errs...); msg != nil && msg.Error() != w.lastErr {
		w.lastErr = msg.Error()
		w.log.Warn("device watch incomplete; the backoff covers it", "reason", "watch_failed", "detail", w.lastErr)
	} else if msg == nil {
		w.lastErr = ""
	}
}

// disarm removes every watch: the port is open, nothing needs to appear.
func (w *watcher) disarm() {
	if w == nil {
		return
	}
	w.mu.Lock()
	old := w.wds
	w.wds = nil
	w.mu.Unlock()
	for wd := range old {
		unix.InotifyRmWatch(w.fd, uint32(wd))
	}
}

// close ends the reader and frees the descriptor, with every watch on it.
func (w *watcher) close() {
	if w == nil {
		return
	}
	w.f.Close()
	<-w.done
}

// read turns relevant events into wake-ups until close.
func (w *watcher) read() {
	defer close(w.done)
	// An event is a 16-byte header and a NUL-padded name of at most NAME_MAX bytes: this
	// holds many, and always at least one.
	buf := make([]byte, 16*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.log.Warn("device watch stopped; reconnecting on the backoff alone", "reason", "watch_failed", "detail", err.Error())
			}
			return
		}
		if w.relevant(buf[:n]) {
			select {
			case w.c <- struct{}{}:
			default:
			}
		}
	}
}

// relevant says whether any event in b may have made the port openable.
func (w *watcher) relevant(b []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	hit := false
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		size := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:]))
		if size > len(b) {
			break // the kernel never splits an event; a short one cannot be parsed
		}
		name := b[unix.SizeofInotifyEvent:size]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		b = b[size:]
		switch ts := w.wds[wd]; {
		case mask&unix.IN_Q_OVERFLOW != 0:
			hit = true // events were lost: ours may be among them
		case ts == nil:
			// Disarmed, or the IN_IGNORED that follows removing a watch.
		case mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0:
			hit = true // a watched directory went: the next arm looks higher up
		case mask&(unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ATTRIB) != 0 && len(name) > 0:
			for _, t := range ts {
				if t.matches(string(name)) {
					hit = true
				}
			}
		}
	}
	return hit
}
