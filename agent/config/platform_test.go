package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlatformDefaults(t *testing.T) {
	c, err := Load(write(t, "platform: {url: \"http://127.0.0.1:8080\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Platform
	if p.Timeout != 10*time.Second || p.ResolveTimeout != 1500*time.Millisecond ||
		p.ClockOffsetLimit != 120*time.Second || p.TrustSyncInterval != time.Hour {
		t.Fatalf("defaults not applied: %+v", p)
	}
	if got := p.KeyPath("/var/lib/ehc-agent"); got != filepath.Join("/var/lib/ehc-agent", "terminal.key") {
		t.Fatalf("default key path %s", got)
	}
	p.TerminalKey = "/etc/k"
	if p.KeyPath("/x") != "/etc/k" {
		t.Fatal("terminal_key not used")
	}
}

func TestPlatformBadKeysAreNamed(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{`{url: "http://platform.example"}`, "platform.url: "},
		{`{url: "https://platform.example"}`, "platform.ca_file: required for an https url"},
		{`{url: "https://platform.example", ca_file: ca.pem, client_cert: c.pem}`, "platform.client_cert: client_cert and client_key go together"},
		{`{clock_offset_limit: 300s}`, "platform.clock_offset_limit: 5m0s is outside 1s..4m59s (it must stay below"},
		{`{timeout: -1s}`, "platform.timeout: -1s is outside"},
		{`{resolve_timeout: 1m}`, "platform.resolve_timeout: 1m0s is outside"},
		{`{trust_sync_interval: 48h}`, "platform.trust_sync_interval: 48h0m0s is outside"},
		{`{bogus: 1}`, "platform.bogus: unknown key"},
	} {
		_, err := Load(write(t, "platform: "+c.yaml+"\n"))
		if err == nil {
			t.Errorf("%s accepted", c.yaml)
			continue
		}
		if got := strings.Join(problems(t, err), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q does not contain %q", c.yaml, got, c.want)
		}
	}
	if _, err := Load(write(t, "platform: {url: \"https://p.example\", ca_file: ca.pem, client_cert: c.pem, client_key: c.key}\n")); err != nil {
		t.Fatalf("a complete https platform refused: %v", err)
	}
}
