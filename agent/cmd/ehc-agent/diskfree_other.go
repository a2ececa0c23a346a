//go:build !linux && !windows

package main

import "errors"

func diskFree(string) (free, size uint64, err error) {
	return 0, 0, errors.New("free space is not known on this system")
}
