package lograte

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake time source that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is the log's output; the timer's summaries are written from another
// goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := strings.TrimSpace(s.b.String())
	if t == "" {
		return nil
	}
	return strings.Split(t, "\n")
}

// setup is a limited logger over a real text handler, with a fake clock.
func setup(t *testing.T, o Options) (*slog.Logger, *Handler, *syncBuffer, *clock) {
	t.Helper()
	c := newClock()
	if o.Now == nil {
		o.Now = c.Now
	}
	out := &syncBuffer{}
	h := New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}), o)
	t.Cleanup(func() {
		h.st.mu.Lock()
		if h.st.timer != nil {
			h.st.timer.Stop()
		}
		h.st.mu.Unlock()
	})
	return slog.New(h), h, out, c
}

var suppressedRe = regexp.MustCompile(` suppressed=(\d+)`)

// split parses lines into those written as logged and the summaries' counts.
func split(t *testing.T, lines []string) (plain []string, summaries []string, suppressed int) {
	t.Helper()
	for _, l := range lines {
		if m := suppressedRe.FindStringSubmatch(l); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				t.Fatal(err)
			}
			suppressed += n
			summaries = append(summaries, l)
			continue
		}
		plain = append(plain, l)
	}
	return plain, summaries, suppressed
}

func TestBurstThenSummary(t *testing.T) {
	for _, tc := range []struct {
		name       string
		level      slog.Level
		lines      int
		wantPlain  int
		wantSupp   int
		levelLabel string
	}{
		{"1000 warnings", slog.LevelWarn, 1000, 10, 990, "WARN"},
		{"1000 infos", slog.LevelInfo, 1000, 10, 990, "INFO"},
		{"1000 debugs", slog.LevelDebug, 1000, 10, 990, "DEBUG"},
		{"1000 errors get the larger burst", slog.LevelError, 1000, 30, 970, "ERROR"},
		{"exactly the burst", slog.LevelWarn, 10, 10, 0, "WARN"},
		{"one over the burst", slog.LevelWarn, 11, 10, 1, "WARN"},
		{"below the burst", slog.LevelWarn, 3, 3, 0, "WARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _, out, c := setup(t, Options{})
			for i := range tc.lines {
				log.Log(context.Background(), tc.level, "printer not answering", "device", "printer", "reason", "printer_offline", "seq", i)
				c.Add(10 * time.Millisecond) // all within one minute
			}
			plain, summaries, _ := split(t, out.lines())
			if len(plain) != tc.wantPlain || len(summaries) != 0 {
				t.Fatalf("in the window: %d lines and %d summaries, want %d and 0", len(plain), len(summaries), tc.wantPlain)
			}
			for i, l := range plain {
				if !strings.Contains(l, " seq="+strconv.Itoa(i)+"") {
					t.Fatalf("line %d is not the %dth logged: %s", i, i, l)
				}
			}

			// The window ends; any line, of any kind, brings the summary, before itself.
			c.Add(time.Minute)
			log.Info("something else")
			lines := out.lines()[tc.wantPlain:]
			_, summaries, supp := split(t, lines)
			if supp != tc.wantSupp {
				t.Fatalf("suppressed=%d, want %d; lines after the window: %q", supp, tc.wantSupp, lines)
			}
			if tc.wantSupp == 0 {
				if len(lines) != 1 {
					t.Fatalf("lines after the window: %q, want only the new one", lines)
				}
				return
			}
			if len(summaries) != 1 || len(lines) != 2 || summaries[0] != lines[0] {
				t.Fatalf("lines after the window: %q, want one summary and then the new line", lines)
			}
			s := summaries[0]
			last := strconv.Itoa(tc.lines - 1)
			for _, want := range []string{"level=" + tc.levelLabel, `msg="printer not answering"`, "device=printer",
				"reason=printer_offline", " seq=" + last + " ", "time=2025-03-01T08:01:"} {
				if !strings.Contains(s, want) {
					t.Errorf("summary %q lacks %q", s, want)
				}
			}
		})
	}
}

