package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// runCmd runs a freshly built command in-process (fresh, so no flag value leaks from
// one run to the next) and returns its standard output and error.
func runCmd(t *testing.T, cmd *cobra.Command, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return -1
}

func lines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		res = append(res, m)
	}
	return res
}

// cliVector is the part of offline/verify's vector format this test needs.
type cliVector struct {
	Name    string `json:"name"`
	Trust   string `json:"trust"`
	Options *struct {
		Skew        string   `json:"skew"`
		IssuerAllow []uint32 `json:"issuer_allow"`
	} `json:"options"`
	Reads []struct {
		Code       string         `json:"code"`
		At         string         `json:"at"`
		Status     string         `json:"status"`
		Reason     string         `json:"reason"`
		DoubleRead bool           `json:"double_read"`
		TrustStale bool           `json:"trust_stale"`
		Result     map[string]any `json:"result"`
	} `json:"reads"`
}

// TestVerifyAgreesWithVectors runs `verify` over the conformance vectors (CODES.md,
// Conformance: "ehc-agent verify must agree with every one of them"). A vector whose
// reads happen at different times or expect a double read needs devices and a clock,
// which one CLI run has not; those are the verifier's own tests.
func TestVerifyAgreesWithVectors(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "offline", "verify", "testdata", "vectors")
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no vectors in %s: %v", dir, err)
	}
	ran := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v cliVector
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cliOK := true
		for _, r := range v.Reads {
			if r.At != v.Reads[0].At || r.DoubleRead {
				cliOK = false
			}
		}
		if !cliOK {
			t.Logf("%s: needs devices or several clock readings; covered by offline/verify", v.Name)
			continue
		}
		ran++
		t.Run(v.Name, func(t *testing.T) {
			args := []string{"--trust-dir", filepath.Join(dir, v.Trust), "--at", v.Reads[0].At}
			if o := v.Options; o != nil {
				if o.Skew != "" {
					args = append(args, "--skew", o.Skew)
				}
				for _, id := range o.IssuerAllow {
					args = append(args, "--issuer-allow", strconv.FormatUint(uint64(id), 10))
				}
			}
			allValid := true
			for _, r := range v.Reads {
				args = append(args, r.Code)
				allValid = allValid && r.Status == "valid"
			}
			out, err := runCmd(t, newVerifyCmd(), "", args...)
			if want := map[bool]int{true: 0, false: 1}[allValid]; exitCode(err) != want {
				t.Fatalf("exit %d (%v), want %d", exitCode(err), err, want)
			}
			got := lines(t, out)
			if len(got) != len(v.Reads) {
				t.Fatalf("%d lines for %d codes", len(got), len(v.Reads))
			}
			for i, r := range v.Reads {
				g := got[i]
				if g["type"] != "ehc_offline" || g["status"] != r.Status || g["reason"] != r.Reason || g["trust_stale"] != r.TrustStale {
					t.Fatalf("read %d: %v, want %s/%s trust_stale=%v", i, g, r.Status, r.Reason, r.TrustStale)
				}
				for k, want := range r.Result {
					if k == "extension" && want == "" && g[k] == nil {
						continue
					}
					if g[k] != want {
						t.Fatalf("read %d: %s = %v, want %v", i, k, g[k], want)
					}
				}
			}
		})
	}
	if ran < len(paths)/2 {
		t.Fatalf("only %d of %d vectors ran", ran, len(paths))
	}
}

func TestSimKeysCodeVerify(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := runCmd(t, newSimKeysCmd(), "", "--out", keys); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, newSimKeysCmd(), "", "--out", keys); exitCode(err) != 2 {
		t.Fatalf("overwriting keys: %v", err)
	}
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339) // within the windows of keys made now

	out, err := runCmd(t, newSimCodeCmd(), "", "--keys", keys, "--at", at, "--seq", "5", "--count", "3")
	if err != nil {
		t.Fatal(err)
	}
	codes := strings.Split(strings.TrimSpace(out), "\n") // Base45 has spaces: one code a line
	if len(codes) != 3 {
		t.Fatalf("%d codes", len(codes))
	}
	// From standard input, CRLF line ends and a blank line included.
	vout, err := runCmd(t, newVerifyCmd(), strings.Join(codes, "\r\n")+"\n\n", "--trust-dir", keys, "--at", at, "-")
	if err != nil {
		t.Fatalf("%v\n%s", err, vout)
	}
	for i, l := range lines(t, vout) {
		if l["status"] != "valid" || l["sequence"] != float64(5+i) {
			t.Fatalf("code %d: %v", i, l)
		}
	}

	for _, c := range []struct{ defect, reason string }{
		{"revoked-issuer", "revoked_issuer"}, {"expired", "code_expired"}, {"bad-key", "bad_key"}, {"malformed", "malformed"},
	} {
		code, err := runCmd(t, newSimCodeCmd(), "", "--keys", keys, "--at", at, "--defect", c.defect)
		if err != nil {
			t.Fatal(err)
		}
		vout, err := runCmd(t, newVerifyCmd(), "", "--trust-dir", keys, "--at", at, strings.TrimSpace(code))
		if exitCode(err) != 1 {
			t.Fatalf("%s: exit %d", c.defect, exitCode(err))
		}
		if l := lines(t, vout)[0]; l["reason"] != c.reason || l["ehc_id"] != nil && c.reason != "code_expired" {
			t.Fatalf("%s: %v", c.defect, l)
		}
	}
	for _, args := range [][]string{
		{"--keys", keys, "--defect", "no-such"},
		{"--keys", keys, "--at", "tomorrow"},
		{"--keys", keys, "--count", "0"},
		{"--keys", keys, "--extension", "zz"},
		{"--keys", t.TempDir()},
		{},
	} {
		if _, err := runCmd(t, newSimCodeCmd(), "", args...); exitCode(err) != 2 {
			t.Errorf("sim code %v: %v", args, err)
		}
	}
}

