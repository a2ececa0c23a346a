package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ehc-agent/ehc-agent/agent/api"
)

func TestAccessRules(t *testing.T) {
	h := start(t, nil)
	own := h.url // the API's own origin: its demo page
	cases := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		code   int
		reason string
	}{
		{"healthz needs no token", "GET", "/healthz", nil, 200, ""},
		{"status without token", "GET", "/v1/status", nil, 401, "token_required"},
		{"status with wrong token", "GET", "/v1/status", map[string]string{"token": testToken + "x"}, 401, "token_invalid"},
		{"status with short wrong token", "GET", "/v1/status", map[string]string{"token": "x"}, 401, "token_invalid"},
		{"basic auth is not a token", "GET", "/v1/status", map[string]string{"Authorization": "Basic " + testToken}, 401, "token_required"},
		{"token in the URL is ignored", "GET", "/v1/status?token=" + testToken, nil, 401, "token_required"},
		{"status with token", "GET", "/v1/status", auth(), 200, ""},
		{"events without token", "GET", "/v1/events", nil, 401, "token_required"},
		{"metrics without token", "GET", "/metrics", nil, 401, "token_required"},
		{"trigger without token", "POST", "/v1/devices/x/trigger", nil, 401, "token_required"},
		{"websocket without token", "GET", "/v1/ws", nil, 401, "token_required"},
		{"foreign origin with token", "GET", "/v1/status", map[string]string{"token": testToken, "Origin": "http://evil.example"}, 403, "origin_not_allowed"},
		{"foreign origin on healthz", "GET", "/healthz", map[string]string{"Origin": "http://evil.example"}, 403, "origin_not_allowed"},
		{"null origin is not allowed by default", "GET", "/v1/status", map[string]string{"token": testToken, "Origin": "null"}, 403, "origin_not_allowed"},
		{"foreign origin on a loopback port", "GET", "/v1/status", map[string]string{"token": testToken, "Origin": "http://127.0.0.1:1"}, 403, "origin_not_allowed"},
		{"allowed origin without token", "GET", "/v1/status", map[string]string{"Origin": "http://kiosk.example:8080"}, 401, "token_required"},
		{"allowed origin with token", "GET", "/v1/status", map[string]string{"token": testToken, "Origin": "http://kiosk.example:8080"}, 200, ""},
		{"allowed origin, other case", "GET", "/v1/status", map[string]string{"token": testToken, "Origin": "HTTP://KIOSK.example:8080"}, 200, ""},
		{"own origin with token", "GET", "/v1/status", map[string]string{"token": testToken, "Origin": own}, 200, ""},
		{"rebound host name", "GET", "/v1/status", map[string]string{"token": testToken, "Host": "evil.example:17485"}, 403, "host_not_allowed"},
		{"rebound host name, same origin", "GET", "/healthz", map[string]string{"Host": "evil.example", "Origin": "http://evil.example"}, 403, "host_not_allowed"},
		{"localhost host name", "GET", "/v1/status", map[string]string{"token": testToken, "Host": "localhost"}, 200, ""},
		{"demo page needs no token", "GET", "/demo/", nil, 200, ""},
		{"unknown path", "GET", "/v2/nothing", auth(), 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do(t, c.method, c.path, c.hdr)
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.code, body)
			}
			if c.reason != "" {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error != c.reason {
					t.Fatalf("body %s: want error %q", body, c.reason)
				}
			}
			if c.code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if o := c.hdr["Origin"]; o != "" && c.code != 403 && resp.Header.Get("Access-Control-Allow-Origin") != o {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", resp.Header.Get("Access-Control-Allow-Origin"), o)
			}
		})
	}

	t.Run("status body", func(t *testing.T) {
		_, body := h.do(t, "GET", "/v1/status", auth())
		var st struct {
			TerminalID string `json:"terminal_id"`
			API        struct {
				LastSeq *uint64 `json:"last_seq"`
			}
			Build map[string]string
		}
		if err := json.Unmarshal(body, &st); err != nil || st.TerminalID != "T-TEST" || st.API.LastSeq == nil || st.Build["version"] != "test" {
			t.Fatalf("status %s (%v)", body, err)
		}
	})

	t.Run("preflight from an allowed origin", func(t *testing.T) {
		resp, _ := h.do(t, "OPTIONS", "/v1/events", map[string]string{"Origin": "http://kiosk.example:8080",
			"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization",
			"Access-Control-Request-Private-Network": "true"})
		if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("preflight from a foreign origin", func(t *testing.T) {
		resp, _ := h.do(t, "OPTIONS", "/v1/events", map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("demo page headers", func(t *testing.T) {
		resp, body := h.do(t, "GET", "/demo/", nil)
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") || !strings.Contains(string(body), "demo.js") {
			t.Fatalf("demo: %v\n%s", resp.Header, body)
		}
	})

	t.Run("websocket token in subprotocol", func(t *testing.T) {
		c := dial(t, h, "") // checks that the token is not echoed as the selected subprotocol
		if m := read(t, c); m.Type != "status" {
			t.Fatalf("first message %+v, want status", m)
		}
	})
	t.Run("websocket token in Authorization", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, h.ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}}})
		if err != nil {
			t.Fatal(err)
		}
		c.CloseNow()
	})
	for _, bad := range []struct {
		name   string
		protos []string
		origin string
		code   int
	}{
		{"websocket wrong token", []string{api.SubprotocolV1, api.SubprotocolBearer + "nope-nope-nope-nope"}, "", 401},
		{"websocket foreign origin", []string{api.SubprotocolV1, api.SubprotocolBearer + testToken}, "http://evil.example", 403},
	} {
		t.Run(bad.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hdr := http.Header{}
			if bad.origin != "" {
				hdr.Set("Origin", bad.origin)
			}
			c, resp, err := websocket.Dial(ctx, h.ws, &websocket.DialOptions{Subprotocols: bad.protos, HTTPHeader: hdr})
			if err == nil {
				c.CloseNow()
				t.Fatal("handshake accepted")
			}
			if resp == nil || resp.StatusCode != bad.code {
				t.Fatalf("response %v, want %d", resp, bad.code)
			}
		})
	}
}

