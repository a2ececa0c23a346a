package verify

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/replay"
	"go.etcd.io/bbolt"
)

// BenchmarkVerifyValid measures the common case: a valid code whose issuer certificate
// is already cached, accepted into a replay cache kept in a real bbolt file (write-
// behind, so the fsyncs happen in the flusher, whose allocations count here too). Each
// code is verified once; when the pool of distinct codes runs out, a fresh replay cache
// takes over, off the clock. Targets: ≤ 250 µs/op, ≤ 40 allocs/op.
func BenchmarkVerifyValid(b *testing.B) {
	e := newEnv(b)
	const pool = 2048
	codes := make([][]byte, pool)
	for i := range codes {
		codes[i] = e.code(b, issuer.CodeOptions{Sequence: uint32(i)})
	}
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "replay.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// A new cache over the same file, opened "later" so that it drops every entry of
	// the previous round: the file keeps its size, as a long-running agent's does.
	reopen := func(prev *replay.Cache) *replay.Cache {
		if prev != nil {
			if err := prev.Close(); err != nil {
				b.Fatal(err)
			}
		}
		rc, err := replay.Open(db, replay.Options{}, at.Add(24*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		return rc
	}
	// Warm-up round, off the clock: every code once, flushed, then dropped by a reopen.
	// It caches the certificate and grows the file to the size a long-running agent's
	// has, so that the timed rounds do not remap a growing file (bbolt then copies every
	// key of the nodes in hand), which happens at start-up only.
	rc := reopen(nil)
	v := New(e.ts, rc, Options{})
	for _, c := range codes {
		if r := v.Verify(c, "warm-up", at); r.Status != StatusValid {
			b.Fatal(r)
		}
	}
	if err := rc.Flush(); err != nil {
		b.Fatal(err)
	}
	rc = reopen(rc)
	v.rc = rc
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if i == pool {
			b.StopTimer()
			rc = reopen(rc)
			v.rc = rc
			i = 0
			b.StartTimer()
		}
		if r := v.Verify(codes[i], "scanner-1", at); r.Status != StatusValid || r.DoubleRead {
			b.Fatalf("code %d: %+v", i, r)
		}
		i++
	}
	b.StopTimer()
	rc.Close()
}

// TestVerifyAllocs guards the allocations of one verification with a memory-only replay
// cache, so that no background flusher blurs the count. Issue 3's limit for
// BenchmarkVerifyValid is 40, flusher included; a verification itself makes 24 (22 of
// them inside gmsm's SM2 verification and point decompression), and the guard is 28 so
// that a regression shows long before the limit.
func TestVerifyAllocs(t *testing.T) {
	e := newEnv(t)
	codes := make([][]byte, 60)
	for i := range codes {
		codes[i] = e.code(t, issuer.CodeOptions{Sequence: uint32(i)})
	}
	rc, err := replay.Open(nil, replay.Options{}, at)
	if err != nil {
		t.Fatal(err)
	}
	v := New(e.ts, rc, Options{})
	v.Verify(codes[0], "warm-up", at) // caches the certificate
	i := 1
	allocs := testing.AllocsPerRun(50, func() {
		if r := v.Verify(codes[i], "scanner-1", at); r.Status != StatusValid {
			t.Fatalf("code %d: %+v", i, r)
		}
		i++
	})
	if allocs > 28 {
		t.Fatalf("%.0f allocations per verification, budget 28", allocs)
	}
	t.Logf("%.0f allocations per verification", allocs)
}
