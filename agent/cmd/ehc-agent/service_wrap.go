package main

// The run command under a service manager (the Windows SCM, service_windows.go): what
// differs from a terminal is where the configuration is by default, where output goes
// (a service has no console), and what ends the run (a stop request, not a signal).
// This part is platform-neutral so that its tests run everywhere.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"
)

// serviceName names the Windows service (`sc.exe create ehc-agent …`) and the event log
// source.
const serviceName = "ehc-agent"

// serviceLogMax caps the log file; with its one predecessor, logs take at most twice
// this on a kiosk's disk however long the agent runs.
const serviceLogMax = 20 << 20

// serviceManager runs the agent as a service.
type serviceManager interface {
	// Run reports the service running, calls run with a context that ends on a stop or
	// shutdown request, and reports the service stopped when run returns.
	Run(run func(ctx context.Context) error) error
}

// runUnderService makes cmd (the run command) run under m: without --config it reads
// defaultConfig; its output and errors go to the writer openLog gives (nil: unchanged);
// m's stop requests cancel the command's context.
func runUnderService(cmd *cobra.Command, m serviceManager, defaultConfig string, openLog func() (io.WriteCloser, error)) {
	orig := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if f := c.Flags().Lookup("config"); f != nil && !f.Changed && defaultConfig != "" {
			if err := c.Flags().Set("config", defaultConfig); err != nil {
				return err
			}
		}
		if openLog != nil {
			w, err := openLog()
			if err != nil {
				return err
			}
			defer w.Close()
			c.SetOut(w)
			c.SetErr(w)
		}
		return m.Run(func(ctx context.Context) error {
			c.SetContext(ctx)
			return orig(c, args)
		})
	}
}

// rotatingLog is an append-only log file of at most max bytes: a write that would pass
// the cap first turns the file into path.1 (replacing the older one). It is closed
// before the rename, which Windows requires of an open file.
type rotatingLog struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

func openRotatingLog(path string, max int64) (*rotatingLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	l := &rotatingLog{path: path, max: max}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *rotatingLog) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

func (l *rotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := l.rotate(); err != nil {
			return 0, fmt.Errorf("log rotation: %w", err)
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *rotatingLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	l.f = nil
	old := l.path + ".1"
	_ = os.Remove(old) // Windows' rename does not replace
	if err := os.Rename(l.path, old); err != nil {
		// Keep logging into the full file rather than losing lines.
		_ = l.open()
		return err
	}
	return l.open()
}

func (l *rotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
