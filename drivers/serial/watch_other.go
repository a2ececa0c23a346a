//go:build !linux

package serial

import "log/slog"

// watcher is Linux's inotify watch (watch_linux.go). Elsewhere there is none: Run
// reconnects on the backoff alone, which these methods leave untouched.
type watcher struct{}

func newWatcher(*slog.Logger) *watcher     { return nil }
func (w *watcher) events() <-chan struct{} { return nil }
func (w *watcher) arm([]watchTarget)       {}
func (w *watcher) disarm()                 {}
func (w *watcher) close()                  {}