func TestVerifyClassifiesAndRoutes(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := runCmd(t, newSimKeysCmd(), "", "--out", keys); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, err := runCmd(t, newSimCodeCmd(), "", "--keys", keys, "--at", at)
	if err != nil {
		t.Fatal(err)
	}
	code = strings.TrimSpace(code)
	online := strings.Repeat("e1d1", 16) + "：12" // lowercase, full-width colon
	out, err := runCmd(t, newVerifyCmd(), "", "--trust-dir", keys, "--at", at, "--insurance", `^YB[0-9]{10}$`,
		code, code, online, "131234567890123456", "YB0123456789", "hello")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d", exitCode(err))
	}
	got := lines(t, out)
	want := []struct{ typ, status, reason string }{
		{"ehc_offline", "valid", ""},
		{"ehc_offline", "invalid", "replayed"},
		{"ehc_online", "pending", "online_required"},
		{"payment", "pending", "routed"},
		{"insurance", "pending", "routed"},
		{"unknown", "invalid", "unrecognised"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines: %s", len(got), out)
	}
	for i, w := range want {
		if got[i]["type"] != w.typ || got[i]["status"] != w.status || got[i]["reason"] != w.reason {
			t.Errorf("line %d: %v, want %+v", i, got[i], w)
		}
	}
	// Payment and insurance payloads appear only masked.
	for _, secret := range []string{"131234567890123456", "YB0123456789"} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains %s unmasked", secret)
		}
	}
	if got[3]["masked"] == nil || got[3]["scheme"] != "wechat" {
		t.Errorf("payment line %v", got[3])
	}

	// Only valid inputs: exit 0.
	code2, _ := runCmd(t, newSimCodeCmd(), "", "--keys", keys, "--at", at)
	if _, err := runCmd(t, newVerifyCmd(), "", "--trust-dir", keys, "--at", at, strings.TrimSpace(code2)); err != nil {
		t.Fatalf("valid code: %v", err)
	}
}

func TestVerifyUsageErrors(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := runCmd(t, newSimKeysCmd(), "", "--out", keys); err != nil {
		t.Fatal(err)
	}
	broken := t.TempDir()
	for _, f := range []string{"anchor.pub", "keyset.json"} {
		b, _ := os.ReadFile(filepath.Join(keys, f))
		os.WriteFile(filepath.Join(broken, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(broken, "revocations.json"), []byte(`{"payload": "e30=", "signature": "AAAA"}`), 0o644)
	otherAnchor := t.TempDir()
	for _, f := range []string{"keyset.json", "revocations.json"} {
		b, _ := os.ReadFile(filepath.Join(keys, f))
		os.WriteFile(filepath.Join(otherAnchor, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(otherAnchor, "anchor.pub"), []byte(strings.Repeat("0", 130)), 0o644)

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"x"}, "--trust-dir"},
		{[]string{"--trust-dir", t.TempDir(), "x"}, "anchor.pub"},
		{[]string{"--trust-dir", broken, "x"}, "revocations.json: trust: revocations: bad_signature"},
		{[]string{"--trust-dir", otherAnchor, "x"}, "anchor.pub: not a trust anchor public key"},
		{[]string{"--trust-dir", keys, "--at", "noon", "x"}, "--at"},
		{[]string{"--trust-dir", keys, "--skew", "-1s", "x"}, "--skew"},
		{[]string{"--trust-dir", keys, "--insurance", "(", "x"}, "--insurance"},
		{[]string{"--trust-dir", keys, "--issuer-allow", "4294967296", "x"}, "--issuer-allow"},
	} {
		_, err := runCmd(t, newVerifyCmd(), "", c.args...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: exit %d, %v; want 2 and %q", c.args, exitCode(err), err, c.msg)
		}
	}
}
