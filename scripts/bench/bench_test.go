package bench

import (
	"crypto/rand"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/verify"
)

var env *Env

func getEnv(tb testing.TB) *Env {
	tb.Helper()
	if env == nil {
		e, err := NewEnv(tb.TempDir(), 256)
		if err != nil {
			tb.Fatal(err)
		}
		env = e
	}
	return env
}

// The tjfoc verifier is a fair stand-in only if it does the same checks: it must give
// the agent's verdict for a valid code and for every defect the issuer can make.
func TestTjfocVerifierAgreesWithOurs(t *testing.T) {
	e := getEnv(t)
	ours := verify.New(e.Store, nil, verify.Options{})
	for _, cache := range []bool{false, true} {
		tj := NewTjfocVerifier(e.Store, cache)
		for _, d := range append([]string{""}, issuer.DefectNames()...) {
			for seq := uint32(0); seq < 8; seq++ { // several codes: both parities of y, cache hits
				code, err := e.Keys.NewCode(issuer.CodeOptions{At: e.At, Defect: d, Sequence: 1000 + seq})
				if err != nil {
					t.Fatal(err)
				}
				want := ours.Verify([]byte(code), "t", e.At)
				got, id := tj.Verify([]byte(code), e.At)
				if got != want.Reason || id != want.EHCID && got == "" {
					t.Fatalf("cache %v, defect %q: tjfoc says %q %q, ours %q %q", cache, d, got, id, want.Reason, want.EHCID)
				}
			}
		}
	}
}

// Keys of both parities of y decompress to the right point through tjfoc.
func TestTjDecompressBothParities(t *testing.T) {
	seen := map[byte]int{}
	for range 32 {
		priv, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		comp := sm2sig.Public(priv).Compressed()
		k := tjDecompress(&comp)
		if k == nil || k.X.Cmp(priv.X) != 0 || k.Y.Cmp(priv.Y) != 0 {
			t.Fatalf("prefix %02x: decompressed to the wrong point", comp[0])
		}
		seen[comp[0]]++
	}
	if seen[2] == 0 || seen[3] == 0 {
		t.Fatalf("parities seen: %v", seen)
	}
}

func TestOpsVerify(t *testing.T) {
	e := getEnv(t)
	for _, op := range e.Ops() {
		for range 3 {
			if err := op.Once(); err != nil {
				t.Fatalf("%s: %v", op.Name, err)
			}
		}
	}
}

// BenchmarkSideBySide: every Op, as sub-benchmarks (sm2/*, ehc1/*).
func BenchmarkSideBySide(b *testing.B) {
	e := getEnv(b)
	for _, op := range e.Ops() {
		b.Run(op.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := op.Once(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
