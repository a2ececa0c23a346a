package uplink_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// trustFixture is a trust anchor and a root key, and the documents they make.
type trustFixture struct {
	t      *testing.T
	anchor *sm2.PrivateKey
	root   *sm2.PrivateKey
	dir    string // served by the emulator
}

func newTrustFixture(t *testing.T) *trustFixture {
	t.Helper()
	f := &trustFixture{t: t, dir: t.TempDir()}
	var err error
	if f.anchor, err = sm2sig.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if f.root, err = sm2sig.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, trust.AnchorFile), []byte(sm2sig.Public(f.anchor).Hex()+"\n"), 0o644)
	return f
}

func (f *trustFixture) keySetPayload(version int, nextUpdate time.Time) []byte {
	return fmt.Appendf(nil, `{"version":%d,"issued_at":"2026-01-01T00:00:00Z","next_update":%q,"roots":[{"index":1,"public_key":%q,"not_before":"2026-01-01T00:00:00Z","not_after":"2031-01-01T00:00:00Z"}]}`,
		version, nextUpdate.UTC().Format(time.RFC3339), sm2sig.Public(f.root).Hex())
}

func (f *trustFixture) seal(payload []byte, by *sm2.PrivateKey) []byte {
	env, err := trust.Seal(payload, func(p []byte) ([]byte, error) { return sm2sig.Sign(by, p) })
	if err != nil {
		f.t.Fatal(err)
	}
	return env
}

func (f *trustFixture) keySet(version int) []byte {
	return f.seal(f.keySetPayload(version, time.Now().Add(24*time.Hour)), f.anchor)
}

func (f *trustFixture) revocations(version int) []byte {
	return f.seal(fmt.Appendf(nil, `{"version":%d,"issued_at":"2026-01-01T00:00:00Z","issuers":[{"issuer_id":4401,"serial":17}]}`, version), f.anchor)
}

