package main

import (
	"context"
	"os"
	"time"
)

// durableWrites times n overwrites of one 4 KiB block, each made durable (fdatasync on
// Linux), in a new file at path whose blocks are written and synced beforehand, so that
// no write changes metadata: the least any durable record costs on that filesystem.
// gap is the idle time after each write: an idle disk, and a VM's disk most of all,
// answers a flush more slowly than a busy one, and a kiosk's scans come seconds apart.
// The file is removed before returning.
func durableWrites(ctx context.Context, path string, n int, gap time.Duration) ([]time.Duration, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	defer f.Close()
	block := make([]byte, 4096)
	const blocks = 16
	for i := range blocks {
		if _, err := f.WriteAt(block, int64(i)*4096); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	d := make([]time.Duration, 0, n)
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range n {
		<-t.C
		block[0] = byte(i)
		t0 := time.Now()
		if _, err := f.WriteAt(block, int64(i%blocks)*4096); err != nil {
			return d, err
		}
		if err := syncData(f); err != nil {
			return d, err
		}
		d = append(d, time.Since(t0))
		t.Reset(gap)
		if err := ctx.Err(); err != nil {
			return d, err
		}
	}
	return d, nil
}
