package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// API defaults; DefaultAPIAllowedOrigins are the API's own origins on its default address.
const (
	DefaultAPIListen   = "127.0.0.1:17485"
	DefaultAPIWSBuffer = 256
	MaxAPIWSBuffer     = 65536
)

var DefaultAPIAllowedOrigins = []string{"http://127.0.0.1:17485", "http://localhost:17485"}

// API is the local API for the kiosk application (agent/api).
type API struct {
	// Listen is host:port, "" = no local API. Loopback only unless TLS is configured:
	// the API hands out identities.
	Listen string `mapstructure:"listen"`
	// TokenFile holds the bearer token, created 0600 at first start; "" means
	// <state_dir>/api.token.
	TokenFile string `mapstructure:"token_file"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose pages may call
	// the API; a request with any other Origin is refused with 403.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
	// TLSCert and TLSKey (PEM files, both or neither) serve the API over HTTPS, which is
	// required to listen beyond loopback.
	TLSCert string `mapstructure:"tls_cert"`
	TLSKey  string `mapstructure:"tls_key"`
	// WSBuffer is how many messages may wait for one WebSocket client before it is
	// dropped as too slow (it resumes by seq).
	WSBuffer int `mapstructure:"ws_buffer"`
}

// TokenPath is where the bearer token lives: TokenFile, or api.token in stateDir.
func (a *API) TokenPath(stateDir string) string {
	if a.TokenFile != "" {
		return a.TokenFile
	}
	return filepath.Join(stateDir, "api.token")
}

// validate checks the API section. A zero ws_buffer takes its default here, because no
// value of zero makes sense; listen and allowed_origins take theirs from the defaults
// map, where an explicit "" (no API) or [] (no browser origin) stays as written.
func (a *API) validate(bad func(key, format string, args ...any)) {
	if a.WSBuffer == 0 {
		a.WSBuffer = DefaultAPIWSBuffer
	}
	if a.WSBuffer < 1 || a.WSBuffer > MaxAPIWSBuffer {
		bad("api.ws_buffer", "%d is outside 1..%d", a.WSBuffer, MaxAPIWSBuffer)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		bad("api.tls_cert", "tls_cert and tls_key must be given together")
	}
	for _, f := range []struct{ key, path string }{{"api.tls_cert", a.TLSCert}, {"api.tls_key", a.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.key, "%v", err)
		}
	}
	if a.Listen != "" {
		a.validateListen(bad)
	}
	if a.TokenFile != "" && strings.HasSuffix(a.TokenFile, "/") {
		bad("api.token_file", "%q names a directory, not a file", a.TokenFile)
	}
	for i, o := range a.AllowedOrigins {
		if o == "null" {
			continue // file:// pages; shared by every such page, so allowed only by name
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad(fmt.Sprintf("api.allowed_origins[%d]", i), "%q is not an origin: scheme://host[:port], such as http://127.0.0.1:17485", o)
		}
	}
}

func (a *API) validateListen(bad func(key, format string, args ...any)) {
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		bad("api.listen", "%q is not host:port", a.Listen)
		return
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		bad("api.listen", "%q: %q is not a port", a.Listen, port)
		return
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) || a.TLSCert != "" {
		return
	}
	bad("api.listen", "%q is not a loopback address; the local API hands out identities and listens beyond "+
		"loopback only with TLS (set api.tls_cert and api.tls_key), or use 127.0.0.1:%s", a.Listen, port)
}
