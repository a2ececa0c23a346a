package uplink_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// pki is a throw-away CA with a server certificate for 127.0.0.1 and client
// certificates, written as PEM files.
type pki struct {
	t      *testing.T
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{t: t, dir: t.TempDir(), serial: 1}
	var err error
	p.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test platform CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caFile = p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue returns a certificate for cn (a server one for 127.0.0.1 when server), and
// the paths of its PEM files.
func (p *pki) issue(cn string, server bool) (tls.Certificate, string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile := p.write(cn+".pem", "CERTIFICATE", der)
	keyFile := p.write(cn+".key", "EC PRIVATE KEY", kder)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		p.t.Fatal(err)
	}
	return c, certFile, keyFile
}

// HTTPS with the pinned CA and a client certificate (mTLS) delivers; a client that
// pins another CA delivers nothing and says tls_untrusted; a client certificate for
// another terminal is refused by the platform.
func TestTLSPinnedAndMutual(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srvCert, _, _ := p.issue("platform", true)
	_, certFile, keyFile := p.issue(terminalID, false)
	_, otherCert, otherKey := p.issue("K-9999", false)
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	simTLS := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}

	// The client key is a secret key file: others must not be able to read it.
	os.Chmod(keyFile, 0o644)
	if _, err := uplink.LoadTLS(p.caFile, certFile, keyFile); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 client key: %v", err)
	}
	os.Chmod(keyFile, 0o600)
	cfg, err := uplink.LoadTLS(p.caFile, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{sim: platformsim.Options{TLS: simTLS}, up: uplink.Options{TLS: cfg}})
	if !strings.HasPrefix(e.sim.URL(), "https://") {
		t.Fatalf("emulator URL %s", e.sim.URL())
	}
	want := e.appendN(5)
	e.run()
	waitFor(t, 10*time.Second, "delivered over mTLS", func() bool { return e.ob.Stats().Pending == 0 })
	checkExactlyOnce(t, e.sim, want)

	// Another CA pinned: the platform's certificate is not trusted.
	other := newPKI(t)
	_, oc, ok := other.issue(terminalID, false)
	badCfg, err := uplink.LoadTLS(other.caFile, oc, ok)
	if err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, envOptions{sim: platformsim.Options{TLS: simTLS}, up: uplink.Options{TLS: badCfg, MinBackoff: 20 * time.Millisecond}})
	e2.appendN(2)
	e2.run()
	waitFor(t, 5*time.Second, "tls_untrusted", func() bool { return e2.up.Status().LastError == "tls_untrusted" })
	if n := len(e2.sim.Events()); n != 0 || e2.ob.Stats().Pending != 2 {
		t.Fatalf("%d events delivered through an unpinned CA", n)
	}

	// A certificate for K-9999 with K-0001's signature: the platform's mapping refuses.
	wrongCfg, err := uplink.LoadTLS(p.caFile, otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	e3 := newEnv(t, envOptions{sim: platformsim.Options{TLS: simTLS}, up: uplink.Options{TLS: wrongCfg, MinBackoff: 20 * time.Millisecond}})
	e3.appendN(1)
	e3.run()
	waitFor(t, 5*time.Second, "auth_failed", func() bool { return e3.up.Status().AuthFailed })
	if n := e3.sim.Stats().Unauthorized[platformsim.ReasonUnknownTerminal]; n == 0 {
		t.Fatal("platform did not refuse the mismatched certificate")
	}
}