// The kind is level, message, device, reason and component, not the other attributes.
func TestKinds(t *testing.T) {
	type line struct {
		level slog.Level
		msg   string
		args  []any
	}
	warn := func(args ...any) line { return line{slog.LevelWarn, "read failed", args} }
	for _, tc := range []struct {
		name     string
		a, b     line
		separate bool
	}{
		{"devices", warn("device", "scanner1"), warn("device", "scanner2"), true},
		{"reasons", warn("reason", "timeout"), warn("reason", "refused"), true},
		{"components", warn("component", "uplink"), warn("component", "fleet"), true},
		{"levels", line{slog.LevelInfo, "read failed", nil}, warn(), true},
		{"messages", line{slog.LevelWarn, "read failed once", nil}, warn(), true},
		{"reason or none", warn("device", "d", "reason", "timeout"), warn("device", "d"), true},
		{"err values", warn("device", "d", "err", "EOF"), warn("device", "d", "err", "broken pipe"), false},
		{"seq and time", warn("seq", 1, "at", time.Now()), warn("seq", 2, "at", time.Now().Add(time.Second)), false},
		{"no attributes", warn(), warn(), false},
		{"same device given differently", warn("device", "d"), warn(slog.String("device", "d")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, h, out, c := setup(t, Options{Burst: 3})
			for range 20 {
				log.Log(context.Background(), tc.a.level, tc.a.msg, tc.a.args...)
				log.Log(context.Background(), tc.b.level, tc.b.msg, tc.b.args...)
			}
			want := 3
			if tc.separate {
				want = 6
			}
			if n := len(out.lines()); n != want {
				t.Fatalf("%d lines written, want %d: %q", n, want, out.lines())
			}
			c.Add(time.Minute)
			h.Flush()
			_, summaries, supp := split(t, out.lines())
			if supp != 40-want {
				t.Fatalf("suppressed=%d in %q, want %d", supp, summaries, 40-want)
			}
		})
	}
}

// Every identity event is in the log, however many there are.
func TestEventLinesNeverLimited(t *testing.T) {
	log, h, out, _ := setup(t, Options{})
	for i := range 1000 {
		log.Info(EventMessage, "seq", i, "device", "scanner", "summary", "ehic …1234")
	}
	// And a warning flood in between does not change that.
	for i := range 1000 {
		log.Warn("scanner flapping", "device", "scanner", "reason", "device_lost")
		log.Info(EventMessage, "seq", 1000+i, "device", "scanner", "summary", "ehic …1234")
	}
	h.Flush()
	plain, _, supp := split(t, out.lines())
	events := 0
	for _, l := range plain {
		if strings.Contains(l, "msg="+EventMessage+" ") {
			if !strings.Contains(l, " seq="+strconv.Itoa(events)+" ") {
				t.Fatalf("event %d missing or out of order: %s", events, l)
			}
			events++
		}
	}
	if events != 2000 || supp != 990 {
		t.Fatalf("%d event lines and suppressed=%d, want 2000 and 990", events, supp)
	}
}

// Loggers derived with With and WithGroup count against the same limit, and the
// device given by With names the kind.
func TestDerivedLoggersShareTheLimit(t *testing.T) {
	log, _, out, c := setup(t, Options{})
	dev := log.With("device", "scanner1")
	dev2 := dev.With("driver", "serial")
	grouped := dev.WithGroup("detail")
	for i := range 30 {
		switch i % 3 {
		case 0:
			dev.Warn("port lost", "reason", "device_lost")
		case 1:
			dev2.Warn("port lost", "reason", "device_lost")
		case 2:
			grouped.Warn("port lost", "reason", "device_lost") // in a group: not the kind's reason
		}
	}
	// The same message logged with the device as a line attribute is the same kind.
	for range 10 {
		log.Warn("port lost", "device", "scanner1", "reason", "device_lost")
	}
	// Another device's logger is not limited by scanner1's flood.
	other := log.With("device", "scanner2")
	for range 10 {
		other.Warn("port lost", "reason", "device_lost")
	}
	plain, _, _ := split(t, out.lines())
	var s1, s2, g int
	for _, l := range plain {
		switch {
		case strings.Contains(l, "detail.reason"):
			g++
		case strings.Contains(l, "device=scanner1"):
			s1++
		case strings.Contains(l, "device=scanner2"):
			s2++
		}
	}
	// scanner1: 30 lines of its kind (20 from dev and dev2, 10 with the device on the
	// line), 10 written; the grouped logger's 10 are a kind of their own (no reason).
	if s1 != 10 || s2 != 10 || g != 10 {
		t.Fatalf("scanner1: %d lines, scanner2: %d, grouped: %d; want 10 each: %q", s1, s2, g, plain)
	}
	c.Add(time.Minute)
	log.Info("tick")
	_, summaries, supp := split(t, out.lines())
	if supp != 20 || len(summaries) != 1 {
		t.Fatalf("summaries %q, want one with suppressed=20", summaries)
	}
	// The summary is written by the logger of the last line held back, with its attributes.
	if !strings.Contains(summaries[0], "device=scanner1") {
		t.Fatalf("summary %q lacks the device", summaries[0])
	}
}

