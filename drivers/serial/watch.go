package serial

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// How Run reacts to the watcher (watch_linux.go). The backoff alone can leave a scanner
// that came back unused for up to MaxBackoff; a node appearing ends the wait instead.
const (
	// settleQuiet: a plug is a burst of events (the kernel creates the node, udev sets its
	// owner and mode, then adds the by-id links); the attempt waits for this much quiet,
	// so that it comes after the burst rather than in the middle of it.
	settleQuiet = 20 * time.Millisecond
	// settleMax bounds that wait from the first event, so that a directory that never
	// stops changing cannot postpone the attempt for ever.
	settleMax = 100 * time.Millisecond
	// maxWatchSpacing caps the least time between two attempts the watcher causes. After
	// one that fails it is MinBackoff, doubling with each further one, so a churning directory
	// (ptys made and freed all day, a flapping device) costs at most four failed opens a
	// second, while a plug in the middle of it is still seen within about
	// maxWatchSpacing + settleMax: well within the second issue 4 asks for.
	maxWatchSpacing = 250 * time.Millisecond
)

// watchTarget is a directory to watch and the names in it whose appearance (created,
// moved in, or given new permissions) may make the port openable.
type watchTarget struct {
	dir    string
	name   string // the name, or with prefix its start ("" and prefix: any name)
	prefix bool
}

func (t watchTarget) matches(name string) bool {
	if t.prefix {
		return strings.HasPrefix(name, t.name)
	}
	return name == t.name
}

// maxLinkHops bounds the symlink chain followed, as the kernel bounds it (ELOOP).
const maxLinkHops = 8

// watchTargets says where to look for the port to come back. By path: the path's
// directory, and the directory each symlink on the way points into (a fixed link such
// as /dev/scanner -> ttyUSB0 does not change when the device returns; its target does).
// By USB ids: new tty nodes in /dev, and the directory the port was last found in
// (the enumerator may list ports elsewhere, such as ptys in tests).
func (d *Device) watchTargets(lastPath string) []watchTarget {
	if d.cfg.Path != "" {
		return pathTargets(d.cfg.Path)
	}
	ts := []watchTarget{{dir: "/dev", name: "tty", prefix: true}}
	if lastPath != "" {
		if dir := filepath.Dir(lastPath); dir != "/dev" {
			ts = append(ts, watchTarget{dir: dir, prefix: true})
		}
	}
	return ts
}

// pathTargets follows path through its symlinks, as far as they exist, and returns a
// target for each step.
func pathTargets(path string) []watchTarget {
	p := filepath.Clean(path)
	var ts []watchTarget
	for range maxLinkHops {
		ts = append(ts, appearTarget(p))
		target, err := os.Readlink(p)
		if err != nil {
			break // not a symlink, or not there (yet)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = filepath.Clean(target)
	}
	return ts
}

// appearTarget is the watch that sees p appear: its directory if that exists, else the
// nearest existing ancestor, watched for the first missing component (udev removes
// /dev/serial/by-id with the last USB serial port). Once that appears, the next arm
// goes one level deeper.
func appearTarget(p string) watchTarget {
	dir, name := filepath.Dir(p), filepath.Base(p)
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return watchTarget{dir: dir, name: name}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return watchTarget{dir: dir, name: name}
		}
		dir, name = parent, filepath.Base(dir)
	}
}

// waitRetry returns when the next open attempt is due: once backoff has passed, or once
// events has fired and the burst has settled, but not before notBefore. woken says the
// events did it. A nil events channel (no watcher) leaves the backoff alone. A value on
// loan (a lend or reclaim asked) ends the wait at once, so that a lend of a device that
// is not connected takes effect without waiting for the backoff.
func waitRetry(done, loan <-chan struct{}, events <-chan struct{}, backoff time.Duration, notBefore time.Time) (woken bool) {
	fallback := time.NewTimer(backoff)
	defer fallback.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var first time.Time
	for {
		select {
		case <-done:
			return false
		case <-loan:
			return false
		case <-fallback.C:
			return false
		case <-events:
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			due := now.Add(settleQuiet)
			if latest := first.Add(settleMax); due.After(latest) {
				due = latest
			}
			if due.Before(notBefore) {
				due = notBefore
			}
			settle.Reset(due.Sub(now))
		case <-settle.C:
			return true
		}
	}
}
