package verify

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// Conformance vectors (CODES.md, Conformance) live in testdata/vectors: one JSON file
// per vector, and the trust documents they share in testdata/vectors/trust (a trust
// directory: anchor.pub, keyset.json, revocations.json). Regenerate them with
//
//	go test ./offline/verify -run TestVectors -update
//
// which makes a fresh trust chain, so every file changes; commit them together.
var update = flag.Bool("update", false, "regenerate testdata/vectors")

const vectorsDir = "testdata/vectors"

// Vector is the file format of a conformance vector.
type Vector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Trust is the trust directory, relative to the vector file.
	Trust   string         `json:"trust"`
	Options *VectorOptions `json:"options,omitempty"`
	// Reads are verified in order against one replay cache.
	Reads []VectorRead `json:"reads"`
}

// VectorOptions are the verifier's configuration; absent fields are the defaults.
type VectorOptions struct {
	Skew        string   `json:"skew,omitempty"` // Go duration; "0s" is no skew
	IssuerAllow []uint32 `json:"issuer_allow,omitempty"`
}

// VectorRead is one scan and its expected result.
type VectorRead struct {
	Code       string        `json:"code"`
	Device     string        `json:"device"`
	At         string        `json:"at"` // RFC 3339, the verification time
	Status     string        `json:"status"`
	Reason     string        `json:"reason"`
	DoubleRead bool          `json:"double_read"`
	TrustStale bool          `json:"trust_stale"`
	Result     *VectorFields `json:"result,omitempty"` // for a valid read
}

