package verify

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/emmansun/gmsm/sm2"
	"go.etcd.io/bbolt"
)

var (
	created = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at      = created.Add(8 * time.Hour)
)

type env struct {
	keys *issuer.Keys
	dir  string
	ts   *trust.Store
	rc   *replay.Cache
	db   *bbolt.DB
}

// newEnv makes a trust chain, a trust store and a replay cache in a real bbolt file.
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	keys, err := issuer.GenerateKeys(dir, issuer.GenerateOptions{Now: created})
	if err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "agent.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := trust.Open(db, sm2sig.Public(keys.Anchor), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.KeySetEnvelope()
	if err != nil {
		t.Fatal(err)
	}
	rv, err := keys.RevocationsEnvelope()
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.ApplyKeySet(ks); err != nil {
		t.Fatal(err)
	}
	if err := ts.ApplyRevocations(rv); err != nil {
		t.Fatal(err)
	}
	rc, err := replay.Open(db, replay.Options{}, at)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rc.Close()
		db.Close()
	})
	return &env{keys: keys, dir: dir, ts: ts, rc: rc, db: db}
}

func (e *env) code(t testing.TB, o issuer.CodeOptions) []byte {
	t.Helper()
	if o.At.IsZero() {
		o.At = at
	}
	c, err := e.keys.NewCode(o)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(c)
}

func check(t *testing.T, r Result, status, reason string) {
	t.Helper()
	if r.Status != status || r.Reason != reason {
		t.Fatalf("got %s/%s, want %s/%s", r.Status, r.Reason, status, reason)
	}
}

func TestValidCode(t *testing.T) {
	e := newEnv(t)
	v := New(e.ts, e.rc, Options{})
	ext := []byte{0xde, 0xad, 0xbe, 0xef}
	text := e.code(t, issuer.CodeOptions{Sequence: 42, Extension: ext})
	r := v.Verify(text, "scanner-1", at)
	check(t, r, StatusValid, "")
	if !r.Valid() || r.DoubleRead || r.TrustStale {
		t.Fatalf("flags: %+v", r)
	}
	want := Result{
		Status: StatusValid, EHCID: e.keys.EHCID, Category: 1, IssuerID: 4401, CertSerial: 18,
		RootIndex: 1, GeneratedAt: at, ExpiresAt: at.Add(60 * time.Second), Sequence: 42,
		Extension: "DEADBEEF",
	}
	r.GeneratedAt, r.ExpiresAt = r.GeneratedAt.UTC(), r.ExpiresAt.UTC()
	if r != want {
		t.Fatalf("result\n%+v\nwant\n%+v", r, want)
	}
	// Lowercase text (Caps Lock on a keyboard-wedge scanner) is the same code: so it
	// is a double read on the same device.
	r = v.Verify(bytes.ToLower(text), "scanner-1", at.Add(time.Second))
	check(t, r, StatusValid, "")
	if !r.DoubleRead {
		t.Fatal("lowercase re-read is not a double read")
	}
}

// Each defect of the issuer tools fails with its reason, and with no earlier one.
func TestDefects(t *testing.T) {
	e := newEnv(t)
	for _, name := range issuer.DefectNames() {
		d := issuer.Defects[name]
		t.Run(name, func(t *testing.T) {
			v := New(e.ts, e.rc, Options{})
			r := v.Verify(e.code(t, issuer.CodeOptions{Defect: name, Sequence: 1000}), "scanner-1", at)
			check(t, r, StatusInvalid, d.Reason)
			afterHolderSig := map[string]bool{ReasonNotYetValid: true, ReasonCodeExpired: true, ReasonRevoked: true, ReasonReplayed: true}
			if afterHolderSig[d.Reason] || name == "generated-after-credential" {
				if r.EHCID == "" || r.IssuerID != 4401 {
					t.Fatalf("authenticated failure without fields: %+v", r)
				}
			} else if r.EHCID != "" || r.IssuerID != 0 || !r.GeneratedAt.IsZero() {
				t.Fatalf("fields filled before the holder signature verified: %+v", r)
			}
		})
	}
}

