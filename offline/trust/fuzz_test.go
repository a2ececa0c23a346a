package trust

import (
	"testing"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// A fixed anchor, so that seeds stay valid envelopes across runs and in a saved corpus.
const fuzzAnchorD = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"

func fuzzFixture(f *testing.F) *fixture {
	anchor, err := sm2sig.ParsePrivateKey([]byte(fuzzAnchorD))
	if err != nil {
		f.Fatal(err)
	}
	fx := newFixture(f)
	fx.anchor, fx.anchorPub = anchor, sm2sig.Public(anchor)
	return fx
}

// FuzzApply feeds arbitrary envelopes to both Apply methods: they never panic, an
// accepted one verifies with the anchor, and a refused one leaves the store as it was.
func FuzzApply(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(fx.seal(f, fx.keySet(7, "2026-11-02T00:00:00Z")))
	f.Add(fx.seal(f, revDoc(12, []string{"E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1"}, nil)))
	f.Add(fx.seal(f, `{"version": 1, "issued_at": "2026-11-01T00:00:00Z", "next_update": "2026-11-02T00:00:00Z", "roots": []}`))
	f.Add([]byte(`{"payload": "", "signature": ""}`))
	f.Add([]byte(`{"payload": "e30=", "signature": "AAAA"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, env []byte) {
		s, err := Open(nil, fx.anchorPub, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, apply := range []func([]byte) error{s.ApplyKeySet, s.ApplyRevocations} {
			before := s.Snapshot()
			err := apply(env)
			if err != nil {
				if Reason(err) == "" {
					t.Fatalf("error without a reason: %v", err)
				}
				if s.Snapshot() != before {
					t.Fatal("refused envelope changed the store")
				}
				continue
			}
			if _, err := OpenEnvelope("fuzz", env, fx.anchorPub); err != nil {
				t.Fatalf("accepted an envelope that does not verify: %v", err)
			}
			// Applying it again is a no-op.
			after := s.Snapshot()
			if err := apply(env); err != nil || s.Snapshot() != after {
				t.Fatalf("re-apply: %v", err)
			}
		}
	})
}

// FuzzPayload reaches the payload parsers directly, which FuzzApply cannot do past
// the signature check.
func FuzzPayload(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add([]byte(fx.keySet(7, "2026-11-02T00:00:00Z")))
	f.Add([]byte(revDoc(12, []string{"E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1E1D1"}, []string{"00"})))
	f.Add([]byte(`{"version": 18446744073709551615, "issued_at": "2026-11-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if ks, err := parseKeySet(payload); err == nil {
			for i, r := range ks.roots {
				if r == nil {
					continue
				}
				if int(r.Index) != i || r.Key == nil || r.NotAfter.Before(r.NotBefore) {
					t.Fatalf("root %d: %+v", i, r)
				}
			}
		} else if Reason(err) != ReasonBadPayload {
			t.Fatalf("key set: %v", err)
		}
		if rv, err := parseRevocations(payload); err == nil {
			if rv.issuers == nil || rv.ehcIDs == nil || rv.holders == nil {
				t.Fatal("nil set")
			}
		} else if Reason(err) != ReasonBadPayload {
			t.Fatalf("revocations: %v", err)
		}
	})
}
