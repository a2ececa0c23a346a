//go:build linux

package main

// The card path of issue 10 (BENCHMARKS.md, "Card path"): the real agent process (built
// without -race) with a pcsc device on a private pcscd, a virtual resident health card
// inserted over vpcd, the event read off the local API WebSocket as a kiosk would.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/vcard"
	"github.com/ehc-agent/ehc-agent/drivers/vcard/pcscdtest"
)

var (
	benchBinOnce sync.Once
	benchBin     string
	benchBinErr  error
)

// agentBenchBin builds the agent without the race detector (TestMain's agentBin has it,
// which would slow the agent several times over), once per test binary.
func agentBenchBin(b *testing.B) string {
	b.Helper()
	benchBinOnce.Do(func() {
		benchBin = filepath.Join(filepath.Dir(agentBin), "ehc-agent-bench")
		out, err := exec.Command("go", "build", "-o", benchBin, ".").CombinedOutput()
		if err != nil {
			benchBinErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if benchBinErr != nil {
		b.Fatal(benchBinErr)
	}
	return benchBin
}

// BenchmarkCardToEvent inserts a resident health card (with the PSAM in the second
// reader, so the read is complete) once per op and times, per insertion:
//
//	total     card connected to vpcd -> event on the WebSocket
//	detect    card connected -> first C-APDU: pcscd's detection (vpcd is polled about
//	          every 0.4 s), the driver's wake-up and the card connect
//	apdu      first C-APDU -> answer to the last: the exchange of the read
//	agent     answer to the last C-APDU -> event on the WebSocket: the agent's own part
//	          (end of the read, event, journal commit with fsync, local API)
//
// Each is reported as p50 and p99 in ms, with the agent's CPU time per read and its
// peak RSS. Run it with a fixed count, say -benchtime 20x: one op lasts about half a
// second, most of it pcscd's polling.
func BenchmarkCardToEvent(b *testing.B) {
	bin := agentBenchBin(b)
	d := pcscdtest.Start(b)
	dir := b.TempDir()
	keys := simKeys(b, bin, dir)
	pin := filepath.Join(dir, "psam.pin")
	if err := os.WriteFile(pin, []byte("123456\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "agent.yaml")
	conf := fmt.Sprintf("terminal_id: BENCH-CARD\nstate_dir: %s\nconsole: false\nlog: {level: info, format: json}\n"+
		"trust: {dir: %s}\napi: {listen: \"127.0.0.1:0\"}\ndevices:\n"+
		"  - {name: desk-reader, driver: pcsc, pcsc: {reader: %q, psam_reader: %q, psam_pin_file: %s}}\n",
		state, keys, d.Readers[0], d.Readers[1], pin)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}

	ctx := context.Background()
	psam, err := vcard.New(&vcard.Profile{Kind: vcard.KindPSAM})
	if err != nil {
		b.Fatal(err)
	}
	in, err := vcard.Insert(ctx, d.Addr(1), psam)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Remove()
	d.WaitCard(1, true)

	a, err := startBenchAgent(bin, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer a.kill()
	deadline := time.Now().Add(30 * time.Second)
	for !a.serving(state, []string{"desk-reader"}) {
		if time.Now().After(deadline) {
			b.Fatalf("agent not serving with its reader connected within 30 s:\n%s", a.output())
		}
		if err := a.exited(); err != nil {
			b.Fatalf("agent exited: %v\n%s", err, a.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	client, err := dialBench(ctx, a.addr, a.token)
	if err != nil {
		b.Fatal(err)
	}
	defer client.close()

	rhc, err := vcard.New(&vcard.Profile{Kind: vcard.KindRHC, Holder: vcard.Holder{Name: "欧阳娜娜", IDNumber: "440106199005120025"}})
	if err != nil {
		b.Fatal(err)
	}
	var total, detect, exchange, agent []time.Duration
	w := a.window()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		card, err := vcard.Insert(ctx, d.Addr(0), rhc)
		if err != nil {
			b.Fatal(err)
		}
		// Card events carry no code sequence: the benchmark client files them under 0.
		ev, err := client.await(ctx, 0, 10*time.Second)
		if err != nil {
			b.Fatalf("insertion %d: %v\nagent:\n%s", i, err, a.output())
		}
		if ev.status != "valid" {
			b.Fatalf("insertion %d: event %s (%s), want valid", i, ev.status, ev.reason)
		}
		first, last := card.FirstCommand(), card.LastAnswer()
		if first.IsZero() || last.Before(first) || ev.at.Before(last) {
			b.Fatalf("insertion %d: first C-APDU %v, last answer %v, event %v", i, first, last, ev.at)
		}
		total = append(total, ev.at.Sub(t0))
		detect = append(detect, first.Sub(t0))
		exchange = append(exchange, last.Sub(first))
		agent = append(agent, ev.at.Sub(last))
		b.StopTimer()
		card.Remove()
		d.WaitCard(0, false)
		b.StartTimer()
	}
	b.StopTimer()
	proc := w.end()
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"total", total}, {"detect", detect}, {"apdu", exchange}, {"agent", agent}} {
		dist := distOf(m.d)
		b.ReportMetric(dist.P50, m.name+"-p50-ms")
		b.ReportMetric(dist.P99, m.name+"-p99-ms")
	}
	b.ReportMetric(proc.cpuMs/float64(b.N), "agent-cpu-ms/read")
	b.ReportMetric(a.peakRSS(), "agent-peak-rss-MiB")
	b.ReportMetric(0, "ns/op") // wall time per op is mostly pcscd's polling; see total
}