// After a window's summary, the kind starts afresh: the next burst is written.
func TestNextWindow(t *testing.T) {
	log, _, out, c := setup(t, Options{Burst: 2})
	for round := range 3 {
		for range 5 {
			log.Warn("platform refused", "reason", "platform_refused")
		}
		c.Add(time.Minute)
		before := len(out.lines())
		log.Warn("platform refused", "reason", "platform_refused")
		lines := out.lines()[before:]
		_, summaries, supp := split(t, lines)
		if len(lines) != 2 || len(summaries) != 1 || supp != 3 {
			t.Fatalf("round %d: after the window %q, want the summary of 3 and the new line", round, lines)
		}
		// The line that closed the window opens the next one (1 of 2).
		log.Warn("platform refused", "reason", "platform_refused")
		if n := len(out.lines()); n != before+3 {
			t.Fatalf("round %d: second line of the new window not written", round)
		}
		c.Add(time.Minute)
		log.Info("tick")
	}
}

// The window runs from a kind's first line: lines spread over more than a window are
// counted in separate windows.
func TestWindowFromFirstLine(t *testing.T) {
	log, h, out, c := setup(t, Options{Burst: 10, Window: time.Minute})
	for range 60 { // one line every 5 s for 5 minutes: 12 a minute, 2 over the burst
		log.Warn("slow printer", "device", "printer")
		c.Add(5 * time.Second)
	}
	h.Flush()
	plain, summaries, supp := split(t, out.lines())
	if len(plain) != 50 || supp != 10 || len(summaries) != 5 {
		t.Fatalf("%d lines, %d summaries of %d; want 50, 5 of 10", len(plain), len(summaries), supp)
	}
}

// With no line after the flood, the timer writes the summary when the window ends.
func TestSummaryByTimer(t *testing.T) {
	out := &syncBuffer{}
	h := New(slog.NewTextHandler(out, nil), Options{Burst: 2, Window: 200 * time.Millisecond})
	defer h.Flush()
	log := slog.New(h)
	for range 7 {
		log.Warn("hung printer", "device", "printer")
	}
	deadline := time.Now().Add(20 * time.Second) // a loaded machine: generous
	for {
		_, summaries, supp := split(t, out.lines())
		if len(summaries) == 1 && supp == 5 {
			break
		}
		if len(summaries) > 1 || time.Now().After(deadline) {
			t.Fatalf("summaries %q, want one with suppressed=5", summaries)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.st.mu.Lock()
	armed, kinds := h.st.armed, len(h.st.kinds)
	h.st.mu.Unlock()
	if !armed.IsZero() {
		t.Fatal("timer still armed with nothing held back")
	}
	if kinds != 0 {
		t.Fatalf("%d kinds tracked after the summary", kinds)
	}
}

// Below the burst, nothing arms the timer: an idle agent has no wake-up of its own.
func TestNoTimerBelowBurst(t *testing.T) {
	log, h, _, c := setup(t, Options{})
	for i := range 100 {
		log.Warn("distinct", "device", strconv.Itoa(i))
		c.Add(time.Second)
	}
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if h.st.timer != nil {
		t.Fatal("a timer was created though nothing was held back")
	}
}

// Flush writes what is held back, window ended or not, and nothing twice.
func TestFlush(t *testing.T) {
	log, h, out, _ := setup(t, Options{})
	for range 25 {
		log.Error("stopping: pipeline did not drain", "reason", "stop_timeout")
		log.Warn("printer offline", "device", "printer")
	}
	h.Flush()
	h.Flush()
	_, summaries, supp := split(t, out.lines())
	if len(summaries) != 1 || supp != 15 {
		t.Fatalf("summaries %q, want one of 15 (errors are within their burst)", summaries)
	}
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if !h.st.armed.IsZero() {
		t.Fatal("timer armed after Flush")
	}
}

// Many goroutines, many derived loggers: the count is exact (run with -race).
func TestConcurrent(t *testing.T) {
	log, h, out, c := setup(t, Options{})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("device", "scanner", "worker", g)
			for i := range each {
				l.Warn("scanner flapping", "reason", "device_lost", "i", i)
				l.Info(EventMessage, "seq", g*each+i)
			}
		}()
	}
	wg.Wait()
	c.Add(time.Minute)
	h.Flush()
	plain, summaries, supp := split(t, out.lines())
	var warns, events int
	for _, l := range plain {
		if strings.Contains(l, "scanner flapping") {
			warns++
		} else if strings.Contains(l, "msg="+EventMessage) {
			events++
		}
	}
	if warns != 10 || events != goroutines*each || len(summaries) != 1 || supp != goroutines*each-10 {
		t.Fatalf("%d warnings, %d events, summaries %q; want 10, %d, one of %d",
			warns, events, summaries, goroutines*each, goroutines*each-10)
	}
}

