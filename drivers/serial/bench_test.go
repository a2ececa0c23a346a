package serial

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// timedSink stamps each scan the moment the driver hands it over.
type timedSink struct {
	connected chan struct{}
	at        chan time.Time
}

func (s *timedSink) Read(device.Read) { s.at <- time.Now() }
func (s *timedSink) Drop(device.Drop) {}
func (s *timedSink) State(st device.State) {
	if st.State == device.StateConnected {
		select {
		case s.connected <- struct{}{}:
		default:
		}
	}
}

// BenchmarkScanLatency: from the terminator written on the pty master to Read at the
// sink, per scan; p50 and p99 are reported. The payload is written and read by the
// driver first, so that the figure is the terminator's trip alone: kernel tty layer,
// wake-up of the blocked read, framer, sink. Run with -benchtime=1000x for the figure
// over 1,000 scans.
func BenchmarkScanLatency(b *testing.B) {
	vs := scanner(b, vscanner.Config{})
	d, err := New(Config{Name: "bench", Path: vs.Link(), Baud: 115200, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	sink := &timedSink{connected: make(chan struct{}, 1), at: make(chan time.Time, 1)}
	ctx := testCtx(b)
	go d.Run(ctx, sink)
	<-sink.connected

	lat := make([]time.Duration, 0, b.N)
	term := []byte{'\r'}
	for i := 0; b.Loop(); i++ {
		if err := vs.SendRaw(ctx, []byte("EHC1:"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
		if err := vs.WaitRead(ctx); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := vs.SendRaw(ctx, term); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-sink.at).Sub(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(0, "ns/op") // dominated by WaitRead's polling, meaningless
}

// BenchmarkIdleCPU: CPU time the whole test process uses over 10 s while the driver
// holds an open, silent port, as a percentage of one core. Run with -benchtime=1x.
func BenchmarkIdleCPU(b *testing.B) {
	for b.Loop() {
		pct := idleCPU(b, 10*time.Second)
		b.ReportMetric(pct, "cpu-%")
	}
}

// TestIdleCPU: an idle driver uses no CPU (blocking reads, no polling). Over 3 s the
// process may use under 2% of a core: a single stray 10 ms tick is 0.3%.
func TestIdleCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("3 s of idling")
	}
	pct := idleCPU(t, 3*time.Second)
	t.Logf("idle driver: %.2f%% of a core over 3s", pct)
	if pct >= 2 {
		t.Fatalf("idle driver used %.2f%% of a core", pct)
	}
}

// idleCPU connects a driver, lets one scan through (so the read timeout was armed and
// disarmed once), waits for the framer's stale timer to pass, then measures.
func idleCPU(tb testing.TB, window time.Duration) float64 {
	vs := scanner(tb, vscanner.Config{})
	_, rec := start(tb, Config{Path: vs.Link()})
	rec.waitState(tb, device.StateConnected)
	vs.Send(testCtx(tb), []byte("WARM-UP"))
	rec.expectRead(tb, "WARM-UP", "")
	time.Sleep(600 * time.Millisecond) // past the 500 ms stale gap: back to blocking reads

	before, t0 := procCPU(tb), time.Now()
	time.Sleep(window)
	used, wall := procCPU(tb)-before, time.Since(t0)
	return 100 * used.Seconds() / wall.Seconds()
}

// procCPU is user+system time of this process from /proc/self/stat (fields 14 and 15,
// in clock ticks of 1/100 s on Linux).
func procCPU(tb testing.TB) time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		tb.Skip("no /proc/self/stat:", err)
	}
	// The command name (field 2) may contain spaces: count fields after its ')'.
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	var utime, stime int64
	if _, err := fmt.Sscan(string(f[11])+" "+string(f[12]), &utime, &stime); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
