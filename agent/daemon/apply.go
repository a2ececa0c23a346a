package daemon

import (
	"errors"
	"io"

	"github.com/ehc-agent/ehc-agent/agent/apply"
)

// newApply builds the card application service when applications are enabled (config
// has checked that a platform and the local API are configured), with the receipt
// printer when one is configured (d.printer), and subscribes it to the pipeline so that it sees
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
	if d.printer != nil {
		// Receipts go through the monitor, so that /v1/status shows what a receipt
		// found (paper out) at once; the daemon closes the printer after the API.
		o.Printer = d.printer
	}
	svc, err := apply.New(o)
	if err != nil {
		return nil, nil, err
	}
	d.pipe.Subscribe(svc)
	return svc, closeFunc(func() error {
		svc.Close()
		return nil
	}), nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type closeFunc func() error

func (f closeFunc) Close() error { return f() }