func (f *trustFixture) serve(name string, b []byte) {
	if err := os.WriteFile(filepath.Join(f.dir, name), b, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// A tampered key set, a lower version, an unsigned file and one signed by another key
// are each refused with their reason; the cached documents stay in use; a good newer
// one is applied; unchanged documents cost a 304.
func TestTrustSync(t *testing.T) {
	t.Parallel()
	f := newTrustFixture(t)
	f.serve(trust.KeySetFile, f.keySet(2))
	f.serve(trust.RevocationsFile, f.revocations(5))
	var e *env
	e = newEnv(t, envOptions{sim: platformsim.Options{TrustDir: f.dir}})
	ts, err := trust.Open(e.db, sm2sig.Public(f.anchor), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.ApplyKeySet(f.keySet(1)); err != nil {
		t.Fatal(err)
	}
	up, err := uplink.New(uplink.Options{URL: e.sim.URL(), TerminalID: terminalID, Key: e.key, Outbox: e.ob, Trust: ts,
		Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := up.SyncTrust(ctx); err != nil {
		t.Fatal(err)
	}
	v := ts.Versions(time.Now())
	if v.KeySet != 2 || v.Revocations != 5 || !v.HasRevocations {
		t.Fatalf("after sync: %+v, want key set 2, revocations 5", v)
	}
	before := e.sim.Stats()
	if err := up.SyncTrust(ctx); err != nil {
		t.Fatal(err)
	}
	after := e.sim.Stats()
	if after.NotModified-before.NotModified != 2 || after.TrustDocuments != before.TrustDocuments {
		t.Fatalf("unchanged documents were sent again: %d → %d documents, %d → %d 304s",
			before.TrustDocuments, after.TrustDocuments, before.NotModified, after.NotModified)
	}

	other, _ := sm2sig.GenerateKey()
	good3 := f.keySet(3)
	// v3's signature over a payload edited to say version 9.
	var tampered trust.Envelope
	json.Unmarshal(good3, &tampered)
	p, _ := base64.StdEncoding.DecodeString(tampered.Payload)
	tampered.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(p), `"version":3`, `"version":9`, 1)))
	tb, _ := json.Marshal(tampered)
	for _, c := range []struct {
		name, reason string
		doc          []byte
	}{
		{"tampered payload", trust.ReasonBadSignature, tb},
		{"lower version", trust.ReasonVersionDowngrade, f.keySet(1)},
		{"unsigned file", trust.ReasonBadEnvelope, f.keySetPayload(3, time.Now().Add(time.Hour))},
		{"signed by another key", trust.ReasonBadSignature, f.seal(f.keySetPayload(3, time.Now().Add(time.Hour)), other)},
	} {
		f.serve(trust.KeySetFile, c.doc)
		err := up.SyncTrust(ctx)
		if trust.Reason(err) != c.reason {
			t.Fatalf("%s: sync error %v, want reason %s", c.name, err, c.reason)
		}
		if v := ts.Versions(time.Now()); v.KeySet != 2 || !v.HasKeySet {
			t.Fatalf("%s: store now at key set %d; the cached version 2 must stay", c.name, v.KeySet)
		}
		if st := up.Status(); st.TrustError != "keyset: "+c.reason {
			t.Fatalf("%s: status trust_error %q", c.name, st.TrustError)
		}
		if !strings.Contains(e.logs.String(), `"reason":"`+c.reason+`"`) {
			t.Fatalf("%s: refusal not logged with its reason:\n%s", c.name, e.logs.String())
		}
	}
	// The cached key set survived on disk, too.
	reopened, err := trust.Open(e.db, sm2sig.Public(f.anchor), trust.Options{})
	if err != nil || reopened.Versions(time.Now()).KeySet != 2 {
		t.Fatalf("reopened store: %v %+v", err, reopened.Versions(time.Now()))
	}

	f.serve(trust.KeySetFile, good3)
	f.serve(trust.RevocationsFile, f.revocations(6))
	if err := up.SyncTrust(ctx); err != nil {
		t.Fatal(err)
	}
	if v := ts.Versions(time.Now()); v.KeySet != 3 || v.Revocations != 6 {
		t.Fatalf("good documents not applied: %+v", v)
	}
	if st := up.Status(); st.TrustError != "" || st.TrustSyncAt.IsZero() {
		t.Fatalf("status after a good sync: %+v", st)
	}
}

// The sync loop runs at once, then again when the key set's next_update comes, long
// before the configured interval.
func TestTrustSyncFollowsNextUpdate(t *testing.T) {
	t.Parallel()
	f := newTrustFixture(t)
	f.serve(trust.KeySetFile, f.seal(f.keySetPayload(2, time.Now().Add(2*time.Second)), f.anchor))
	e := newEnv(t, envOptions{sim: platformsim.Options{TrustDir: f.dir}})
	ts, err := trust.Open(e.db, sm2sig.Public(f.anchor), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.up, err = uplink.New(uplink.Options{URL: e.sim.URL(), TerminalID: terminalID, Key: e.key, Outbox: e.ob, Trust: ts,
		TrustSyncInterval: time.Hour, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, 5*time.Second, "first sync", func() bool { return ts.Versions(time.Now()).KeySet == 2 })
	f.serve(trust.KeySetFile, f.keySet(3))
	waitFor(t, 10*time.Second, "sync at next_update", func() bool { return ts.Versions(time.Now()).KeySet == 3 })
}

// A terminal without a revocation list asks since=0 (the endpoint always carries
// since; the emulator, like a strict platform, answers 400 without it) and gets the
// platform's first list, version 1; asked again with since=1 it gets a 304.
func TestTrustSyncFirstRevocationList(t *testing.T) {
	t.Parallel()
	f := newTrustFixture(t)
	f.serve(trust.KeySetFile, f.keySet(1))
	f.serve(trust.RevocationsFile, f.revocations(1))
	e := newEnv(t, envOptions{sim: platformsim.Options{TrustDir: f.dir}})
	ts, err := trust.Open(e.db, sm2sig.Public(f.anchor), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := uplink.New(uplink.Options{URL: e.sim.URL(), TerminalID: terminalID, Key: e.key, Outbox: e.ob, Trust: ts, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if v := ts.Versions(time.Now()); v.HasRevocations {
		t.Fatalf("fresh store already has a revocation list: %+v", v)
	}
	if err := up.SyncTrust(context.Background()); err != nil {
		t.Fatalf("first sync: %v (status %+v)", err, up.Status())
	}
	if v := ts.Versions(time.Now()); !v.HasRevocations || v.Revocations != 1 || v.KeySet != 1 {
		t.Fatalf("after the first sync: %+v, want key set 1 and revocations 1", v)
	}
	before := e.sim.Stats()
	if err := up.SyncTrust(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := e.sim.Stats(); after.NotModified-before.NotModified != 2 || after.TrustDocuments != before.TrustDocuments {
		t.Fatalf("second sync: %d → %d documents, %d → %d 304s", before.TrustDocuments, after.TrustDocuments, before.NotModified, after.NotModified)
	}
}
