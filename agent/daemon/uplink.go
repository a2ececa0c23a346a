package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"sync"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// runUplink starts delivery of the outbox to the platform and the trust sync, when a
// platform is configured: two goroutines, registered in wg, that end when ctx does.
// A configuration that cannot work (unreadable CA or client certificate, a terminal
// key that does not parse) is an error, so the agent does not start half-connected.
func (d *Daemon) runUplink(ctx context.Context, wg *sync.WaitGroup) error {
	u := d.uplink
	if u == nil {
		return nil
	}
	// Subscribers are called after the outbox committed the event: the right moment
	// to wake the delivery loop.
	d.pipe.Subscribe(notifier{u})
	wg.Add(2)
	go func() { defer wg.Done(); u.RunDelivery(ctx) }()
	go func() { defer wg.Done(); u.RunTrustSync(ctx) }()
	return nil
}

// newUplink builds the platform client from the configuration; nil when no platform
// is configured.
func (d *Daemon) newUplink() (*uplink.Uplink, error) {
	p := d.cfg.Platform
	if p.URL == "" {
		return nil, nil
	}
	keyPath := p.KeyPath(d.cfg.StateDir)
	key, created, err := uplink.LoadOrCreateKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("platform.terminal_key: %w", err)
	}
	if created {
		d.log.Warn("terminal key created; register its public key at the platform before events can be delivered",
			"reason", "terminal_key_created", "public_key_file", keyPath+uplink.PublicKeySuffix,
			"public_key", sm2sig.Public(key).Hex(), "terminal_id", d.cfg.TerminalID)
	}
	var tlsCfg *tls.Config
	if u, _ := url.Parse(p.URL); u != nil && u.Scheme == "https" {
		if tlsCfg, err = uplink.LoadTLS(p.CAFile, p.ClientCert, p.ClientKey); err != nil {
			return nil, fmt.Errorf("platform.ca_file / client_cert: %w", err)
		}
	}
	u, err := uplink.New(uplink.Options{
		URL: p.URL, TerminalID: d.cfg.TerminalID, Key: key, TLS: tlsCfg,
		Timeout: p.Timeout, ResolveTimeout: p.ResolveTimeout,
		ClockOffsetLimit: p.ClockOffsetLimit, TrustSyncInterval: p.TrustSyncInterval,
		Outbox: d.outbox, Trust: d.trust, Logger: d.log.With("component", "uplink"),
	})
	if err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	return u, nil
}

// notifier wakes the delivery loop for each committed event; Notify never blocks, as
// a subscriber must not.
type notifier struct{ u *uplink.Uplink }

func (n notifier) Event(*event.Event) { n.u.Notify() }
