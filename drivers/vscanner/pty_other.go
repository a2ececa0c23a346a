//go:build !linux

package vscanner

import (
	"errors"
	"os"
)

func OpenRawPTY() (master, slave *os.File, err error) {
	return nil, nil, errors.New("virtual scanners need Linux ptys")
}

func inputQueued(f *os.File) (int, error) {
	return 0, errors.New("virtual scanners need Linux ptys")
}
