//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// `sim bench` run very briefly against the agent binary built for these tests: every
// figure is there and sane. Nothing here is timed against a goal (that is make bench's
// job, BENCHMARKS.md): the bounds only catch a harness that measures nothing or garbage.
func TestSimBenchBrief(t *testing.T) {
	o := simBenchOpts{
		agent: agentBin, bauds: []int{9600, 115200}, minScans: 3, interval: 5 * time.Millisecond,
		idle: 500 * time.Millisecond, rampRates: []int{20, 50}, rampStep: 500 * time.Millisecond,
		starts: 2, extension: 8, commits: 10,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	res, err := runSimBench(ctx, o, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	sane := func(what string, v, lo, hi float64) {
		t.Helper()
		if math.IsNaN(v) || v < lo || v > hi {
			t.Errorf("%s = %v, want within [%v, %v]", what, v, lo, hi)
		}
	}
	dist := func(what string, d benchDist, n int) {
		t.Helper()
		if d.N != n {
			t.Errorf("%s: %d samples, want %d", what, d.N, n)
		}
		sane(what+" min", d.Min, 1e-3, 10e3)
		if !(d.Min <= d.P50 && d.P50 <= d.P90 && d.P90 <= d.P99 && d.P99 <= d.Max) {
			t.Errorf("%s: quantiles out of order: %+v", what, d)
		}
	}

	if len(res.Starts) != 2 || !res.Starts[0].Cold || res.Starts[1].Cold || len(res.ExecFloor) != 2 {
		t.Fatalf("starts %+v, exec floor %v", res.Starts, res.ExecFloor)
	}
	for _, s := range res.Starts {
		sane("serving ms", s.ServingMs, 1, 60e3)
		sane("ready logged ms", s.ReadyLogMs, 1, s.ServingMs)
		sane("start-up CPU ms", s.CPUMs, 0.1, 60e3)
	}
	sane("idle CPU %", res.Idle.CPUPercent, 0, 100)
	sane("idle RSS MiB", res.Idle.RSSMiB, 1, 1024)
	sane("peak RSS MiB", res.PeakRSSMiB, res.Idle.RSSMiB, 1024)
	// The split adds up to RSS (the kernel's counters; shared memory is the rest).
	sane("idle anonymous MiB", res.Idle.AnonMiB, 0.1, res.Idle.RSSMiB)
	sane("idle file MiB", res.Idle.FileMiB, 0.1, res.Idle.RSSMiB)
	sane("idle anonymous + file MiB", res.Idle.AnonMiB+res.Idle.FileMiB, 0.9*res.Idle.RSSMiB, res.Idle.RSSMiB+1e-9)
	if res.Devices != 3 || res.Idle.Threads < 1 {
		t.Errorf("devices %d, idle threads %d", res.Devices, res.Idle.Threads)
	}

	if len(res.Bauds) != 2 {
		t.Fatalf("bauds %+v", res.Bauds)
	}
	for _, b := range res.Bauds {
		if b.ScanBytes != 500 {
			t.Errorf("%d baud: %d-byte scans, want 500 (an 8-byte extension)", b.Baud, b.ScanBytes)
		}
		sane("wire ms", b.WireMs, 500*10e3/float64(b.Baud)-1e-9, 500*10e3/float64(b.Baud)+1e-9)
		dist("latency", b.Latency, 3)
		dist("scan to event", b.ScanToEvent, 3)
		// Scan-to-event includes the wire time, paced by the virtual scanner.
		sane("scan-to-event p50 ms", b.ScanToEvent.P50, 0.9*b.WireMs, 10e3)
		sane("agent's own mean ms", b.AgentMeanMs, 1e-3, 10e3)
		// Its parts: each scan was verified and committed, and neither took longer
		// than the whole the agent measured (means over the same events).
		sane("agent's verify mean ms", b.AgentVerifyMs, 1e-3, b.AgentMeanMs)
		sane("agent's commit mean ms", b.AgentCommitMs, 1e-3, b.AgentMeanMs)
		sane("CPU per scan ms", b.Proc.CPUPerScan, 1e-3, 10e3)
	}

	if len(res.Ramp) == 0 || res.StopReason == "" {
		t.Fatalf("ramp %+v, stop reason %q", res.Ramp, res.StopReason)
	}
	for _, s := range res.Ramp {
		dist("ramp latency", s.Latency, 50-s.Missing)
		sane("achieved scans/s", s.Achieved, 1, 1e6)
	}
	if res.Ramp[0].Missing != 0 {
		t.Errorf("events missing at %d/s", res.Ramp[0].Offered)
	}
	dist("journal commit", res.Journal, 10)
	dist("journal commit, paced", res.JournalPaced, 10)
	dist("durable write, paced", res.WritePaced, 10)
	if res.PaceMs <= 0 {
		t.Errorf("pace %v ms", res.PaceMs)
	}

	var md bytes.Buffer
	res.writeMarkdown(&md)
	for _, want := range []string{"| serial pty 9600 baud, 500-byte EHC1 scan |", "| serial pty 115200 baud", "| ramp: offered scans/s", "| cold (empty state_dir) |", "| goal | figure | met |", "| ready in < 200 ms |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}

func TestSimBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--bauds", "9600,x"},
		{"--ramp-rates", "0"},
		{"--starts", "0"},
		{"--extension", "33"},
	} {
		cmd := newSimBenchCmd()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
