//go:build !linux

package main

import "os"

// syncData flushes f (FlushFileBuffers on Windows), as the journal does there.
func syncData(f *os.File) error { return f.Sync() }