// At most MaxKinds kinds are tracked, and a kind dropped to make room still has its
// summary: every line logged is written or counted in a summary.
func TestMemoryBound(t *testing.T) {
	log, h, out, c := setup(t, Options{MaxKinds: 8, Burst: 3})
	rng := rand.New(rand.NewPCG(1, 2))
	const total = 20000
	for range total {
		// Some kinds repeat a lot, many are seen once or twice (a formatted message).
		var msg string
		if rng.IntN(2) == 0 {
			msg = fmt.Sprintf("hot %d", rng.IntN(4))
		} else {
			msg = fmt.Sprintf("cold %d", rng.IntN(500))
		}
		log.Warn(msg, "device", "d")
		c.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
		h.st.mu.Lock()
		n := len(h.st.kinds)
		h.st.mu.Unlock()
		if n > 8 {
			t.Fatalf("%d kinds tracked, bound 8", n)
		}
	}
	h.Flush()
	plain, summaries, supp := split(t, out.lines())
	if len(plain)+supp != total {
		t.Fatalf("%d lines written + %d suppressed != %d logged", len(plain), supp, total)
	}
	if len(summaries) == 0 || supp == 0 {
		t.Fatal("nothing was limited: the test does not test the bound")
	}
}

// Whatever the order of lines, levels and clock steps, nothing is lost: lines written
// plus the summaries' counts make all lines logged, and no kind has more than its burst
// written per window.
func TestNothingLost(t *testing.T) {
	for seed := range uint64(20) {
		log, h, out, c := setup(t, Options{Burst: 4, ErrorBurst: 6, MaxKinds: 5})
		rng := rand.New(rand.NewPCG(seed, seed))
		levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
		total := 0
		for range 3000 {
			l := log
			if rng.IntN(3) == 0 {
				l = log.With("device", fmt.Sprint("dev", rng.IntN(3)))
			}
			msg := fmt.Sprint("m", rng.IntN(4))
			if rng.IntN(10) == 0 {
				msg = EventMessage
			}
			l.Log(context.Background(), levels[rng.IntN(len(levels))], msg, "reason", fmt.Sprint("r", rng.IntN(2)))
			total++
			c.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		}
		h.Flush()
		plain, _, supp := split(t, out.lines())
		if len(plain)+supp != total {
			t.Fatalf("seed %d: %d written + %d suppressed != %d logged", seed, len(plain), supp, total)
		}
	}
}

// The level is the wrapped handler's, so `ehc-agent run`'s LevelVar keeps working.
func TestLevelVar(t *testing.T) {
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	var out syncBuffer
	log := slog.New(New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: &lv}), Options{}))
	log.Info("hidden")
	log.Warn("shown")
	lv.Set(slog.LevelDebug)
	log.Debug("shown too")
	if lines := out.lines(); len(lines) != 2 || !strings.Contains(lines[0], "shown") || !strings.Contains(lines[1], "shown too") {
		t.Fatalf("lines %q", lines)
	}
}

func BenchmarkHandle(b *testing.B) {
	log := slog.New(New(slog.NewJSONHandler(discard{}, nil), Options{}))
	b.ReportAllocs()
	for i := range b.N {
		log.Warn("read failed", "device", "scanner", "reason", "timeout", "seq", i)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
