//go:build unix

package fleet

import (
	"syscall"
	"testing"
)

// raiseFileLimit lifts this process's soft limit on open files to at least n (up to
// the hard limit): each simulated terminal holds a socket. mosquitto, started after
// this, inherits it.
func raiseFileLimit(tb testing.TB, n int) {
	tb.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
	if l.Cur >= uint64(n) {
		return
	}
	if l.Max < uint64(n) {
		tb.Fatalf("open files: hard limit %d, %d needed (ulimit -Hn)", l.Max, n)
	}
	l.Cur = uint64(n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
}
