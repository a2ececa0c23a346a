// Command sidebyside prints SM2 and EHC1 verification figures of the agent next to
// tjfoc/gmsm and Debian's OpenSSL 3, with the ratios the goals of issue 10 are held
// against (BENCHMARKS.md):
//
//   - full EHC1 verification at least 10× faster than the same checks with tjfoc/gmsm;
//   - full EHC1 verification within 3× of a single SM2 verification.
//
// Each Go figure is the min and median ns/op of -runs runs of testing.Benchmark. With
// -callgrind, each operation is also counted in instructions under valgrind (a figure a
// loaded machine does not change), and so is OpenSSL's EVP_DigestVerifyFinal.
//
//	go build -o sidebyside ./cmd/sidebyside && ./sidebyside [-runs 5] [-benchtime 1s] [-openssl=true] [-callgrind] [-json FILE]
//
// (-callgrind needs the binary's symbol table, which go run leaves out: build it.)
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/scripts/bench"
)

// Figure is one measured operation.
type Figure struct {
	Name     string    `json:"name"`
	What     string    `json:"what"`
	Sigs     int       `json:"sigs,omitempty"`
	MinNs    float64   `json:"min_ns"` // wall time per operation
	MedianNs float64   `json:"median_ns"`
	RunsNs   []float64 `json:"runs_ns"`
	// CPU time per operation (getrusage of this process; OpenSSL's speed reports CPU
	// time too): waiting for a CPU on a loaded machine is not in it.
	CPUMinNs    float64   `json:"cpu_min_ns,omitempty"`
	CPUMedianNs float64   `json:"cpu_median_ns,omitempty"`
	CPURunsNs   []float64 `json:"cpu_runs_ns,omitempty"`
	Allocs      int64     `json:"allocs_per_op,omitempty"`
	Instr       float64   `json:"instructions_per_op,omitempty"` // callgrind Ir
}

type report struct {
	When    time.Time `json:"when"`
	Machine string    `json:"machine"`
	Load    string    `json:"loadavg_before"`
	Figures []*Figure `json:"figures"`
	Ratios  []Ratio   `json:"ratios"`
}

// Ratio is a/b of two figures: of their min CPU times, of their median wall times, and
// of their instruction counts. A goal is judged on the instructions when counted (a
// loaded machine does not move them), else on the min CPU times.
type Ratio struct {
	What   string  `json:"what"`
	CPU    float64 `json:"min_cpu_time_ratio"`
	Median float64 `json:"median_wall_time_ratio"`
	Instr  float64 `json:"instruction_ratio,omitempty"`
	Goal   string  `json:"goal,omitempty"`
	Met    *bool   `json:"met,omitempty"`
	Reason string  `json:"reason,omitempty"`
}

