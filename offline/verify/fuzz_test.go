package verify

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// FuzzVerify feeds arbitrary text to Verify, seeded with every conformance vector's
// codes: it never panics, always answers valid or invalid with a listed reason, and
// a valid answer carries its identity.
func FuzzVerify(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(vectorsDir, "*.json"))
	for _, p := range paths {
		for _, r := range loadVector(f, p).Reads {
			f.Add([]byte(r.Code), r.At)
		}
	}
	f.Add([]byte("EHC1:"), "2026-11-01T08:00:00Z")
	f.Add([]byte("ehc1:0000"), "2026-11-01T08:00:00Z")
	ts, err := trust.LoadDir(filepath.Join(vectorsDir, "trust"), trust.Options{})
	if err != nil {
		f.Fatal(err)
	}
	rc, err := replay.Open(nil, replay.Options{}, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	v := New(ts, rc, Options{})
	f.Fuzz(func(t *testing.T, text []byte, when string) {
		now, err := time.Parse(time.RFC3339, when)
		if err != nil {
			now = at
		}
		r := v.Verify(text, "fuzz", now)
		switch r.Status {
		case StatusValid:
			if r.Reason != "" || len(r.EHCID) != 64 || r.GeneratedAt.IsZero() {
				t.Fatalf("valid result %+v", r)
			}
		case StatusInvalid:
			if !slices.Contains(Reasons, r.Reason) {
				t.Fatalf("reason %q not listed", r.Reason)
			}
		default:
			t.Fatalf("status %q", r.Status)
		}
	})
}
