// Package sim is a scanner driver without hardware: each line of a file (or of standard
// input) is one scan. It lets the whole pipeline run end to end where no scanner, not
// even a virtual one, can be attached, and it is the simplest driver to read first.
package sim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// Config is one sim device.
type Config struct {
	Name     string
	File     string        // path, or "-" for standard input
	Interval time.Duration // pause between scans
	Repeat   bool          // start the file again at its end (not for standard input)
	Stdin    io.Reader     // standard input; nil = os.Stdin
}

// Device is a sim scanner.
type Device struct{ c Config }

// New checks c and returns the device.
func New(c Config) (*Device, error) {
	if c.File == "" {
		return nil, errors.New("sim: no file")
	}
	if c.File == "-" && c.Repeat {
		return nil, errors.New("sim: standard input cannot repeat")
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	return &Device{c: c}, nil
}

// Name is the configured device name.
func (d *Device) Name() string { return d.c.Name }

// Run sends the file's lines as scans, then idles until ctx is done.
func (d *Device) Run(ctx context.Context, sink device.Sink) error {
	sink.State(device.State{Device: d.c.Name, State: device.StateConnected, At: time.Now()})
	defer sink.State(device.State{Device: d.c.Name, State: device.StateStopped, At: time.Now()})
	for {
		if err := d.pass(ctx, sink); err != nil {
			sink.State(device.State{Device: d.c.Name, State: device.StateDisconnected, Reason: "read_failed", Detail: err.Error(), At: time.Now()})
			break
		}
		if !d.c.Repeat || ctx.Err() != nil {
			break
		}
	}
	<-ctx.Done()
	return nil
}

func (d *Device) pass(ctx context.Context, sink device.Sink) error {
	var r io.Reader = d.c.Stdin
	if d.c.File != "-" {
		f, err := os.Open(d.c.File)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), framing.MaxScan*2)
	t := time.NewTimer(0)
	defer t.Stop()
	for sc.Scan() {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(line) == 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sink.Read(device.Read{Device: d.c.Name, Driver: "sim", Kind: "qr", Data: bytes.Clone(line), At: time.Now()})
		t.Reset(d.c.Interval)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", d.c.File, err)
	}
	return nil
}
