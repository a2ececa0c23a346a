package daemon

import (
	"errors"
	"fmt"
	"io"

	"github.com/ehc-agent/ehc-agent/agent/apply"
	"github.com/ehc-agent/ehc-agent/drivers/printer"
)

// newApply builds the card application service when applications are enabled (config
// has checked that a platform and the local API are configured), with the receipt
// printer when one is configured, and subscribes it to the pipeline so that it sees
// the ID cards read. The closer ends both; nil service when applications are off.
func (d *Daemon) newApply() (*apply.Service, io.Closer, error) {
	c := d.cfg.Applications
	if !c.Enabled {
		return nil, nopCloser{}, nil
	}
	if d.uplink == nil {
		return nil, nil, errors.New("applications.enabled: card applications are online only: set platform.url")
	}
	o := apply.Options{
		TerminalID: d.cfg.TerminalID, Platform: d.uplink, Timeout: c.Timeout, ReceiptTitle: c.ReceiptTitle,
		PrintWidth: d.cfg.Printer.PrintWidth, Now: d.uplink.Now, Logger: d.log.With("component", "apply"),
		// Each application sent becomes a card_application event, committed by the
		// pipeline's goroutine like a read's (the journal keeps one writer).
		Events: d.pipe,
	}
	var p *printer.Printer
	if d.cfg.Printer.Enabled() {
		var err error
		// Open only checks the configuration: the printer is connected per receipt, so
		// one switched off at start is no reason to refuse it.
		if p, err = printer.Open(d.cfg.Printer.Driver()); err != nil {
			return nil, nil, fmt.Errorf("printer: %w", err)
		}
		o.Printer = p
	}
	svc, err := apply.New(o)
	if err != nil {
		if p != nil {
			p.Close()
		}
		return nil, nil, err
	}
	d.pipe.Subscribe(svc)
	return svc, closeFunc(func() error {
		svc.Close()
		if p != nil {
			return p.Close()
		}
		return nil
	}), nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type closeFunc func() error

func (f closeFunc) Close() error { return f() }