func main() {
	var (
		runs      = flag.Int("runs", 5, "runs of each benchmark (min and median are reported)")
		benchtime = flag.Duration("benchtime", time.Second, "time of each run")
		openssl   = flag.Bool("openssl", true, "measure Debian's openssl (speed sm2, and a pkeyutl -verify loop)")
		callgrind = flag.Bool("callgrind", false, "count instructions per operation under valgrind --tool=callgrind")
		jsonOut   = flag.String("json", "", "also write the figures as JSON to this file")
		count     = flag.String("count", "", "internal: run operation NAME -n times (for callgrind) and exit")
		n         = flag.Int("n", 0, "internal: with -count")
	)
	testing.Init()
	flag.Parse()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		fatal(err)
	}
	dir, err := os.MkdirTemp("", "ehc-sidebyside")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	env, err := bench.NewEnv(dir, 512)
	if err != nil {
		fatal(err)
	}
	if *count != "" {
		os.Exit(countMode(env, *count, *n))
	}

	rep := &report{When: time.Now().UTC(), Machine: machine(), Load: loadavg()}
	byName := map[string]*Figure{}
	for _, op := range env.Ops() {
		f := &Figure{Name: op.Name, What: op.What, Sigs: op.Sigs}
		for range *runs {
			// testing.Benchmark calls the function for growing N; the last call is the
			// one it reports, and so is its CPU time.
			var cpuNs int64
			r := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				c0 := cpuNow()
				for b.Loop() {
					if err := op.Once(); err != nil {
						b.Fatal(err)
					}
				}
				cpuNs = cpuNow() - c0
			})
			if r.N == 0 {
				fatal(fmt.Errorf("%s: benchmark failed", op.Name))
			}
			f.CPURunsNs = append(f.CPURunsNs, float64(cpuNs)/float64(r.N))
			f.RunsNs = append(f.RunsNs, float64(r.T.Nanoseconds())/float64(r.N))
			f.Allocs = r.AllocsPerOp()
		}
		f.MinNs, f.MedianNs = minMedian(f.RunsNs)
		f.CPUMinNs, f.CPUMedianNs = minMedian(f.CPURunsNs)
		if *callgrind {
			if f.Instr, err = countInstructions(op.Name); err != nil {
				fmt.Fprintf(os.Stderr, "callgrind %s: %v\n", op.Name, err)
			}
		}
		rep.Figures = append(rep.Figures, f)
		byName[op.Name] = f
		fmt.Fprintf(os.Stderr, "%-22s wall min %10.1f µs  median %10.1f µs; CPU min %10.1f µs\n", op.Name, f.MinNs/1e3, f.MedianNs/1e3, f.CPUMinNs/1e3)
	}
	if *openssl {
		for _, f := range opensslFigures(env, dir, *runs, *callgrind) {
			rep.Figures = append(rep.Figures, f)
			byName[f.Name] = f
			fmt.Fprintf(os.Stderr, "%-22s wall min %10.1f µs  median %10.1f µs; CPU min %10.1f µs\n", f.Name, f.MinNs/1e3, f.MedianNs/1e3, f.CPUMinNs/1e3)
		}
	}

	ratio := func(what, a, b, goal string, test func(float64) bool) {
		fa, fb := byName[a], byName[b]
		if fa == nil || fb == nil {
			return
		}
		r := Ratio{What: what, Goal: goal}
		if fa.MedianNs > 0 && fb.MedianNs > 0 {
			r.Median = fa.MedianNs / fb.MedianNs
		}
		if fa.CPUMinNs > 0 && fb.CPUMinNs > 0 {
			r.CPU = fa.CPUMinNs / fb.CPUMinNs
		}
		if fa.Instr > 0 && fb.Instr > 0 {
			r.Instr = fa.Instr / fb.Instr
		}
		if test != nil {
			met := test(r.CPU)
			if r.Instr > 0 {
				met = test(r.Instr)
			}
			r.Met = &met
		}
		rep.Ratios = append(rep.Ratios, r)
	}
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	ratio("SM2 verify: tjfoc/gmsm ÷ emmansun/gmsm (plain library calls)", "sm2/tjfoc", "sm2/emmansun", "", nil)
	ratio("SM2 verify: tjfoc/gmsm ÷ ours (sm2sig)", "sm2/tjfoc", "sm2/ours", "", nil)
	ratio("SM2 verify: OpenSSL 3 speed ÷ ours (sm2sig)", "sm2/openssl-speed", "sm2/ours", "", nil)
	ratio("SM2 verify: openssl pkeyutl process ÷ ours (sm2sig)", "sm2/openssl-pkeyutl", "sm2/ours", "", nil)
	ratio("EHC1 full, cert cached: tjfoc ÷ ours", "ehc1/tjfoc", "ehc1/ours", "≥ 10×", atLeast(10))
	ratio("EHC1 full, 3 signatures: tjfoc ÷ ours", "ehc1/tjfoc-nocache", "ehc1/ours-nocache", "≥ 10×", atLeast(10))
	ratio("EHC1 full (cert cached) ÷ one SM2 verify (ours)", "ehc1/ours", "sm2/ours", "≤ 3×", atMost(3))
	ratio("EHC1 full (3 signatures) ÷ one SM2 verify (ours)", "ehc1/ours-nocache", "sm2/ours", "", nil)
	ratio("EHC1 full (cert cached) ÷ one SM2 verify (OpenSSL 3 speed)", "ehc1/ours", "sm2/openssl-speed", "", nil)

	printMarkdown(rep)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fatal(err)
		}
	}
	for _, r := range rep.Ratios {
		if r.Met != nil && !*r.Met {
			fmt.Fprintf(os.Stderr, "goal missed: %s: CPU %.2f×, instructions %.2f× (goal %s)\n", r.What, r.CPU, r.Instr, r.Goal)
		}
	}
}

