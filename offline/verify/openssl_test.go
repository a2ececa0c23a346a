package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
)

// TestOpenSSLSignedCode builds a whole trust chain with OpenSSL 3, an independent SM2
// implementation — every key generated and every signature made by it (trust anchor
// over the key set, root over the certificate, issuer over the credential, holder over
// the code) — and verifies the result here. Under CI=true, an openssl without SM2
// fails the test instead of skipping it.
func TestOpenSSLSignedCode(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	dir := t.TempDir()
	if err == nil {
		if out, e := exec.Command(openssl, "genpkey", "-algorithm", "SM2", "-out", filepath.Join(dir, "probe.pem")).CombinedOutput(); e != nil {
			err = fmt.Errorf("openssl has no SM2: %v: %s", e, out)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true requires openssl with SM2: %v", err)
		}
		t.Skipf("skipping OpenSSL interop: %v", err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	keys := map[string]*sm2sig.PublicKey{}
	for _, name := range []string{"anchor", "root", "issuer", "holder"} {
		priv, pub := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub")
		run("genpkey", "-algorithm", "SM2", "-out", priv)
		run("pkey", "-in", priv, "-pubout", "-out", pub)
		b, err := os.ReadFile(pub)
		if err != nil {
			t.Fatal(err)
		}
		if keys[name], err = sm2sig.ParsePublicKeyText(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	sign := func(key string, msg []byte) []byte {
		t.Helper()
		in, sig := filepath.Join(dir, "msg"), filepath.Join(dir, "sig.der")
		if err := os.WriteFile(in, msg, 0o600); err != nil {
			t.Fatal(err)
		}
		run("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+sm2sig.DefaultUID,
			"-inkey", filepath.Join(dir, key+".pem"), "-in", in, "-out", sig)
		der, err := os.ReadFile(sig)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := sm2sig.DERToRaw(der)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}

	payload, err := json.Marshal(map[string]any{
		"version": 1, "issued_at": "2026-11-01T00:00:00Z", "next_update": "2026-11-02T00:00:00Z",
		"roots": []map[string]any{{"index": 3, "public_key": keys["root"].Hex(),
			"not_before": "2026-01-01T00:00:00Z", "not_after": "2031-01-01T00:00:00Z"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := trust.Open(nil, keys["anchor"], trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := trust.Seal(payload, func(b []byte) ([]byte, error) { return sign("anchor", b), nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.ApplyKeySet(env); err != nil {
		t.Fatalf("OpenSSL-signed key set: %v", err)
	}

	c := &ehc1.Code{
		Version: 1, Type: 1, RootIndex: 3, IssuerID: 77, CertSerial: 1,
		CertNotAfter: uint32(at.AddDate(1, 0, 0).Unix()), IssuerKey: keys["issuer"].Compressed(),
		Category: 1, HolderKey: keys["holder"].Compressed(), CredNotAfter: uint32(at.AddDate(0, 6, 0).Unix()),
		Validity: 120, Extension: []byte("ext"), GeneratedAt: uint32(at.Unix()), Sequence: 9,
	}
	copy(c.EHCID[:], strings.Repeat("\xE1\xD1", 16))
	c.Marshal()
	copy(c.RootSig[:], sign("root", c.CertSigned()))
	c.Marshal()
	copy(c.IssuerSig[:], sign("issuer", c.CredSigned()))
	c.Marshal()
	copy(c.HolderSig[:], sign("holder", c.CodeSigned()))
	text := c.Text()

	rc, _ := replay.Open(nil, replay.Options{}, time.Time{})
	r := New(ts, rc, Options{}).Verify([]byte(text), "d", at.Add(time.Minute))
	check(t, r, StatusValid, "")
	if r.IssuerID != 77 || r.RootIndex != 3 || r.Extension != "657874" || !strings.HasPrefix(r.EHCID, "E1D1") {
		t.Fatalf("fields %+v", r)
	}
	// And the same bytes with one holder-signed byte changed fail at step 7.
	c.Sequence++
	c.Marshal()
	check(t, New(ts, nil, Options{}).Verify([]byte(c.Text()), "d", at.Add(time.Minute)), StatusInvalid, ReasonBadCodeSignature)
}
