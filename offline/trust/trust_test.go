package trust

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"go.etcd.io/bbolt"
)

type fixture struct {
	anchor    *sm2.PrivateKey
	anchorPub *sm2sig.PublicKey
	root      *sm2.PrivateKey
	root2     *sm2.PrivateKey
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{}
	var err error
	for _, k := range []**sm2.PrivateKey{&f.anchor, &f.root, &f.root2} {
		if *k, err = sm2sig.GenerateKey(); err != nil {
			t.Fatal(err)
		}
	}
	f.anchorPub = sm2sig.Public(f.anchor)
	return f
}

func (f *fixture) seal(t testing.TB, payload string) []byte {
	t.Helper()
	env, err := Seal([]byte(payload), func(b []byte) ([]byte, error) { return sm2sig.Sign(f.anchor, b) })
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (f *fixture) keySet(version int, nextUpdate string) string {
	return fmt.Sprintf(`{"version": %d, "issued_at": "2026-11-01T00:00:00Z", "next_update": %q,
 "roots": [{"index": 1, "public_key": %q, "not_before": "2026-01-01T00:00:00Z", "not_after": "2031-01-01T00:00:00Z"},
           {"index": 200, "public_key": %q, "not_before": "2020-01-01T00:00:00Z", "not_after": "2021-01-01T00:00:00+08:00"}]}`,
		version, nextUpdate, sm2sig.Public(f.root).Hex(), strings.ToLower(sm2sig.Public(f.root2).Hex()))
}

func revDoc(version int, ehcIDs, holderKeys []string) string {
	j := func(v []string) string { b, _ := json.Marshal(v); return string(b) }
	return fmt.Sprintf(`{"version": %d, "issued_at": "2026-11-01T00:00:00Z",
 "issuers": [{"issuer_id": 4401, "serial": 17}, {"issuer_id": 4294967295, "serial": 0}],
 "ehc_ids": %s, "holder_keys": %s}`, version, j(ehcIDs), j(holderKeys))
}

func openBolt(t testing.TB, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	if got := Reason(err); got != reason {
		t.Fatalf("err = %v (reason %q), want reason %q", err, got, reason)
	}
}

func TestKeySetLookups(t *testing.T) {
	f := newFixture(t)
	s, err := Open(nil, f.anchorPub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Snapshot().HasKeySet() || s.Snapshot().Root(1) != nil {
		t.Fatal("empty store has a key set")
	}
	if err := s.ApplyKeySet(f.seal(t, f.keySet(7, "2026-11-02T00:00:00Z"))); err != nil {
		t.Fatal(err)
	}
	sn := s.Snapshot()
	r := sn.Root(1)
	if r == nil || !r.Key.Equal(sm2sig.Public(f.root)) || r.Index != 1 {
		t.Fatalf("root 1 = %+v", r)
	}
	if sn.Root(1) != r || s.Snapshot().Root(1).Key != r.Key {
		t.Fatal("root key parsed again on lookup")
	}
	r200 := sn.Root(200)
	if r200 == nil || !r200.Key.Equal(sm2sig.Public(f.root2)) {
		t.Fatal("root 200 (lowercase hex) missing")
	}
	if sn.Root(0) != nil || sn.Root(2) != nil || sn.Root(255) != nil {
		t.Fatal("phantom root")
	}
	if len(sn.Roots()) != 2 || sn.KeySetVersion != 7 {
		t.Fatalf("roots %d version %d", len(sn.Roots()), sn.KeySetVersion)
	}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	for _, c := range []struct {
		root *Root
		at   string
		ok   bool
	}{
		{r, "2025-12-31T23:59:59Z", false},
		{r, "2026-01-01T00:00:00Z", true},
		{r, "2031-01-01T00:00:00Z", true},
		{r, "2031-01-01T00:00:01Z", false},
		{r200, "2020-12-31T16:00:00Z", true}, // not_after is 2021-01-01T00:00:00+08:00
		{r200, "2020-12-31T16:00:01Z", false},
	} {
		if got := c.root.ValidAt(at(c.at)); got != c.ok {
			t.Errorf("root %d at %s: valid %v, want %v", c.root.Index, c.at, got, c.ok)
		}
	}
}

func TestRevocationLookups(t *testing.T) {
	f := newFixture(t)
	s, _ := Open(nil, f.anchorPub, Options{})
	id := bytes.Repeat([]byte{0xE1, 0xd1}, 16)
	holder := sm3.Sum([]byte("holder key"))
	env := f.seal(t, revDoc(12, []string{fmt.Sprintf("%x", id)}, []string{fmt.Sprintf("%X", holder)}))
	if err := s.ApplyRevocations(env); err != nil {
		t.Fatal(err)
	}
	sn := s.Snapshot()
	var idA [32]byte
	copy(idA[:], id)
	if !sn.EHCIDRevoked(&idA) {
		t.Fatal("lowercase-listed EHC ID not revoked")
	}
	idA[0] ^= 1
	if sn.EHCIDRevoked(&idA) {
		t.Fatal("other EHC ID revoked")
	}
	if !sn.EHCIDRevokedHex(fmt.Sprintf("%X", id)) || sn.EHCIDRevokedHex(fmt.Sprintf("%x", id)+"0") || sn.EHCIDRevokedHex("") {
		t.Fatal("EHCIDRevokedHex")
	}
	if !sn.HolderKeyRevoked(&holder) {
		t.Fatal("uppercase-listed holder key hash not revoked")
	}
	other := sm3.Sum([]byte("other"))
	if sn.HolderKeyRevoked(&other) {
		t.Fatal("other holder key revoked")
	}
	if !sn.IssuerRevoked(4401, 17) || !sn.IssuerRevoked(0xffffffff, 0) {
		t.Fatal("listed issuer not revoked")
	}
	if sn.IssuerRevoked(4401, 18) || sn.IssuerRevoked(17, 4401) || sn.IssuerRevoked(4402, 17) {
		t.Fatal("unlisted issuer revoked")
	}
	// Revocations alone do not make a key set.
	if sn.HasKeySet() || !sn.Stale(time.Now()) {
		t.Fatal("revocations without key set: want no key set and stale")
	}
	// Absent lists are empty lists.
	if err := s.ApplyRevocations(f.seal(t, `{"version": 13, "issued_at": "2026-11-02T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if sn := s.Snapshot(); sn.IssuerRevoked(4401, 17) || sn.RevocationsVersion != 13 {
		t.Fatal("revocation list not replaced")
	}
}

func TestEnvelopeErrors(t *testing.T) {
	f := newFixture(t)
	good := f.keySet(7, "2026-11-02T00:00:00Z")
	sig, err := sm2sig.Sign(f.anchor, []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	env := func(p, s string) []byte { return []byte(fmt.Sprintf(`{"payload": %q, "signature": %q}`, p, s)) }
	other, _ := sm2sig.GenerateKey()
	otherSig, _ := sm2sig.Sign(other, []byte(good))
	tampered := []byte(strings.Replace(good, `"version": 7`, `"version": 8`, 1))
	cases := []struct {
		name   string
		env    []byte
		reason string
	}{
		{"empty", nil, ReasonBadEnvelope},
		{"not JSON", []byte("payload=…"), ReasonBadEnvelope},
		{"array", []byte(`[]`), ReasonBadEnvelope},
		{"no signature", []byte(fmt.Sprintf(`{"payload": %q}`, b64([]byte(good)))), ReasonBadEnvelope},
		{"no payload", []byte(fmt.Sprintf(`{"signature": %q}`, b64(sig))), ReasonBadEnvelope},
		{"null payload", []byte(fmt.Sprintf(`{"payload": null, "signature": %q}`, b64(sig))), ReasonBadEnvelope},
		{"payload not base64", env("%%%", b64(sig)), ReasonBadEnvelope},
		{"payload unpadded", env(strings.TrimRight(b64([]byte(good+"x")), "="), b64(sig)), ReasonBadEnvelope},
		{"payload URL alphabet", env(strings.NewReplacer("+", "-", "/", "_").Replace(b64(bytes.Repeat([]byte{0xfb, 0xff}, 10))), b64(sig)), ReasonBadEnvelope},
		{"signature unpadded", env(b64([]byte(good)), strings.TrimRight(b64(sig[:62]), "=")), ReasonBadEnvelope},
		{"trailing garbage", append(env(b64([]byte(good)), b64(sig)), "x"...), ReasonBadEnvelope},
		{"oversized", append(env(b64([]byte(good)), b64(sig)), bytes.Repeat([]byte(" "), MaxEnvelopeSize)...), ReasonBadEnvelope},
		{"signature 63 bytes", env(b64([]byte(good)), b64(sig[:63])), ReasonBadSignature},
		{"signature empty", env(b64([]byte(good)), ""), ReasonBadSignature},
		{"other signer", env(b64([]byte(good)), b64(otherSig)), ReasonBadSignature},
		{"tampered payload", env(b64(tampered), b64(sig)), ReasonBadSignature},
		// The payload is not even JSON, but the signature is checked first.
		{"garbage payload, bad signature", env(b64([]byte("{{{")), b64(sig)), ReasonBadSignature},
		{"DER signature", env(b64([]byte(good)), b64(mustDER(t, sig))), ReasonBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := Open(nil, f.anchorPub, Options{})
			wantReason(t, s.ApplyKeySet(c.env), c.reason)
			wantReason(t, s.ApplyRevocations(c.env), c.reason)
			if s.Snapshot().HasKeySet() {
				t.Fatal("a refused envelope was put in use")
			}
		})
	}
	s, _ := Open(nil, f.anchorPub, Options{})
	if err := s.ApplyKeySet(env(b64([]byte(good)), b64(sig))); err != nil {
		t.Fatalf("the untampered envelope: %v", err)
	}
}

func mustDER(t *testing.T, rs []byte) []byte {
	d, err := sm2sig.RawToDER(rs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBadPayloads(t *testing.T) {
	f := newFixture(t)
	root := sm2sig.Public(f.root).Hex()
	off := sm2sig.Public(f.root).Bytes()
	off[64] ^= 1
	offHex := fmt.Sprintf("%X", off[:])
	comp := sm2sig.Public(f.root).Compressed()
	ks := func(version, roots string) string {
		return `{"version": ` + version + `, "issued_at": "2026-11-01T00:00:00Z", "next_update": "2026-11-02T00:00:00Z", "roots": [` + roots + `]}`
	}
	rootJ := func(index, key, nb, na string) string {
		return fmt.Sprintf(`{"index": %s, "public_key": %q, "not_before": %q, "not_after": %q}`, index, key, nb, na)
	}
	okRoot := rootJ("1", root, "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z")
	for name, p := range map[string]string{
		"not JSON":            "version 7",
		"array":               `[1]`,
		"two objects":         ks("7", okRoot) + ks("8", okRoot),
		"no version":          `{"issued_at": "2026-11-01T00:00:00Z", "next_update": "2026-11-02T00:00:00Z", "roots": []}`,
		"no roots":            `{"version": 7, "issued_at": "2026-11-01T00:00:00Z", "next_update": "2026-11-02T00:00:00Z"}`,
		"no next_update":      `{"version": 7, "issued_at": "2026-11-01T00:00:00Z", "roots": []}`,
		"version string":      ks(`"7"`, okRoot),
		"version negative":    ks("-1", okRoot),
		"version fraction":    ks("7.5", okRoot),
		"version exponent":    ks("7e0", okRoot),
		"version too big":     ks("18446744073709551616", okRoot),
		"bad issued_at":       strings.Replace(ks("7", okRoot), "2026-11-01T00:00:00Z", "2026-11-01", 1),
		"index 256":           ks("7", rootJ("256", root, "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z")),
		"index -1":            ks("7", rootJ("-1", root, "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z")),
		"index twice":         ks("7", okRoot+","+okRoot),
		"key off curve":       ks("7", rootJ("1", offHex, "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z")),
		"key compressed":      ks("7", rootJ("1", fmt.Sprintf("%X", comp[:]), "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z")),
		"key with spaces":     ks("7", rootJ("1", root[:64]+" "+root[65:], "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z")),
		"key not hex":         ks("7", rootJ("1", "zz"+root[2:], "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z")),
		"window reversed":     ks("7", rootJ("1", root, "2031-01-01T00:00:00Z", "2026-01-01T00:00:00Z")),
		"root without window": ks("7", `{"index": 1, "public_key": "`+root+`"}`),
	} {
		t.Run("keyset/"+name, func(t *testing.T) {
			s, _ := Open(nil, f.anchorPub, Options{})
			wantReason(t, s.ApplyKeySet(f.seal(t, p)), ReasonBadPayload)
		})
	}
	for name, p := range map[string]string{
		"no issued_at":        `{"version": 1}`,
		"ehc id short":        revDoc(1, []string{strings.Repeat("A", 62)}, nil),
		"ehc id not hex":      revDoc(1, []string{strings.Repeat("G", 64)}, nil),
		"holder key 0x":       revDoc(1, nil, []string{"0x" + strings.Repeat("a", 62)}),
		"issuer id too big":   `{"version": 1, "issued_at": "2026-11-01T00:00:00Z", "issuers": [{"issuer_id": 4294967296, "serial": 1}]}`,
		"issuer no serial":    `{"version": 1, "issued_at": "2026-11-01T00:00:00Z", "issuers": [{"issuer_id": 1}]}`,
		"issuers not a list":  `{"version": 1, "issued_at": "2026-11-01T00:00:00Z", "issuers": {}}`,
		"ehc_ids of numbers":  `{"version": 1, "issued_at": "2026-11-01T00:00:00Z", "ehc_ids": [1]}`,
		"version is a string": `{"version": "1", "issued_at": "2026-11-01T00:00:00Z"}`,
	} {
		t.Run("revocations/"+name, func(t *testing.T) {
			s, _ := Open(nil, f.anchorPub, Options{})
			wantReason(t, s.ApplyRevocations(f.seal(t, p)), ReasonBadPayload)
		})
	}
	// A key set is not a revocation list, nor the other way round: the anchor signs both
	// and the signature does not say which, so a genuine key set applied as revocations
	// (whose lists may all be absent) would otherwise revoke nothing at all.
	s, _ := Open(nil, f.anchorPub, Options{})
	wantReason(t, s.ApplyKeySet(f.seal(t, revDoc(1, nil, nil))), ReasonBadPayload)
	id := strings.Repeat("AB", 32)
	if err := s.ApplyRevocations(f.seal(t, revDoc(3, []string{id}, nil))); err != nil {
		t.Fatal(err)
	}
	wantReason(t, s.ApplyRevocations(f.seal(t, f.keySet(9, "2026-11-02T00:00:00Z"))), ReasonBadPayload)
	if v := s.Versions(time.Now()); v.Revocations != 3 {
		t.Errorf("revocations version %d after a key set was offered as revocations, want 3", v.Revocations)
	}
	withLists := strings.Replace(f.keySet(9, "2026-11-02T00:00:00Z"), `"version"`, `"ehc_ids": [], "version"`, 1)
	wantReason(t, s.ApplyKeySet(f.seal(t, withLists)), ReasonBadPayload)
}

func TestVersionRules(t *testing.T) {
	f := newFixture(t)
	s, _ := Open(nil, f.anchorPub, Options{})
	v7 := f.keySet(7, "2026-11-02T00:00:00Z")
	if err := s.ApplyKeySet(f.seal(t, v7)); err != nil {
		t.Fatal(err)
	}
	before := s.Snapshot()
	// Same payload, new signature (SM2 signatures are randomised): a no-op.
	if err := s.ApplyKeySet(f.seal(t, v7)); err != nil {
		t.Fatalf("same version, same bytes: %v", err)
	}
	if s.Snapshot() != before {
		t.Fatal("a no-op replaced the snapshot")
	}
	wantReason(t, s.ApplyKeySet(f.seal(t, f.keySet(6, "2026-12-02T00:00:00Z"))), ReasonVersionDowngrade)
	wantReason(t, s.ApplyKeySet(f.seal(t, f.keySet(7, "2026-12-02T00:00:00Z"))), ReasonVersionDowngrade)
	wantReason(t, s.ApplyKeySet([]byte("junk")), ReasonBadEnvelope)
	if s.Snapshot() != before || s.Snapshot().NextUpdate.Day() != 2 || s.Snapshot().NextUpdate.Month() != 11 {
		t.Fatal("a refused document changed the store")
	}
	if err := s.ApplyKeySet(f.seal(t, f.keySet(8, "2026-12-02T00:00:00Z"))); err != nil {
		t.Fatal(err)
	}
	if sn := s.Snapshot(); sn.KeySetVersion != 8 || sn.NextUpdate.Month() != 12 {
		t.Fatalf("v8 not in use: %+v", s.Versions(time.Now()))
	}
	// The old snapshot is immutable: a verifier holding it sees v7 throughout.
	if before.KeySetVersion != 7 {
		t.Fatal("old snapshot changed")
	}

	r1 := revDoc(3, nil, nil)
	if err := s.ApplyRevocations(f.seal(t, r1)); err != nil {
		t.Fatal(err)
	}
	wantReason(t, s.ApplyRevocations(f.seal(t, revDoc(2, nil, nil))), ReasonVersionDowngrade)
	if err := s.ApplyRevocations(f.seal(t, r1)); err != nil {
		t.Fatal(err)
	}
	// Both documents have their own version sequence.
	if v := s.Versions(time.Now()); v.KeySet != 8 || v.Revocations != 3 || !v.HasRevocations || v.RevokedIssuers != 2 {
		t.Fatalf("versions %+v", v)
	}
}

func TestStaleness(t *testing.T) {
	f := newFixture(t)
	next := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		limit time.Duration
		at    time.Time
		stale bool
	}{
		{0, next.Add(-time.Hour), false},
		{0, next.Add(7 * 24 * time.Hour), false},
		{0, next.Add(7*24*time.Hour + time.Second), true},
		{time.Hour, next.Add(time.Hour), false},
		{time.Hour, next.Add(time.Hour + time.Nanosecond), true},
	} {
		s, _ := Open(nil, f.anchorPub, Options{StalenessLimit: c.limit})
		if !s.Snapshot().Stale(c.at) {
			t.Fatal("no key set must be stale")
		}
		if r := s.Versions(c.at).Reason; r != ReasonNeverUpdated {
			t.Fatalf("no key set: reason %q, want never_updated", r)
		}
		if err := s.ApplyKeySet(f.seal(t, f.keySet(1, next.Format(time.RFC3339)))); err != nil {
			t.Fatal(err)
		}
		if got := s.Snapshot().Stale(c.at); got != c.stale || s.Versions(c.at).Stale != c.stale {
			t.Errorf("limit %v at next_update%+v: stale %v, want %v", c.limit, c.at.Sub(next), got, c.stale)
		}
		want := ""
		if c.stale {
			want = ReasonStale
		}
		if r := s.Versions(c.at).Reason; r != want {
			t.Errorf("limit %v at next_update%+v: reason %q, want %q", c.limit, c.at.Sub(next), r, want)
		}
	}
}

func TestPersistence(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openBolt(t, path)
	s, err := Open(db, f.anchorPub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("AB", 32)
	if err := s.ApplyKeySet(f.seal(t, f.keySet(7, "2026-11-02T00:00:00Z"))); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyRevocations(f.seal(t, revDoc(12, []string{id}, nil))); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openBolt(t, path)
	s, err = Open(db, f.anchorPub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sn := s.Snapshot()
	idB, _ := Hex32(id)
	if sn.KeySetVersion != 7 || sn.RevocationsVersion != 12 || sn.Root(1) == nil || !sn.EHCIDRevoked(&idB) || len(s.Discarded()) != 0 {
		t.Fatalf("after reopen: %+v discarded %v", s.Versions(time.Now()), s.Discarded())
	}
	// Downgrade protection survives the restart.
	wantReason(t, s.ApplyKeySet(f.seal(t, f.keySet(6, "2026-11-02T00:00:00Z"))), ReasonVersionDowngrade)
	wantReason(t, s.ApplyRevocations(f.seal(t, revDoc(11, nil, nil))), ReasonVersionDowngrade)
	db.Close()

	// The same file under another anchor: the cached documents are not trusted, the
	// store starts empty and accepts the new anchor's documents whatever their version.
	g := newFixture(t)
	db = openBolt(t, path)
	defer db.Close()
	s, err = Open(db, g.anchorPub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Snapshot().HasKeySet() || len(s.Discarded()) != 2 {
		t.Fatalf("other anchor: key set %v, discarded %v", s.Snapshot().HasKeySet(), s.Discarded())
	}
	if !strings.Contains(s.Discarded()[0], ReasonBadSignature) {
		t.Fatalf("discarded reason: %v", s.Discarded())
	}
	if err := s.ApplyKeySet(g.seal(t, g.keySet(1, "2026-11-02T00:00:00Z"))); err != nil {
		t.Fatal(err)
	}
	// On disk now: the new anchor's v1, which a reopen under that anchor accepts.
	var stored []byte
	db.View(func(tx *bbolt.Tx) error {
		stored = bytes.Clone(tx.Bucket(bucketName).Get([]byte(KindKeySet)))
		return nil
	})
	if _, err := OpenEnvelope(KindKeySet, stored, g.anchorPub); err != nil {
		t.Fatalf("stored envelope: %v", err)
	}
}

// A refused document never touches the database: the file holds what was accepted.
func TestRefusedNotStored(t *testing.T) {
	f := newFixture(t)
	db := openBolt(t, filepath.Join(t.TempDir(), "agent.db"))
	defer db.Close()
	s, _ := Open(db, f.anchorPub, Options{})
	good := f.seal(t, f.keySet(5, "2026-11-02T00:00:00Z"))
	if err := s.ApplyKeySet(good); err != nil {
		t.Fatal(err)
	}
	wantReason(t, s.ApplyKeySet(f.seal(t, f.keySet(4, "2026-11-02T00:00:00Z"))), ReasonVersionDowngrade)
	wantReason(t, s.ApplyKeySet(f.seal(t, "{")), ReasonBadPayload)
	db.View(func(tx *bbolt.Tx) error {
		if got := tx.Bucket(bucketName).Get([]byte(KindKeySet)); !bytes.Equal(got, good) {
			t.Fatalf("stored %s", got)
		}
		return nil
	})
	// A closed database makes the update fail: the store keeps serving the old copy.
	db.Close()
	wantReason(t, s.ApplyKeySet(f.seal(t, f.keySet(6, "2026-11-02T00:00:00Z"))), ReasonStorage)
	if s.Snapshot().KeySetVersion != 5 {
		t.Fatal("failed write changed the snapshot")
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	f := newFixture(t)
	s, _ := Open(openBolt(t, filepath.Join(t.TempDir(), "agent.db")), f.anchorPub, Options{})
	envs := make([][]byte, 20)
	for i := range envs {
		envs[i] = f.seal(t, f.keySet(i+1, "2026-11-02T00:00:00Z"))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				sn := s.Snapshot()
				if sn.KeySetVersion < last {
					t.Error("version went backwards")
					return
				}
				last = sn.KeySetVersion
				if sn.HasKeySet() && sn.Root(1) == nil {
					t.Error("key set without root 1")
					return
				}
			}
		})
	}
	// Writers race each other: whatever order they land in, versions only go up.
	var wwg sync.WaitGroup
	for i := range envs {
		wwg.Go(func() {
			if err := s.ApplyKeySet(envs[i]); err != nil && Reason(err) != ReasonVersionDowngrade {
				t.Error(err)
			}
		})
	}
	wwg.Wait()
	close(stop)
	wg.Wait()
	if err := s.ApplyKeySet(envs[19]); err != nil {
		t.Fatal(err) // v20 is in use (or was just applied): a no-op either way
	}
	if s.Snapshot().KeySetVersion != 20 {
		t.Fatalf("version %d", s.Snapshot().KeySetVersion)
	}
}

func TestLoadDir(t *testing.T) {
	f := newFixture(t)
	write := func(dir, name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pemAnchor, err := f.anchorPub.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	ks := string(f.seal(t, f.keySet(7, "2026-11-02T00:00:00Z")))
	rv := string(f.seal(t, revDoc(2, nil, nil)))

	for _, anchor := range []string{f.anchorPub.Hex() + "\n", string(pemAnchor)} {
		dir := t.TempDir()
		write(dir, AnchorFile, anchor)
		write(dir, KeySetFile, ks)
		s, err := LoadDir(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if v := s.Versions(time.Now()); v.KeySet != 7 || v.HasRevocations {
			t.Fatalf("versions %+v", v)
		}
		write(dir, RevocationsFile, rv)
		if s, err = LoadDir(dir, Options{}); err != nil || s.Snapshot().RevocationsVersion != 2 {
			t.Fatalf("with revocations: %v", err)
		}
	}

	for _, c := range []struct {
		name, file, reason string
		files              map[string]string
	}{
		{"no anchor", AnchorFile, "", map[string]string{KeySetFile: ks}},
		{"bad anchor", AnchorFile, "", map[string]string{AnchorFile: "04abc", KeySetFile: ks}},
		{"no key set", KeySetFile, "", map[string]string{AnchorFile: f.anchorPub.Hex()}},
		{"key set signed by another", KeySetFile, ReasonBadSignature, map[string]string{AnchorFile: sm2sig.Public(f.root).Hex(), KeySetFile: ks}},
		{"revocations broken", RevocationsFile, ReasonBadEnvelope, map[string]string{AnchorFile: f.anchorPub.Hex(), KeySetFile: ks, RevocationsFile: "{"}},
		{"key set is revocations", KeySetFile, ReasonBadPayload, map[string]string{AnchorFile: f.anchorPub.Hex(), KeySetFile: rv}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, d := range c.files {
				write(dir, n, d)
			}
			_, err := LoadDir(dir, Options{})
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != filepath.Join(dir, c.file) {
				t.Fatalf("err = %v, want a FileError for %s", err, c.file)
			}
			if Reason(err) != c.reason {
				t.Fatalf("reason %q, want %q", Reason(err), c.reason)
			}
			if !strings.Contains(err.Error(), c.file) {
				t.Fatalf("message %q does not name the file", err)
			}
		})
	}
}

func TestVersionParsing(t *testing.T) {
	for s, ok := range map[string]bool{"0": true, "7": true, "18446744073709551615": true, "18446744073709551616": false, "07": false, "": false, "1a": false} {
		if _, err := parseUint(s, 64); (err == nil) != ok {
			t.Errorf("parseUint(%q): %v", s, err)
		}
	}
	if _, err := parseUint("4294967296", 32); err == nil {
		t.Error("2^32 fits 32 bits")
	}
}
