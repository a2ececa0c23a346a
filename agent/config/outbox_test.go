package config

import (
	"strings"
	"testing"
	"time"
)

// Without an outbox section the agent keeps the cap and retention it always had
// (offline/outbox's own defaults); an explicit value and the environment are taken.
func TestOutboxDefaultsAndValues(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox.MaxPending != 100_000 || c.Outbox.Retention != 24*time.Hour {
		t.Fatalf("outbox defaults: %+v", c.Outbox)
	}
	c, err = Load(write(t, "outbox:\n  max_pending: 1000\n  retention: 90m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox.MaxPending != 1000 || c.Outbox.Retention != 90*time.Minute {
		t.Fatalf("explicit values not kept: %+v", c.Outbox)
	}
	t.Setenv("EHC_AGENT_OUTBOX_MAX_PENDING", "10000000")
	t.Setenv("EHC_AGENT_OUTBOX_RETENTION", "2160h")
	if c, err = Load(""); err != nil {
		t.Fatal(err)
	}
	if c.Outbox.MaxPending != 10_000_000 || c.Outbox.Retention != 90*24*time.Hour {
		t.Fatalf("environment not applied: %+v", c.Outbox)
	}
	// Zero is what offline/outbox reads as its default: the same default here.
	o := Outbox{}
	o.validate(func(key, format string, args ...any) { t.Errorf("%s", Errorf(key, format, args...)) })
	if o.MaxPending != DefaultOutboxMaxPending || o.Retention != DefaultOutboxRetention {
		t.Fatalf("zero values: %+v", o)
	}
}

func TestOutboxBadValuesAreNamed(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"outbox:\n  max_pending: 999\n", "outbox.max_pending: 999 is outside 1000..10000000 events"},
		{"outbox:\n  max_pending: 10000001\n", "outbox.max_pending: 10000001 is outside 1000..10000000 events"},
		{"outbox:\n  max_pending: -5\n", "outbox.max_pending: -5 is outside"},
		{"outbox:\n  max_pending: lots\n", "outbox.max_pending: "},
		{"outbox:\n  retention: 59s\n", "outbox.retention: 59s is outside 1m0s..2160h0m0s"},
		{"outbox:\n  retention: 2161h\n", "outbox.retention: 2161h0m0s is outside 1m0s..2160h0m0s"},
		{"outbox:\n  retention: -1h\n", "outbox.retention: -1h0m0s is outside"},
		{"outbox:\n  retention: forever\n", "outbox.retention: "},
		{"outbox:\n  max_events: 5000\n", "outbox.max_events: unknown key"},
	} {
		_, err := Load(write(t, c.yaml))
		if err == nil {
			t.Errorf("%q accepted", c.yaml)
			continue
		}
		if got := strings.Join(problems(t, err), "\n"); !strings.HasPrefix(got, c.want) {
			t.Errorf("%q:\n%s\nwant %q", c.yaml, got, c.want)
		}
	}
	// Bounds are inclusive.
	if _, err := Load(write(t, "outbox:\n  max_pending: 10000000\n  retention: 1m\n")); err != nil {
		t.Errorf("the bounds themselves refused: %v", err)
	}
}

// The example configuration documents the defaults: its outbox section holds them.
func TestExampleOutboxIsTheDefault(t *testing.T) {
	c, err := Load("../../configs/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox.MaxPending != DefaultOutboxMaxPending || c.Outbox.Retention != DefaultOutboxRetention {
		t.Fatalf("configs/agent.example.yaml outbox %+v, defaults %d and %s", c.Outbox, DefaultOutboxMaxPending, DefaultOutboxRetention)
	}
}