func TestReplayAndDoubleRead(t *testing.T) {
	e := newEnv(t)
	v := New(e.ts, e.rc, Options{})
	text := e.code(t, issuer.CodeOptions{Sequence: 1})
	check(t, v.Verify(text, "scanner-1", at), StatusValid, "")
	r := v.Verify(text, "scanner-1", at.Add(2*time.Second))
	check(t, r, StatusValid, "")
	if !r.DoubleRead {
		t.Fatal("not a double read")
	}
	r = v.Verify(text, "scanner-2", at.Add(2*time.Second))
	check(t, r, StatusInvalid, ReasonReplayed)
	if r.EHCID != e.keys.EHCID {
		t.Fatal("replayed result lacks the identity")
	}
	check(t, v.Verify(text, "scanner-1", at.Add(6*time.Second)), StatusInvalid, ReasonReplayed)

	// A new code (next sequence) of the same holder is fine.
	check(t, v.Verify(e.code(t, issuer.CodeOptions{Sequence: 2}), "scanner-2", at), StatusValid, "")

	// Without a window every re-read is a replay; without a cache nothing is.
	nv := New(e.ts, e.rc, Options{DuplicateWindow: -1})
	t3 := e.code(t, issuer.CodeOptions{Sequence: 3})
	check(t, nv.Verify(t3, "d", at), StatusValid, "")
	check(t, nv.Verify(t3, "d", at), StatusInvalid, ReasonReplayed)
	free := New(e.ts, nil, Options{})
	for range 2 {
		check(t, free.Verify(t3, "d", at), StatusValid, "")
	}
}

// The replay cache is checked last: a replayed code that has since expired reports
// code_expired, and a revoked one reports revoked.
func TestReplayIsLast(t *testing.T) {
	e := newEnv(t)
	v := New(e.ts, e.rc, Options{})
	text := e.code(t, issuer.CodeOptions{Sequence: 7})
	check(t, v.Verify(text, "a", at), StatusValid, "")
	check(t, v.Verify(text, "b", at.Add(91*time.Second)), StatusInvalid, ReasonCodeExpired)
}

// A replay in the last fraction of a code's last second is still a replay: step 8
// accepts the code then (whole seconds), so the cache must still know it.
func TestReplayInLastSecond(t *testing.T) {
	e := newEnv(t)
	v := New(e.ts, e.rc, Options{})
	text := e.code(t, issuer.CodeOptions{Sequence: 8})
	last := at.Add(90*time.Second + 999*time.Millisecond)
	check(t, v.Verify(text, "a", at), StatusValid, "")
	e.rc.Purge(last)
	check(t, v.Verify(text, "b", last), StatusInvalid, ReasonReplayed)
}

func TestTimeBoundaries(t *testing.T) {
	e := newEnv(t)
	gen := at
	text := e.code(t, issuer.CodeOptions{GeneratedAt: gen, Sequence: 5})
	for _, c := range []struct {
		skew   time.Duration
		now    time.Time
		reason string
	}{
		{0, gen.Add(-30 * time.Second), ""},
		{0, gen.Add(-31 * time.Second), ReasonNotYetValid},
		{0, gen.Add(90 * time.Second), ""},
		{0, gen.Add(90*time.Second + 999*time.Millisecond), ""}, // whole seconds
		{0, gen.Add(91 * time.Second), ReasonCodeExpired},
		{-1, gen.Add(-time.Second), ReasonNotYetValid},
		{-1, gen.Add(60 * time.Second), ""},
		{-1, gen.Add(61 * time.Second), ReasonCodeExpired},
		{5 * time.Minute, gen.Add(-5 * time.Minute), ""},
		{5 * time.Minute, gen.Add(6 * time.Minute), ""},
		{5 * time.Minute, gen.Add(6*time.Minute + time.Second), ReasonCodeExpired},
	} {
		v := New(e.ts, nil, Options{Skew: c.skew})
		r := v.Verify(text, "d", c.now)
		if r.Reason != c.reason {
			t.Errorf("skew %v, now gen%+v: %q, want %q", c.skew, c.now.Sub(gen), r.Reason, c.reason)
		}
	}
	// Certificate and credential not-after are inclusive.
	for _, c := range []struct {
		defect string
		at     time.Time
		reason string
	}{
		{"", e.keys.CertNotAfter, ReasonCredentialExpired}, // the credential ends first
		{"", e.keys.CredNotAfter, ""},
		{"", e.keys.CredNotAfter.Add(time.Second), ReasonCredentialExpired},
	} {
		v := New(e.ts, nil, Options{})
		r := v.Verify(e.code(t, issuer.CodeOptions{At: c.at, Defect: c.defect}), "d", c.at)
		if r.Reason != c.reason {
			t.Errorf("at %v: %q, want %q", c.at, r.Reason, c.reason)
		}
	}
}

