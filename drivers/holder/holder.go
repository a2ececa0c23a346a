// Package holder finds which process holds a device file or a listening TCP port, so
// that a "port_busy" or "port taken" state can name the program to close instead of
// leaving hospital IT to guess (issue #12, "Plain-language states").
//
// On Linux it reads /proc: every /proc/PID/fd link that points at the file, or at the
// socket inode /proc/net/tcp{,6} lists as listening on the port. It only reads, and it
// sees only the processes this user may inspect (all of them as root): a holder it
// cannot see is simply not named. Elsewhere (Windows) it reports ErrUnsupported, and
// callers say "busy" without a name.
package holder

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported: this system has no /proc to ask.
var ErrUnsupported = errors.New("holder: not supported on this system")

// Process is one holder.
type Process struct {
	PID  int
	Name string // /proc/PID/comm: the program's name, at most 15 bytes
}

func (p Process) String() string { return fmt.Sprintf("%s (pid %d)", p.Name, p.PID) }

// Describe names the holders for a message: "sleep (pid 42)", "a (pid 1), b (pid 2)";
// "" for none.
func Describe(ps []Process) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