// cpuNow is this process's user and system CPU time, in ns.
func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "sidebyside:", err)
	os.Exit(1)
}

func minMedian(v []float64) (float64, float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[0], m
}

// countMode runs one operation n times inside measured, the function callgrind is told
// to count (--toggle-collect), with the collector off so that no GC work lands in it.
func countMode(env *bench.Env, name string, n int) int {
	for _, op := range env.Ops() {
		if op.Name == name {
			op.Once() // warm: the certificate cache, lazy tables
			debug.SetGCPercent(-1)
			runtime.GC()
			if err := measured(op.Once, n); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "no operation %q\n", name)
	return 2
}

//go:noinline
func measured(once func() error, n int) error {
	for range n {
		if err := once(); err != nil {
			return err
		}
	}
	return nil
}

var collected = regexp.MustCompile(`Collected : (\d+)`)

// countInstructions runs this program under callgrind with -count name, for a few and
// for more operations, and returns the instructions of one operation (the difference
// over the difference: what happens once around the loop cancels out).
func countInstructions(name string) (float64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	n1, n2 := 2, 12
	if strings.Contains(name, "tjfoc") {
		n1, n2 = 1, 4 // tjfoc is ~50× slower under valgrind too
	}
	ir := func(n int) (float64, error) {
		return callgrindIr([]string{"main.measured"}, self, "-count", name, "-n", strconv.Itoa(n))
	}
	a, err := ir(n1)
	if err != nil {
		return 0, err
	}
	b, err := ir(n2)
	if err != nil {
		return 0, err
	}
	return (b - a) / float64(n2-n1), nil
}

// callgrindIr runs prog under callgrind, counting instructions only inside the
// functions toggles name, and returns the count.
func callgrindIr(toggles []string, prog string, args ...string) (float64, error) {
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		return 0, err
	}
	vargs := []string{"--tool=callgrind", "--callgrind-out-file=/dev/null"}
	for _, t := range toggles {
		vargs = append(vargs, "--toggle-collect="+t)
	}
	cmd := exec.Command(vg, append(append(vargs, prog), args...)...)
	// Valgrind 3.19 knows no RDTSCP, which the Go runtime uses when the CPU has it, and
	// its signal handling trips over Go's preemption signals: both off.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 5))
	}
	m := collected.FindStringSubmatch(stderr.String())
	if m == nil {
		return 0, errors.New("no \"Collected\" line from callgrind")
	}
	ir, err := strconv.ParseFloat(m[1], 64)
	if err == nil && ir == 0 {
		// The toggle function was never entered under that name: a binary without
		// its symbol table (go run strips it; build with go build).
		err = fmt.Errorf("no instructions counted in %v: does %s have its symbols?", toggles, prog)
	}
	return ir, err
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

var speedLine = regexp.MustCompile(`(?m)^\+F\d+:\d+:256:CurveSM2:([0-9.]+):([0-9.]+)$`)