func TestIssuerAllowList(t *testing.T) {
	e := newEnv(t)
	text := e.code(t, issuer.CodeOptions{})
	check(t, New(e.ts, nil, Options{IssuerAllow: []uint32{1, 2}}).Verify(text, "d", at), StatusInvalid, ReasonIssuerNotAllowed)
	check(t, New(e.ts, nil, Options{IssuerAllow: []uint32{1, 4401}}).Verify(text, "d", at), StatusValid, "")
	// A revoked issuer is reported as such before the allow-list.
	rev := e.code(t, issuer.CodeOptions{Defect: "revoked-issuer"})
	check(t, New(e.ts, nil, Options{IssuerAllow: []uint32{1}}).Verify(rev, "d", at), StatusInvalid, ReasonRevokedIssuer)
}

// The certificate cache saves the root verification but never a later check.
func TestCertCacheNeverSkipsChecks(t *testing.T) {
	e := newEnv(t)
	v := New(e.ts, nil, Options{})
	text := e.code(t, issuer.CodeOptions{})
	check(t, v.Verify(text, "d", at), StatusValid, "")
	if v.CachedCerts() != 1 {
		t.Fatalf("%d cached certificates", v.CachedCerts())
	}
	check(t, v.Verify(e.code(t, issuer.CodeOptions{Sequence: 9}), "d", at), StatusValid, "")
	if v.CachedCerts() != 1 {
		t.Fatal("the same certificate cached twice: its bytes differ between codes")
	}

	// Expiry: the cached certificate is checked against now every time.
	check(t, v.Verify(e.code(t, issuer.CodeOptions{At: e.keys.CertNotAfter.Add(time.Second)}), "d", e.keys.CertNotAfter.Add(time.Second)), StatusInvalid, ReasonIssuerCertExpired)

	// Revocation published after the certificate was cached.
	e.keys.RevokedCertSerial = e.keys.CertSerial
	e.keys.RevocationVersion++
	env, err := e.keys.RevocationsEnvelope()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ts.ApplyRevocations(env); err != nil {
		t.Fatal(err)
	}
	check(t, v.Verify(text, "d", at), StatusInvalid, ReasonRevokedIssuer)

	// A new key set with another key under the same root index: the cached
	// verification was by the old key and does not count.
	e2 := newEnv(t)
	v2 := New(e2.ts, nil, Options{})
	text2 := e2.code(t, issuer.CodeOptions{})
	check(t, v2.Verify(text2, "d", at), StatusValid, "")
	other, err := sm2sig.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e2.keys.Roots[e2.keys.RootIndex] = other
	e2.keys.KeySetVersion++
	ks, err := e2.keys.KeySetEnvelope()
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.ts.ApplyKeySet(ks); err != nil {
		t.Fatal(err)
	}
	check(t, v2.Verify(text2, "d", at), StatusInvalid, ReasonBadIssuerSignature)
}

func TestCertCacheBounded(t *testing.T) {
	c := &certCache{max: 3, m: map[string]*certEntry{}}
	key := sm2sig.Public(mustKey(t))
	for i := range 10 {
		c.put([]byte(fmt.Sprint("cert", i)), &certEntry{root: key.Bytes()})
		if len(c.m) > 3 {
			t.Fatalf("%d entries", len(c.m))
		}
	}
	if c.get([]byte("cert9"), key) == nil {
		t.Fatal("the newest entry is missing")
	}
	if c.get([]byte("cert9"), sm2sig.Public(mustKey(t))) != nil {
		t.Fatal("hit under another root key")
	}
	var nilCache *certCache
	nilCache.put([]byte("x"), &certEntry{})
	if nilCache.get([]byte("x"), key) != nil {
		t.Fatal("disabled cache hit")
	}
	e := newEnv(t)
	v := New(e.ts, nil, Options{CertCacheSize: -1})
	check(t, v.Verify(e.code(t, issuer.CodeOptions{}), "d", at), StatusValid, "")
	if v.CachedCerts() != 0 {
		t.Fatal("disabled cache holds entries")
	}
}

