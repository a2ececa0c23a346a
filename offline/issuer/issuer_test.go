package issuer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
	"github.com/emmansun/gmsm/sm2"
)

var now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func TestGenerateLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := GenerateKeys(dir, GenerateOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Params != k.Params {
		t.Fatalf("params\n%+v\n%+v", back.Params, k.Params)
	}
	for name, pair := range map[string][2]*sm2.PrivateKey{
		"anchor": {k.Anchor, back.Anchor}, "issuer": {k.Issuer, back.Issuer},
		"holder": {k.Holder, back.Holder}, "revoked holder": {k.RevokedHolder, back.RevokedHolder},
		"root": {k.Roots[1], back.Roots[1]}, "expired root": {k.Roots[2], back.Roots[2]},
	} {
		if pair[1] == nil || !pair[0].Equal(pair[1]) {
			t.Fatalf("%s key differs after reload", name)
		}
	}
	// Private keys are not world-readable.
	for _, f := range []string{AnchorKeyFile, IssuerKeyFile, HolderKeyFile, RootKeyFile(1)} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s mode %v", f, st.Mode())
		}
	}
	// The keys directory is a trust directory.
	ts, err := trust.LoadDir(dir, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sn := ts.Snapshot()
	if r := sn.Root(1); r == nil || !r.Key.Equal(sm2sig.Public(k.Roots[1])) || !r.ValidAt(now) {
		t.Fatal("root 1 missing or not valid now")
	}
	if r := sn.Root(2); r == nil || r.ValidAt(now) {
		t.Fatal("root 2 missing or valid now")
	}
	if sn.Root(k.UnknownRootIndex) != nil {
		t.Fatal("the unknown root is known")
	}
	if !sn.IssuerRevoked(k.IssuerID, k.RevokedCertSerial) || sn.IssuerRevoked(k.IssuerID, k.CertSerial) {
		t.Fatal("revocation list does not match the params")
	}
	if sn.Stale(now.AddDate(0, 0, 37)) || !sn.Stale(now.AddDate(0, 0, 38)) {
		t.Fatal("next_update is not 30 days ahead")
	}
}

func TestNewCodeShape(t *testing.T) {
	k, err := GenerateKeys(t.TempDir(), GenerateOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(time.Hour)
	text, err := k.NewCode(CodeOptions{At: at, Sequence: 77, Extension: []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ehc1.ParseText([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sequence != 77 || c.GeneratedAt != uint32(at.Unix()) || c.IssuerID != k.IssuerID || c.EHCIDHex() != k.EHCID || string(c.Extension) != "\x01\x02" {
		t.Fatalf("code %+v", c)
	}
	if !sm2sig.Public(k.Holder).Verify(c.CodeSigned(), c.HolderSig[:]) ||
		!sm2sig.Public(k.Issuer).Verify(c.CredSigned(), c.IssuerSig[:]) ||
		!sm2sig.Public(k.Roots[1]).Verify(c.CertSigned(), c.RootSig[:]) {
		t.Fatal("a signature does not verify")
	}
	// Deterministic certificate and credential signatures: two codes share them.
	text2, _ := k.NewCode(CodeOptions{At: at, Sequence: 78})
	c2, err := ehc1.ParseText([]byte(text2))
	if err != nil {
		t.Fatal(err)
	}
	if string(c2.IssuerCert()) != string(c.IssuerCert()) {
		t.Fatal("certificate bytes differ between codes")
	}
	gen := at.Add(-time.Minute)
	text3, _ := k.NewCode(CodeOptions{At: at, GeneratedAt: gen})
	if c3, _ := ehc1.ParseText([]byte(text3)); c3 == nil || c3.GeneratedAt != uint32(gen.Unix()) {
		t.Fatal("GeneratedAt not honoured")
	}
	if _, err := k.NewCode(CodeOptions{Defect: "no-such-defect"}); err == nil || !strings.Contains(err.Error(), "bad-root-sig") {
		t.Fatalf("unknown defect: %v", err)
	}
	for _, name := range DefectNames() {
		if _, err := k.NewCode(CodeOptions{At: at, Defect: name}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestLoadKeysErrors(t *testing.T) {
	if _, err := LoadKeys(t.TempDir()); err == nil {
		t.Fatal("empty directory loaded")
	}
	dir := t.TempDir()
	if _, err := GenerateKeys(dir, GenerateOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HolderKeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(dir); err == nil || !strings.Contains(err.Error(), HolderKeyFile) {
		t.Fatalf("bad holder key: %v", err)
	}
}