// VectorFields are the identity fields of a valid result, named as `ehc-agent verify`
// prints them.
type VectorFields struct {
	EHCID       string `json:"ehc_id"`
	Category    uint8  `json:"category"`
	IssuerID    uint32 `json:"issuer_id"`
	CertSerial  uint32 `json:"cert_serial"`
	RootIndex   uint8  `json:"root_index"`
	GeneratedAt string `json:"generated_at"`
	ExpiresAt   string `json:"expires_at"`
	Sequence    uint32 `json:"sequence"`
	Extension   string `json:"extension"`
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Options converts the vector's options for New.
func (o *VectorOptions) options() (Options, error) {
	var opts Options
	if o == nil {
		return opts, nil
	}
	if o.Skew != "" {
		d, err := time.ParseDuration(o.Skew)
		if err != nil {
			return opts, err
		}
		opts.Skew = d
		if d == 0 {
			opts.Skew = -1
		}
	}
	opts.IssuerAllow = o.IssuerAllow
	return opts, nil
}

func fields(r Result) *VectorFields {
	return &VectorFields{
		EHCID: r.EHCID, Category: r.Category, IssuerID: r.IssuerID, CertSerial: r.CertSerial,
		RootIndex: r.RootIndex, GeneratedAt: rfc(r.GeneratedAt), ExpiresAt: rfc(r.ExpiresAt),
		Sequence: r.Sequence, Extension: r.Extension,
	}
}

func TestVectors(t *testing.T) {
	if *update {
		generateVectors(t)
	}
	paths, err := filepath.Glob(filepath.Join(vectorsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no vectors: run with -update")
	}
	covered := map[string]bool{}
	for _, p := range paths {
		v := loadVector(t, p)
		t.Run(v.Name, func(t *testing.T) {
			ts, err := trust.LoadDir(filepath.Join(filepath.Dir(p), v.Trust), trust.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rc, err := replay.Open(nil, replay.Options{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			opts, err := v.Options.options()
			if err != nil {
				t.Fatal(err)
			}
			ver := New(ts, rc, opts)
			for i, rd := range v.Reads {
				now, err := time.Parse(time.RFC3339, rd.At)
				if err != nil {
					t.Fatal(err)
				}
				r := ver.Verify([]byte(rd.Code), rd.Device, now)
				if r.Status != rd.Status || r.Reason != rd.Reason || r.DoubleRead != rd.DoubleRead || r.TrustStale != rd.TrustStale {
					t.Fatalf("read %d: got %s/%s double_read=%v trust_stale=%v, want %s/%s double_read=%v trust_stale=%v",
						i, r.Status, r.Reason, r.DoubleRead, r.TrustStale, rd.Status, rd.Reason, rd.DoubleRead, rd.TrustStale)
				}
				if rd.Result != nil && *fields(r) != *rd.Result {
					t.Fatalf("read %d: fields %+v, want %+v", i, *fields(r), *rd.Result)
				}
				if rd.Status == StatusValid && rd.Result == nil {
					t.Fatalf("read %d: a valid read without expected fields", i)
				}
				covered[rd.Status+"/"+rd.Reason] = true
			}
		})
	}
	// Every reason code, and valid, has at least one vector.
	for _, reason := range Reasons {
		if !covered[StatusInvalid+"/"+reason] {
			t.Errorf("no vector for reason %s", reason)
		}
	}
	if !covered[StatusValid+"/"] {
		t.Error("no valid vector")
	}
}

func loadVector(t testing.TB, path string) *Vector {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var v Vector
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if v.Name+".json" != filepath.Base(path) || len(v.Reads) == 0 || v.Trust == "" {
		t.Fatalf("%s: name %q, %d reads, trust %q", path, v.Name, len(v.Reads), v.Trust)
	}
	return &v
}

// generateVectors writes a fresh trust set and every vector, each with the result the
// verifier gives now — after checking it is the intended one, so that -update cannot
// silently bless a regression.
func generateVectors(t *testing.T) {
	tmp := t.TempDir()
	keys, err := issuer.GenerateKeys(tmp, issuer.GenerateOptions{Now: created})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(vectorsDir, "*.json"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	trustDir := filepath.Join(vectorsDir, "trust")
	if err := os.MkdirAll(trustDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{trust.AnchorFile, trust.KeySetFile, trust.RevocationsFile} {
		b, err := os.ReadFile(filepath.Join(tmp, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(trustDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := trust.LoadDir(trustDir, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}

	code := func(o issuer.CodeOptions) string {
		if o.At.IsZero() {
			o.At = at
		}
		c, err := keys.NewCode(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	type read struct {
		code   string
		device string
		at     time.Time
		want   string // "valid", "double_read" or a reason
	}
	type spec struct {
		name, desc string
		opts       *VectorOptions
		reads      []read
	}
	one := func(name, desc, c string, now time.Time, want string) spec {
		return spec{name: name, desc: desc, reads: []read{{c, "scanner-1", now, want}}}
	}
	var specs []spec
	seq := uint32(100)
	next := func() uint32 { seq++; return seq }

	specs = append(specs,
		one("valid", "a valid code verified when it was generated", code(issuer.CodeOptions{Sequence: next()}), at, "valid"),
		one("valid-extension-32", "the longest extension (32 bytes), reported as uppercase hex",
			code(issuer.CodeOptions{Sequence: next(), Extension: bytes.Repeat([]byte{0xa5, 0x0f}, 16)}), at, "valid"),
		one("valid-lowercase", "the whole text in lowercase, as a keyboard-wedge scanner with Caps Lock sends it",
			strings.ToLower(code(issuer.CodeOptions{Sequence: next()})), at, "valid"),
		one("valid-reserved-category", "holder category 0x07 (reserved): accepted and reported",
			code(issuer.CodeOptions{Sequence: next(), Category: 7}), at, "valid"),
		one("valid-validity-3600", "the longest code validity, verified 3600 s + 30 s skew after generation",
			code(issuer.CodeOptions{Sequence: next(), Validity: 3600}), at.Add(3630*time.Second), "valid"),
		one("valid-skew-early", "verified 30 s (the default skew) before its generated-at",
			code(issuer.CodeOptions{Sequence: next()}), at.Add(-30*time.Second), "valid"),
		one("valid-skew-late", "verified at generated-at + validity + skew exactly",
			code(issuer.CodeOptions{Sequence: next()}), at.Add(90*time.Second), "valid"),
		one("not-yet-valid-edge", "verified 31 s before its generated-at",
			code(issuer.CodeOptions{Sequence: next()}), at.Add(-31*time.Second), ReasonNotYetValid),
		one("code-expired-edge", "verified 1 s after generated-at + validity + skew",
			code(issuer.CodeOptions{Sequence: next()}), at.Add(91*time.Second), ReasonCodeExpired),
		one("malformed-prefix-only", `just "EHC1:"`, "EHC1:", at, ReasonMalformed),
		one("valid-trust-stale", "a valid code, the key set's next_update more than 7 days past: valid with trust_stale",
			code(issuer.CodeOptions{Sequence: next(), At: keys.NextUpdate.Add(8 * 24 * time.Hour)}), keys.NextUpdate.Add(8*24*time.Hour), "valid"),
	)
	for _, name := range issuer.DefectNames() {
		if name == "bad-prefix" {
			// Without the "EHC1:" prefix a payload is never classified ehc_offline, so
			// the agent reports it as unknown/unrecognised, not as a malformed code;
			// the verifier's answer for it is tested in verify_test.go.
			continue
		}
		d := issuer.Defects[name]
		specs = append(specs, one("defect-"+name, d.What, code(issuer.CodeOptions{Sequence: next(), Defect: name}), at, d.Reason))
	}
	noSkew := code(issuer.CodeOptions{Sequence: next()})
	specs = append(specs,
		spec{name: "skew-none", desc: "with skew 0 s, 1 s past generated-at + validity is expired",
			opts: &VectorOptions{Skew: "0s"}, reads: []read{{noSkew, "scanner-1", at.Add(61 * time.Second), ReasonCodeExpired}}},
		spec{name: "issuer-not-allowed", desc: "an issuer allow-list without the code's issuer",
			opts: &VectorOptions{IssuerAllow: []uint32{1234}}, reads: []read{{code(issuer.CodeOptions{Sequence: next()}), "scanner-1", at, ReasonIssuerNotAllowed}}},
		spec{name: "issuer-allowed", desc: "an issuer allow-list with the code's issuer",
			opts: &VectorOptions{IssuerAllow: []uint32{1234, keys.IssuerID}}, reads: []read{{code(issuer.CodeOptions{Sequence: next()}), "scanner-1", at, "valid"}}},
	)
	c1 := code(issuer.CodeOptions{Sequence: next()})
	specs = append(specs, spec{name: "replayed-other-device", desc: "the same code read by a second device",
		reads: []read{{c1, "scanner-1", at, "valid"}, {c1, "scanner-2", at, ReasonReplayed}}})
	c2 := code(issuer.CodeOptions{Sequence: next()})
	specs = append(specs, spec{name: "replayed-same-device-after-window", desc: "the same code, same device, 3 s later (the window is 3 s)",
		reads: []read{{c2, "scanner-1", at, "valid"}, {c2, "scanner-1", at.Add(3 * time.Second), ReasonReplayed}}})
	c3 := code(issuer.CodeOptions{Sequence: next()})
	specs = append(specs, spec{name: "double-read", desc: "the same code, same device, within the window: a double read (no event), then another device: replayed",
		reads: []read{{c3, "scanner-1", at, "valid"}, {c3, "scanner-1", at.Add(2 * time.Second), "double_read"}, {c3, "scanner-2", at.Add(2 * time.Second), ReasonReplayed}}})
	specs = append(specs, spec{name: "next-sequence", desc: "two codes of one holder, sequence n and n+1: both valid",
		reads: []read{{code(issuer.CodeOptions{Sequence: 1}), "scanner-1", at, "valid"}, {code(issuer.CodeOptions{Sequence: 2}), "scanner-1", at, "valid"}}})

	for _, s := range specs {
		v := Vector{Name: s.name, Description: s.desc, Trust: "trust", Options: s.opts}
		opts, err := s.opts.options()
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := replay.Open(nil, replay.Options{}, time.Time{})
		ver := New(ts, rc, opts)
		for _, rd := range s.reads {
			r := ver.Verify([]byte(rd.code), rd.device, rd.at)
			got := r.Reason
			switch {
			case r.DoubleRead:
				got = "double_read"
			case r.Status == StatusValid:
				got = "valid"
			}
			if got != rd.want {
				t.Fatalf("%s: the verifier says %s, the vector is meant to be %s", s.name, got, rd.want)
			}
			vr := VectorRead{Code: rd.code, Device: rd.device, At: rfc(rd.at), Status: r.Status,
				Reason: r.Reason, DoubleRead: r.DoubleRead, TrustStale: r.TrustStale}
			if r.Status == StatusValid {
				vr.Result = fields(r)
			}
			v.Reads = append(v.Reads, vr)
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vectorsDir, s.name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d vectors", len(specs))
}