func mustKey(t *testing.T) *sm2.PrivateKey {
	k, err := sm2sig.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTrustStaleAndMissing(t *testing.T) {
	e := newEnv(t)
	late := e.keys.NextUpdate.Add(7*24*time.Hour + time.Second)
	r := New(e.ts, nil, Options{}).Verify(e.code(t, issuer.CodeOptions{At: late}), "d", late)
	check(t, r, StatusValid, "")
	if !r.TrustStale {
		t.Fatal("stale key set not reported")
	}
	r = New(e.ts, nil, Options{}).Verify([]byte("EHC1:"), "d", late)
	if !r.TrustStale || r.Reason != ReasonMalformed {
		t.Fatalf("malformed result: %+v", r)
	}
	empty, err := trust.Open(nil, sm2sig.Public(e.keys.Anchor), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r = New(empty, nil, Options{}).Verify(e.code(t, issuer.CodeOptions{}), "d", at)
	check(t, r, StatusInvalid, ReasonUnknownRootKey)
	if !r.TrustStale {
		t.Fatal("missing key set not reported as stale")
	}
}

func TestMalformedInputs(t *testing.T) {
	e := newEnv(t)
	v := New(e.ts, e.rc, Options{})
	valid := e.code(t, issuer.CodeOptions{})
	for name, in := range map[string][]byte{
		"empty":          nil,
		"prefix only":    []byte("EHC1:"),
		"other prefix":   []byte("EHC2:" + string(valid[5:])),
		"no prefix":      valid[5:],
		"trailing space": append(bytes.Clone(valid), ' '),
		"trailing LF":    append(bytes.Clone(valid), '\n'),
		"too long":       append(bytes.Clone(valid), bytes.Repeat([]byte("0"), 4096)...),
		"one char short": valid[:len(valid)-1],
		"NUL inside":     append(append(bytes.Clone(valid[:20]), 0), valid[21:]...),
		"UTF-8":          []byte("EHC1:健康卡"),
	} {
		if r := v.Verify(in, "d", at); r.Reason != ReasonMalformed {
			t.Errorf("%s: %+v", name, r)
		}
	}
	// Prefix in any case.
	r := v.Verify(append([]byte("ehc1:"), valid[5:]...), "d", at)
	check(t, r, StatusValid, "")
}

func TestReasonsList(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons {
		if seen[r] || r == "" {
			t.Fatalf("duplicate or empty reason %q", r)
		}
		seen[r] = true
	}
	if len(Reasons) != 16 {
		t.Fatalf("%d reasons, CODES.md has 16", len(Reasons))
	}
	for _, d := range issuer.Defects {
		if !seen[d.Reason] {
			t.Fatalf("defect %s has reason %q outside the list", d.Name, d.Reason)
		}
	}
}

func TestConcurrentVerify(t *testing.T) {
	e := newEnv(t)
	v := New(e.ts, e.rc, Options{})
	codes := make([][]byte, 16)
	for i := range codes {
		codes[i] = e.code(t, issuer.CodeOptions{Sequence: uint32(i)})
	}
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for _, c := range codes {
				r := v.Verify(c, fmt.Sprint("device-", g), at)
				switch {
				case r.Status == StatusValid && !r.DoubleRead:
					fresh.Add(1)
				case r.Reason != ReasonReplayed:
					t.Errorf("unexpected %+v", r)
				}
			}
		})
	}
	// A trust update in the middle must not disturb anything.
	wg.Go(func() {
		e.keys.RevocationVersion++
		env, _ := e.keys.RevocationsEnvelope()
		if err := e.ts.ApplyRevocations(env); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if fresh.Load() != int32(len(codes)) {
		t.Fatalf("%d fresh acceptances of %d codes", fresh.Load(), len(codes))
	}
}