func TestListenRefusesNonLoopbackWithoutTLS(t *testing.T) {
	base := api.Options{Token: testToken, Status: func() any { return map[string]any{} }}
	for _, addr := range []string{"0.0.0.0:17485", ":17485", "192.168.1.10:17485", "[::]:17485", "kiosk.example:17485"} {
		o := base
		o.Listen = addr
		_, err := api.New(o)
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") || !strings.Contains(err.Error(), "api.tls_cert") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:17485", "localhost:17485", "[::1]:17485", "127.0.0.2:0"} {
		o := base
		o.Listen = addr
		if _, err := api.New(o); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	o := base
	o.Listen, o.TLSCert = "0.0.0.0:17485", "x.pem"
	if _, err := api.New(o); err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("cert without key: %v", err)
	}
	o.Listen, o.Token = "127.0.0.1:0", "short"
	o.TLSCert = ""
	if _, err := api.New(o); err == nil {
		t.Error("short token accepted")
	}

	// With TLS, a non-loopback address is allowed; served here on loopback to stay off
	// the network, and checked end to end over TLS.
	cert, key, pool := selfSigned(t)
	o = base
	o.Listen, o.TLSCert, o.TLSKey = "0.0.0.0:0", cert, key
	if _, err := api.New(o); err != nil {
		t.Fatalf("TLS on 0.0.0.0 refused: %v", err)
	}
	h := start(t, func(o *api.Options) { o.TLSCert, o.TLSKey = cert, key })
	// The client would take HTTP/2 if offered; the server must stay on HTTP/1.1, where
	// WebSocket upgrades live.
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", strings.Replace(h.url, "http://", "https://", 1)+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Fatalf("over TLS: %d %s", resp.StatusCode, resp.Proto)
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ehc-agent test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

func TestTokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "api.token")
	tok, created, err := api.LoadOrCreateToken(p)
	if err != nil || !created || len(tok) < 40 {
		t.Fatalf("create: %q %v %v", tok, created, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600", fi.Mode(), err)
	}
	again, created, err := api.LoadOrCreateToken(p)
	if err != nil || created || again != tok {
		t.Fatalf("second start: %q %v %v, want the same token", again, created, err)
	}
	other, _, _ := api.LoadOrCreateToken(filepath.Join(t.TempDir(), "api.token"))
	if other == tok {
		t.Fatal("two token files share a token")
	}

	os.Chmod(p, 0o644)
	if _, _, err := api.LoadOrCreateToken(p); err == nil || !strings.Contains(err.Error(), "every user") {
		t.Fatalf("world-readable token file: %v", err)
	}
	os.Chmod(p, 0o640) // a kiosk application's group may read it
	if _, _, err := api.LoadOrCreateToken(p); err != nil {
		t.Fatalf("0640: %v", err)
	}
	os.WriteFile(p, []byte("\n"), 0o600)
	if _, _, err := api.LoadOrCreateToken(p); err == nil || !strings.Contains(err.Error(), "does not hold a token") {
		t.Fatalf("empty token file: %v", err)
	}
}

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:17485":    "http://127.0.0.1:17485",
		"HTTP://LocalHost:17485/":   "http://localhost:17485",
		"https://kiosk.example:443": "https://kiosk.example",
		"http://[::1]:17485":        "http://[::1]:17485",
		"null":                      "null",
	} {
		if got, err := api.NormalizeOrigin(in); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1:17485", "ftp://x", "http://x/path", "*", ""} {
		if _, err := api.NormalizeOrigin(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
