//go:build !linux

package vprinter

import (
	"errors"
	"os"
)

func openRawPTY() (master, slave *os.File, err error) {
	return nil, nil, errors.New("vprinter: the pty mode needs Linux")
}