// opensslFigures measures Debian's openssl: `openssl speed sm2` (sign and verify in
// the library, the figure OpenSSL itself quotes), and `openssl pkeyutl -verify` of the
// same holder signature as the Go figures, one process per verification (what a
// script or a program shelling out to openssl gets).
func opensslFigures(env *bench.Env, dir string, runs int, callgrind bool) []*Figure {
	ossl, err := exec.LookPath("openssl")
	if err != nil {
		fmt.Fprintln(os.Stderr, "openssl not found: no OpenSSL figures")
		return nil
	}
	var out []*Figure
	speed := &Figure{Name: "sm2/openssl-speed", Sigs: 1, What: "OpenSSL 3 `openssl speed -seconds 2 sm2` verify/s, in CPU time as speed counts it (library, no process start)"}
	for range runs {
		b, err := exec.Command(ossl, "speed", "-mr", "-seconds", "2", "sm2").CombinedOutput()
		m := speedLine.FindSubmatch(b)
		if err != nil || m == nil {
			fmt.Fprintf(os.Stderr, "openssl speed sm2: %v\n%s\n", err, lastLines(string(b), 5))
			speed = nil
			break
		}
		perSec, _ := strconv.ParseFloat(string(m[2]), 64)
		speed.CPURunsNs = append(speed.CPURunsNs, 1e9/perSec)
	}
	pub, msg, sig, err := env.SignOpenSSLInputs(dir)
	if err != nil {
		fatal(err)
	}
	verifyArgs := []string{"pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
		"-pkeyopt", "distid:1234567812345678", "-in", msg, "-sigfile", sig}
	if speed != nil {
		speed.CPUMinNs, speed.CPUMedianNs = minMedian(speed.CPURunsNs)
		if callgrind {
			// One verification in the library: the SM3 of Z ‖ msg (EVP_DigestVerifyUpdate)
			// and the curve work (EVP_DigestVerifyFinal). Process start and key parsing
			// are outside them.
			if ir, err := callgrindIr([]string{"EVP_DigestVerifyUpdate", "EVP_DigestVerifyFinal"}, ossl, verifyArgs...); err == nil {
				speed.Instr = ir
			} else {
				fmt.Fprintf(os.Stderr, "callgrind openssl: %v\n", err)
			}
		}
		out = append(out, speed)
	}

	const calls = 40
	loop := &Figure{Name: "sm2/openssl-pkeyutl", Sigs: 1,
		What: fmt.Sprintf("`openssl pkeyutl -verify -rawin -digest sm3`, one process per verification (%d calls a run)", calls)}
	spawn := &Figure{Name: "process/openssl-version", What: "`openssl version`: the cost of starting openssl at all"}
	for range runs {
		for _, f := range []*Figure{loop, spawn} {
			args := verifyArgs
			if f == spawn {
				args = []string{"version"}
			}
			start := time.Now()
			for range calls {
				b, err := exec.Command(ossl, args...).CombinedOutput()
				if err != nil || (f == loop && !bytes.Contains(b, []byte("Signature Verified Successfully"))) {
					fmt.Fprintf(os.Stderr, "openssl %s: %v: %s\n", strings.Join(args, " "), err, b)
					return out
				}
			}
			f.RunsNs = append(f.RunsNs, float64(time.Since(start).Nanoseconds())/calls)
		}
	}
	for _, f := range []*Figure{loop, spawn} {
		f.MinNs, f.MedianNs = minMedian(f.RunsNs)
		out = append(out, f)
	}
	return out
}

func printMarkdown(r *report) {
	fmt.Printf("Machine: %s; load average before: %s; %s\n\n", r.Machine, r.Load, r.When.Format(time.RFC3339))
	fmt.Println("| operation | SM2 verifications | CPU µs, min | CPU µs, median | wall µs, min | wall µs, median | instructions | allocs | what |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, f := range r.Figures {
		instr := "–"
		if f.Instr > 0 {
			instr = fmt.Sprintf("%.2f M", f.Instr/1e6)
		}
		allocs := "–"
		if f.Allocs > 0 {
			allocs = strconv.FormatInt(f.Allocs, 10)
		}
		sigs := "–"
		if f.Sigs > 0 {
			sigs = strconv.Itoa(f.Sigs)
		}
		us := func(ns float64) string {
			if ns == 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f", ns/1e3)
		}
		fmt.Printf("| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", f.Name, sigs, us(f.CPUMinNs), us(f.CPUMedianNs),
			us(f.MinNs), us(f.MedianNs), instr, allocs, f.What)
	}
	fmt.Println()
	fmt.Println("| ratio | CPU time, mins | wall time, medians | instructions | goal | met |")
	fmt.Println("|---|---:|---:|---:|---|---|")
	for _, x := range r.Ratios {
		instr := "–"
		if x.Instr > 0 {
			instr = fmt.Sprintf("%.2f×", x.Instr)
		}
		met := "–"
		if x.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*x.Met]
		}
		goal := x.Goal
		if goal == "" {
			goal = "–"
		}
		ratio := func(v float64) string {
			if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return "–"
			}
			return fmt.Sprintf("%.2f×", v)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", x.What, ratio(x.CPU), ratio(x.Median), instr, goal, met)
	}
}

func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d CPUs, %s %s/%s", model, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