func TestCheckURL(t *testing.T) {
	for _, ok := range []string{"https://platform.example", "https://p.example:8443/ehc/", "http://127.0.0.1:8080", "http://[::1]:80", "http://localhost:1"} {
		if _, err := uplink.CheckURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://platform.example", "http://10.0.0.1", "ftp://127.0.0.1", "https://u:p@x.example", "https://x.example/?a=1", "127.0.0.1:80", ""} {
		if _, err := uplink.CheckURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// https needs a pinned CA.
	e := newEnv(t, envOptions{})
	if _, err := uplink.New(uplink.Options{URL: "https://platform.example", TerminalID: terminalID, Key: e.key, Outbox: e.ob}); err == nil {
		t.Fatal("https without a pinned CA accepted")
	}
}

// The key is created 0600 with its public key beside it, and read back the same.
func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "terminal.key")
	k1, created, err := uplink.LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode(), err)
	}
	pub, err := os.ReadFile(path + uplink.PublicKeySuffix)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := sm2sig.ParsePublicKeyText(pub)
	if err != nil || !pk.Equal(sm2sig.Public(k1)) {
		t.Fatalf("public key file %q does not match the key (%v)", pub, err)
	}
	os.Remove(path + uplink.PublicKeySuffix)
	k2, created, err := uplink.LoadOrCreateKey(path)
	if err != nil || created || !sm2sig.Public(k2).Equal(sm2sig.Public(k1)) {
		t.Fatalf("reload: created %v, %v", created, err)
	}
	if _, err := os.Stat(path + uplink.PublicKeySuffix); err != nil {
		t.Fatal("public key file not rewritten")
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := uplink.LoadOrCreateKey(path); err == nil {
		t.Fatal("a garbage key file accepted")
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	const code = "E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1:1"
	const expired = "AAAAE1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1:2"
	os.WriteFile(filepath.Join(data, "codes.json"), []byte(`{
 "`+strings.ToLower(code)+`": {"ehc_id": "E1D1", "id_type": "01", "id_number": "`+testIDNumber+`", "name": "`+testName+`", "gender": "1"},
 "`+expired+`": {"ehc_id": "E2", "id_type": "01", "id_number": "1", "name": "x", "expires_at": "2020-01-01T00:00:00Z"}}`), 0o600)
	e := newEnv(t, envOptions{sim: platformsim.Options{DataDir: data}})
	ctx := context.Background()
	id, err := e.up.Resolve(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if id.EHCID != "E1D1" || id.IDNumber != testIDNumber || id.Name != testName || id.Gender != "1" {
		t.Fatalf("identity %+v", id)
	}
	for _, c := range []struct {
		code string
		want error
	}{
		{"F1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1:1", uplink.ErrUnknownCode},
		{expired, uplink.ErrUnknownCode},
		{"not a code", uplink.ErrBadCode},
	} {
		if _, err := e.up.Resolve(ctx, c.code); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.code, err, c.want)
		}
	}
	// A slow platform: the answer is "unreachable" at the resolve timeout, not later.
	e.sim.SetFaults(platformsim.Faults{Latency: 3 * time.Second})
	start := time.Now()
	_, err = e.up.Resolve(ctx, code)
	if !errors.Is(err, uplink.ErrUnreachable) {
		t.Fatalf("slow platform: %v", err)
	}
	if d := time.Since(start); d < 1400*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("gave up after %s, want the 1.5 s resolve timeout", d)
	}
}

// An answer lost after the platform processed a GET on a reused keep-alive connection
// is exactly when net/http would resend the request by itself — with the same nonce.
// The uplink's requests are not replayable, so every attempt is its own, freshly
// signed: the platform never sees a nonce twice.
func TestNoTransparentRetry(t *testing.T) {
	t.Parallel()
	f := newTrustFixture(t)
	f.serve(trust.KeySetFile, f.keySet(1))
	e := newEnv(t, envOptions{sim: platformsim.Options{TrustDir: f.dir}})
	ts, err := trust.Open(nil, sm2sig.Public(f.anchor), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := uplink.New(uplink.Options{URL: e.sim.URL(), TerminalID: terminalID, Key: e.key, Outbox: e.ob, Trust: ts, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	e.sim.SetFaults(platformsim.Faults{DropRate: 0.3})
	for i := 0; i < 60; i++ {
		up.SyncTrust(context.Background())
	}
	st := e.sim.Stats()
	if st.Drops < 5 {
		t.Fatalf("only %d answers dropped: the fault was not exercised", st.Drops)
	}
	if n := st.Unauthorized[platformsim.ReasonNonceReplayed]; n != 0 {
		t.Fatalf("%d requests reached the platform with a used nonce: a transparent retry", n)
	}
	if st.Requests != 120 {
		t.Fatalf("platform saw %d requests for 120 attempts", st.Requests)
	}
}
