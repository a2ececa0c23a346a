package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// The signed string, for a fixed command, is exactly the documented seven lines.
func TestSignedString(t *testing.T) {
	c := Command{RequestID: "r1", TerminalID: "K-0001", Verb: "trigger", TS: 1764028800, Nonce: "0011223344556677",
		Args: json.RawMessage(`{"device":"front"}`)}
	// The last line checked with `printf '{"device":"front"}' | openssl dgst -sm3`.
	want := "EHC-FLEET-CMD/1\nK-0001\ntrigger\nr1\n1764028800\n0011223344556677\n" +
		"6bb984c8c78b3ba2b24f3fc8f1ba89d168cfe8766da76aac7ef9db7794fcbc0b"
	if got := c.SignedString(); got != want {
		t.Fatalf("signed string %q, want %q", got, want)
	}
	c.Args = nil
	if h := strings.Split(c.SignedString(), "\n")[6]; h != "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b" {
		t.Fatalf("no args must hash the empty string, got %s", h)
	}
}

func TestVerifierRefusals(t *testing.T) {
	key, _ := sm2sig.GenerateKey()
	started := time.Unix(1764028800, 0)
	now := started.Add(10 * time.Minute)
	v := newVerifier("K-0001", sm2sig.Public(key), started)
	sign := func(mut func(*Command)) *Command {
		c, err := NewCommand("K-0001", VerbDoctor, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		if mut != nil {
			mut(c)
		}
		if err := c.Sign(key); err != nil {
			t.Fatal(err)
		}
		return c
	}
	reason := func(err error) string {
		var r *Refusal
		if errors.As(err, &r) {
			return r.Reason
		}
		return fmt.Sprint(err)
	}
	ok := sign(nil)
	if err := v.check(ok, VerbDoctor, now); err != nil {
		t.Fatalf("valid command refused: %v", err)
	}
	if got := reason(v.check(ok, VerbDoctor, now)); got != ReasonReplayed {
		t.Fatalf("second use: %s", got)
	}
	for _, tc := range []struct {
		name, want string
		c          *Command
		topic      string
	}{
		{"60 s old is still fresh", "", sign(func(c *Command) { c.TS = now.Unix() - 60 }), VerbDoctor},
		{"61 s old", ReasonStale, sign(func(c *Command) { c.TS = now.Unix() - 61 }), VerbDoctor},
		{"nonce too short", ReasonMalformed, sign(func(c *Command) { c.Nonce = "abc" }), VerbDoctor},
		{"nonce upper case", ReasonMalformed, sign(func(c *Command) { c.Nonce = "00112233445566AA" }), VerbDoctor},
		{"topic verb", ReasonVerbMismatch, sign(nil), VerbReload},
	} {
		if got := reason(v.check(tc.c, tc.topic, now)); (tc.want == "" && got != "<nil>") || (tc.want != "" && got != tc.want) {
			t.Errorf("%s: %s, want %q", tc.name, got, tc.want)
		}
	}
	// Signed before this process started: could have run in the previous one.
	early := newVerifier("K-0001", sm2sig.Public(key), now.Add(5*time.Second))
	if got := reason(early.check(sign(nil), VerbDoctor, now.Add(10*time.Second))); got != ReasonStale {
		t.Fatalf("before start: %s", got)
	}
	// The terminal's clock was slow at start and the trusted clock moved forward after
	// (the platform's offset): the start on the trusted clock is now − uptime, and a
	// command signed before it is refused even though it is after the slow start.
	slow := newVerifier("K-0001", sm2sig.Public(key), now.Add(-9*time.Minute))
	slow.uptime = func() time.Duration { return 30 * time.Second }
	if got := reason(slow.check(sign(func(c *Command) { c.TS = now.Unix() - 45 }), VerbDoctor, now)); got != ReasonStale {
		t.Fatalf("signed 45 s ago, before the start 30 s ago on the trusted clock: %s", got)
	}
	if got := reason(slow.check(sign(func(c *Command) { c.TS = now.Unix() - 20 }), VerbDoctor, now)); got != "<nil>" {
		t.Fatalf("signed after the start on the trusted clock: %s", got)
	}
	// Bad sig shapes.
	c := sign(nil)
	c.Sig = c.Sig[:10]
	if got := reason(v.check(c, VerbDoctor, now)); got != ReasonBadSignature {
		t.Fatalf("short sig: %s", got)
	}
	if got := reason(newVerifier("K-0001", nil, started).check(sign(nil), VerbDoctor, now)); got != ReasonCommandsDisabled {
		t.Fatalf("no key: %s", got)
	}
}

// The replay cache forgets nonces only once their commands are stale anyway, and
// refuses rather than forgets when it is full.
func TestReplayCacheBound(t *testing.T) {
	v := newVerifier("K-0001", nil, time.Time{})
	now := time.Unix(1764028800, 0)
	for i := 0; i < maxNonces; i++ {
		if err := v.remember(fmt.Sprintf("%016x", i), now.Add(CommandWindow), now); err != nil {
			t.Fatal(err)
		}
	}
	var r *Refusal
	if err := v.remember("ffffffffffffffff", now.Add(CommandWindow), now); !errors.As(err, &r) || r.Reason != ReasonReplayCacheFull {
		t.Fatalf("full cache: %v", err)
	}
	later := now.Add(CommandWindow + time.Second)
	if err := v.remember("ffffffffffffffff", later.Add(CommandWindow), later); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if len(v.nonces) != 1 {
		t.Fatalf("%d nonces kept, want 1", len(v.nonces))
	}
}

func TestParseCommandKey(t *testing.T) {
	key, _ := sm2sig.GenerateKey()
	pub := sm2sig.Public(key)
	if k, err := ParseCommandKey(pub.Hex()); err != nil || !k.Equal(pub) {
		t.Fatalf("hex: %v", err)
	}
	pemb, _ := pub.MarshalPEM()
	f := filepath.Join(t.TempDir(), "fleet.pub")
	os.WriteFile(f, pemb, 0o600)
	if k, err := ParseCommandKey(f); err != nil || !k.Equal(pub) {
		t.Fatalf("PEM file: %v", err)
	}
	if _, err := ParseCommandKey("04ABCD"); err == nil {
		t.Fatal("short hex accepted")
	}
}

func TestTopicsAndChecks(t *testing.T) {
	tp := Topics{Prefix: "ehc/hz", Terminal: "K-1"}
	if tp.Status() != "ehc/hz/K-1/status" || tp.Command("doctor") != "ehc/hz/K-1/cmd/doctor" ||
		tp.Reply("r1") != "ehc/hz/K-1/reply/r1" || tp.Commands() != "ehc/hz/K-1/cmd/+" || tp.Events() != "ehc/hz/K-1/events" {
		t.Fatal(tp)
	}
	if tp.verbOf("ehc/hz/K-1/cmd/doctor") != "doctor" || tp.verbOf("ehc/hz/K-2/cmd/doctor") != "" || tp.verbOf("ehc/hz/K-1/cmd/a/b") != "" {
		t.Fatal("verbOf")
	}
	for _, p := range []string{"", "/ehc", "ehc/", "ehc//x", "ehc/+", "ehc/#", "$SYS", "ehc/a b", strings.Repeat("x", 129)} {
		if CheckPrefix(p) == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if CheckPrefix("ehc/hospital-a") != nil {
		t.Error("good prefix refused")
	}
	for raw, want := range map[string]string{
		"mqtts://broker.example": "broker.example:8883", "mqtts://b:1234": "b:1234",
		"mqtt://127.0.0.1": "127.0.0.1:1883", "tls://[::1]:9": "[::1]:9",
	} {
		if u, err := ParseBroker(raw); err != nil || u.Host != want {
			t.Errorf("%s: %v %v", raw, u, err)
		}
	}
	for _, raw := range []string{"mqtt://10.0.0.1", "http://b", "mqtts://u:p@b", "mqtts://b/x", "mqtts://"} {
		if _, err := ParseBroker(raw); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
}

func TestBackoffSpreadsReconnections(t *testing.T) {
	b := backoff{min: time.Second, max: 8 * time.Second}
	if d := b.delay(0); d != 0 {
		t.Fatalf("first connection waits %s", d)
	}
	b.connected.Store(true)
	var lo, hi time.Duration = time.Hour, 0
	for i := 0; i < 1000; i++ {
		d := b.delay(0)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 0 || hi >= time.Second || hi-lo < 500*time.Millisecond {
		t.Fatalf("reconnect attempt 0 spread over [%s, %s], want across [0, 1s)", lo, hi)
	}
	for n, want := range map[int][2]time.Duration{1: {500 * time.Millisecond, time.Second}, 3: {2 * time.Second, 4 * time.Second}, 10: {4 * time.Second, 8 * time.Second}} {
		for i := 0; i < 100; i++ {
			if d := b.delay(n); d < want[0] || d > want[1] {
				t.Fatalf("attempt %d: %s outside %v", n, d, want)
			}
		}
	}
}

func TestFingerprintIgnoresTime(t *testing.T) {
	a := Status{TerminalID: "K", State: StateOnline, At: time.Unix(1, 0), Outbox: &Outbox{Depth: 1, OldestAgeSeconds: 3}}
	b := a
	b.At = time.Unix(2, 0)
	b.Outbox = &Outbox{Depth: 1, OldestAgeSeconds: 4}
	if fingerprint(a) != fingerprint(b) {
		t.Fatal("time alone changed the fingerprint")
	}
	b.Outbox.Depth = 2
	if fingerprint(a) == fingerprint(b) {
		t.Fatal("a change of depth was not seen")
	}
	if a.Outbox.OldestAgeSeconds != 3 {
		t.Fatal("fingerprint modified its argument")
	}
}

func TestTopicMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/+/status", "a/K/status", true}, {"a/+/status", "a/K/events", false}, {"a/#", "a/K/cmd/x", true},
		{"a/+/cmd/+", "a/K/cmd", false}, {"a/K", "a/K/x", false}, {"#", "a", true},
	} {
		if got := topicMatches(tc.filter, tc.topic); got != tc.want {
			t.Errorf("%s ~ %s: %v", tc.filter, tc.topic, got)
		}
	}
}
