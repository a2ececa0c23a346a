package api

import (
	"errors"
	"syscall"
)

// wsaeaddrinuse is Winsock's "address in use" (10048): Go's syscall.EADDRINUSE on
// Windows is an invented number that no socket call returns.
const wsaeaddrinuse = syscall.Errno(10048)

func addrInUse(err error) bool {
	return errors.Is(err, wsaeaddrinuse) || errors.Is(err, syscall.EADDRINUSE)
}
