package main

import (
	"os"
	"syscall"
)

// syncData flushes f's data as the journal (bbolt) does on Linux: fdatasync.
func syncData(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
