package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/offline/verify"
)

// newVerifier opens the trust store and the replay cache in db and builds the verifier.
// The trust anchor is pinned by trust.dir/anchor.pub; the key set and revocations found
// there seed the store, which keeps whatever newer version it already holds.
func newVerifier(cfg *config.Config, db *bbolt.DB, log *slog.Logger) (*verify.Verifier, *trust.Store, *replay.Cache, error) {
	anchorPath := filepath.Join(cfg.Trust.Dir, trust.AnchorFile)
	ab, err := os.ReadFile(anchorPath)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trust.dir: %w", err)
	}
	anchor, err := sm2sig.ParsePublicKeyText(ab)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trust.dir: %s: not a trust anchor public key: %w", anchorPath, err)
	}
	ts, err := trust.Open(db, anchor, trust.Options{StalenessLimit: cfg.Trust.Staleness})
	if err != nil {
		return nil, nil, nil, err
	}
	for _, d := range ts.Discarded() {
		log.Warn("cached trust document no longer usable", "reason", "trust_discarded", "detail", d)
	}
	for _, f := range []struct {
		name  string
		apply func([]byte) error
	}{{trust.KeySetFile, ts.ApplyKeySet}, {trust.RevocationsFile, ts.ApplyRevocations}} {
		p := filepath.Join(cfg.Trust.Dir, f.name)
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = f.apply(b)
		}
		switch reason := trust.Reason(err); {
		case err == nil:
		case reason == "version_downgrade":
			log.Info("trust document on disk is older than the cached one; keeping the cached one", "file", p)
		default:
			log.Error("trust document refused; keeping the cached one", "file", p, "reason", reason, "err", err)
		}
	}
	rc, err := replay.Open(db, replay.Options{}, time.Now())
	if err != nil {
		return nil, nil, nil, err
	}
	v := verify.New(ts, rc, verify.Options{Skew: orNone(cfg.Verify.Skew), IssuerAllow: cfg.Verify.IssuerAllow,
		DuplicateWindow: orNone(cfg.Verify.DuplicateWindow)})
	return v, ts, rc, nil
}

// orNone maps a configured 0 ("none") to verify's negative "none"; verify reads 0 as
// "default", but the configuration has already applied its defaults.
func orNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
