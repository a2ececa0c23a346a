package uplink_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkDurableAppend measures Append with its fsync: what the pipeline pays per
// event before the kiosk hears of it.
func BenchmarkDurableAppend(b *testing.B) {
	e := newEnv(b, envOptions{})
	ev := newEvent(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ev.Seq = 0
		if err := e.ob.Append(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
}

// BenchmarkDrain measures delivery of a full queue to the emulator over loopback: 5,000
// queued events, batches of 100, each answered after the platform's fsync and
// recorded by the outbox's own commit. Goal: ≥ 2,000 events/s.
func BenchmarkDrain(b *testing.B) {
	const n = 5000
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b, envOptions{})
		e.db.NoSync = true // filling is the fixture, not what is measured
		for j := 0; j < n; j++ {
			if err := e.ob.Append(newEvent(b)); err != nil {
				b.Fatal(err)
			}
		}
		e.db.NoSync = false
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		wg.Add(1)
		go func() { defer wg.Done(); e.up.RunDelivery(ctx) }()
		for len(e.sim.Events()) < n {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		cancel()
		wg.Wait()
		e.sim.Close()
		e.db.Close()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
}
