package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ehc-agent/ehc-agent/offline/keyfile"
)

// WebSocket subprotocols. A browser cannot set an Authorization header on a WebSocket,
// so it offers the token as a second subprotocol; the server always selects
// SubprotocolV1, never echoing the token back.
const (
	SubprotocolV1     = "ehc-agent.v1"
	SubprotocolBearer = "ehc-agent.bearer." // + token
)

// LoadOrCreateToken returns the token kept in path, creating the file (mode 0600, in a
// directory created 0700 if missing) with a new random token on first use. A token
// file readable or writable by every user is refused: anyone on the machine could then
// read identities from the API.
func LoadOrCreateToken(path string) (token string, created bool, err error) {
	if b, err := readToken(path); err == nil {
		return b, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("api.token_file: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("api.token_file: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process created it first: use that one
		t, err := readToken(path)
		return t, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("api.token_file: %w", err)
	}
	_, err = f.WriteString(token + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("api.token_file: %w", err)
	}
	return token, true, nil
}

func readToken(path string) (string, error) {
	b, err := keyfile.ReadGroupShared(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("api.token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 16 || strings.ContainsAny(t, " \t\r\n,") {
		return "", fmt.Errorf("api.token_file: %s does not hold a token (one line, at least 16 characters, no spaces or commas)", path)
	}
	return t, nil
}

// access decides who may use the API: the Host check (loopback only), the Origin
// allow-list with CORS for the allowed origins, and the bearer token.
type access struct {
	sum      [32]byte // SHA-256 of the token: compared in constant time, whatever the lengths
	origins  map[string]bool
	loopback bool
}

func newAccess(token string, origins []string, loopback bool) (*access, error) {
	a := &access{sum: sha256.Sum256([]byte(token)), origins: map[string]bool{}, loopback: loopback}
	for i, o := range origins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("api.allowed_origins[%d]: %v", i, err)
		}
		a.origins[n] = true
	}
	return a, nil
}

// NormalizeOrigin returns o as a browser sends it in an Origin header: lower-case scheme
// and host, no default port, no path. "null" (file:// pages, sandboxed frames) is kept
// as is: it is shared by every such page, so allow it only knowingly.
func NormalizeOrigin(o string) (string, error) {
	if o == "null" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not an origin like http://127.0.0.1:17485", o)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin: scheme://host[:port] only, no path", o)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// exposed are the response headers a browser page may read (long-poll gaps).
const exposed = "Ehc-Events-Missed, Ehc-First-Seq, Ehc-Last-Seq"

// outer applies the Host and Origin rules to every request, /healthz and /demo/ included,
// and answers CORS preflights from allowed origins.
func (a *access) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A web page can make its own host name resolve to 127.0.0.1 (DNS rebinding) and
		// so become "same origin" with us; a loopback API therefore answers only to
		// loopback host names.
		if a.loopback && r.Host != "" && !isLoopbackHost(hostOnly(r.Host)) {
			writeError(w, http.StatusForbidden, "host_not_allowed", "the local API answers only to loopback host names")
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !a.originAllowed(origin, r) {
				writeError(w, http.StatusForbidden, "origin_not_allowed", "this page's origin is not in api.allowed_origins")
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", exposed)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST")
				// Content-Type: a page posting JSON (a lend's {"seconds": N}) must say so.
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				// Chrome's Private Network Access preflight, for pages on non-loopback origins.
				if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
					h.Set("Access-Control-Allow-Private-Network", "true")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (a *access) originAllowed(origin string, r *http.Request) bool {
	n, err := NormalizeOrigin(origin)
	if err != nil {
		return false
	}
	if a.origins[n] {
		return true
	}
	// The API's own pages (/demo/) are allowed on whatever loopback port it listens; the
	// Host check above keeps a rebound foreign name from passing as "own".
	if a.loopback && n != "null" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		own, err := NormalizeOrigin(scheme + "://" + r.Host)
		return err == nil && own == n
	}
	return false
}

// token requires the bearer token: "Authorization: Bearer <token>", or for a WebSocket
// handshake the subprotocol "ehc-agent.bearer.<token>". A token in the URL is never
// accepted: URLs end up in logs and browser history.
func (a *access) token(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ehc-agent"`)
			writeError(w, http.StatusUnauthorized, "token_required", "send Authorization: Bearer <token> (the token is in api.token_file)")
			return
		}
		sum := sha256.Sum256([]byte(t))
		if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ehc-agent", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "token_invalid", "the token does not match api.token_file")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(t) != "" {
			return strings.TrimSpace(t), true
		}
		return "", false
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(v, ",") {
				if t, ok := strings.CutPrefix(strings.TrimSpace(p), SubprotocolBearer); ok && t != "" {
					return t, true
				}
			}
		}
	}
	return "", false
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}
