package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestAPIDefaults(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	a := c.API
	if a.Listen != DefaultAPIListen || a.TokenFile != "" || a.WSBuffer != DefaultAPIWSBuffer ||
		!reflect.DeepEqual(a.AllowedOrigins, DefaultAPIAllowedOrigins) {
		t.Fatalf("api defaults: %+v", a)
	}
	t.Setenv("EHC_AGENT_API_LISTEN", "127.0.0.1:18000")
	t.Setenv("EHC_AGENT_API_ALLOWED_ORIGINS", "http://127.0.0.1:18000,http://kiosk.local:8080")
	if c, err = Load(""); err != nil {
		t.Fatal(err)
	}
	if c.API.Listen != "127.0.0.1:18000" || !reflect.DeepEqual(c.API.AllowedOrigins, []string{"http://127.0.0.1:18000", "http://kiosk.local:8080"}) {
		t.Fatalf("environment not applied: %+v", c.API)
	}
}

func TestAPIOffAndExplicitValues(t *testing.T) {
	c, err := Load(write(t, "api:\n  listen: \"\"\n  allowed_origins: []\n  ws_buffer: 8\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Listen != "" || len(c.API.AllowedOrigins) != 0 || c.API.WSBuffer != 8 {
		t.Fatalf("explicit values not kept: %+v", c.API)
	}
}

func TestAPIBadValuesAreNamed(t *testing.T) {
	cert := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(cert, []byte("x"), 0o600)
	for _, c := range []struct{ yaml, want string }{
		{"api:\n  listen: 0.0.0.0:17485\n", `api.listen: "0.0.0.0:17485" is not a loopback address`},
		{"api:\n  listen: \":17485\"\n", `api.listen: ":17485" is not a loopback address`},
		{"api:\n  listen: 192.168.1.4:17485\n", "api.tls_cert and api.tls_key"},
		{"api:\n  listen: 127.0.0.1\n", `api.listen: "127.0.0.1" is not host:port`},
		{"api:\n  listen: 127.0.0.1:http-ish\n", "is not a port"},
		{"api:\n  tls_cert: " + cert + "\n", "api.tls_cert: tls_cert and tls_key must be given together"},
		{"api:\n  tls_cert: " + cert + "\n  tls_key: /nonexistent/key.pem\n", "api.tls_key: stat /nonexistent/key.pem"},
		{"api:\n  allowed_origins: [\"127.0.0.1:17485\"]\n", `api.allowed_origins[0]: "127.0.0.1:17485" is not an origin`},
		{"api:\n  allowed_origins: [\"http://a.example/path\"]\n", `api.allowed_origins[0]`},
		{"api:\n  ws_buffer: -1\n", "api.ws_buffer: -1 is outside 1..65536"},
		{"api:\n  token_file: /var/lib/\n", "api.token_file"},
		{"api:\n  bogus: 1\n", "api.bogus: unknown key"},
	} {
		_, err := Load(write(t, c.yaml))
		if err == nil {
			t.Errorf("%q accepted", c.yaml)
			continue
		}
		if got := strings.Join(problems(t, err), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%q:\n%s\nwant %q", c.yaml, got, c.want)
		}
	}
	// With TLS, any address.
	os.WriteFile(filepath.Join(filepath.Dir(cert), "key.pem"), []byte("x"), 0o600)
	y := "api:\n  listen: 0.0.0.0:17485\n  tls_cert: " + cert + "\n  tls_key: " + filepath.Join(filepath.Dir(cert), "key.pem") + "\n"
	if _, err := Load(write(t, y)); err != nil {
		t.Errorf("TLS on 0.0.0.0 refused: %v", err)
	}
}
