package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
)

// localAPI is how a command reaches the running agent's local API (doctor, device): the
// base URL, a client that trusts the API's own certificate when it serves TLS, and where
// the token is. The token is read per request, so that a caller that only needs /healthz
// works without the right to read it.
type localAPI struct {
	base      string
	client    *http.Client
	tokenPath string
}

// newLocalAPI describes cfg's local API; it fails only when the API is off or its address
// cannot be read.
func newLocalAPI(cfg *config.Config, timeout time.Duration) (*localAPI, error) {
	a := cfg.API
	if a.Listen == "" {
		return nil, usageErrorf("the local API is off (api.listen is empty)")
	}
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return nil, usageErrorf("api.listen %q: %v", a.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening on every address: this machine's is one of them
	}
	scheme, client := "http", &http.Client{Timeout: timeout}
	if a.TLSCert != "" {
		scheme = "https"
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(a.TLSCert); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &localAPI{base: scheme + "://" + net.JoinHostPort(host, port), client: client, tokenPath: a.TokenPath(cfg.StateDir)}, nil
}

// token reads the bearer token; only root and the agent's user can.
func (l *localAPI) token() (string, error) {
	b, err := os.ReadFile(l.tokenPath)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// do sends one request; token "" sends none (for /healthz). A body is sent as JSON.
func (l *localAPI) do(ctx context.Context, method, path, token string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, body)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return l.client.Do(req)
}
