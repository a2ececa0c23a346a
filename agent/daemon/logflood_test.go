package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// TestNewLoggerLimitsRepeats: the logger the daemon builds, in both formats, writes
// the first 10 of a repeated warning and then one summary with the rest's count, logs
// every event line, and follows the LevelVar that Reload sets.
func TestNewLoggerLimitsRepeats(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			level := new(slog.LevelVar)
			log := NewLogger(&out, config.Log{Level: "info", Format: format}, level, false)
			dev := log.With("device", "front-scanner")
			for i := range 100 {
				dev.Warn("serial port lost", "reason", "device_lost", "attempt", i)
				log.Info("event", "seq", i, "device", "front-scanner", "summary", "unknown")
			}
			log.Debug("hidden at info")
			level.Set(slog.LevelDebug) // what Reload does
			log.Debug("shown at debug")
			flushLog(log)

			var warns, events, debugs, suppressed int
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var m map[string]any
				if format == "json" {
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Fatalf("%q: %v", l, err)
					}
				} else {
					m = textFields(l)
				}
				switch m["msg"] {
				case "serial port lost":
					if m["device"] != "front-scanner" {
						t.Fatalf("line without its device: %s", l)
					}
					if s, ok := m["suppressed"]; ok {
						n, _ := strconv.Atoi(fmt.Sprint(s))
						suppressed += n
					} else {
						warns++
					}
				case "event":
					events++
				case "hidden at info", "shown at debug":
					debugs++
					if m["msg"] == "hidden at info" {
						t.Fatalf("debug line written at level info: %s", l)
					}
				}
			}
			if warns != 10 || suppressed != 90 || events != 100 || debugs != 1 {
				t.Fatalf("%d warnings + suppressed=%d, %d events, %d debug lines; want 10 + 90, 100, 1:\n%s",
					warns, suppressed, events, debugs, out.String())
			}
		})
	}
}

var textField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

func textFields(l string) map[string]any {
	m := map[string]any{}
	for _, f := range textField.FindAllStringSubmatch(l, -1) {
		v := f[2]
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		m[f[1]] = v
	}
	return m
}

// TestScannerFloodThroughDaemon scans one code many times (double reads, a debug line
// each) and many junk lines (an event each) through the whole daemon: every event is
// in the log, the double reads only 10 times, and the stop writes the summary of the
// rest, so the counts in the log add up to the pipeline's.
func TestScannerFloodThroughDaemon(t *testing.T) {
	var a *simAgent
	var logs *logtest.Buffer
	const junk = 300
	// Registered before the agent starts, so it runs after the agent stopped.
	t.Cleanup(func() {
		if a == nil {
			return
		}
		st := a.d.pipe.Snapshot()
		var doubles, suppressed, events int
		for _, l := range strings.Split(logs.String(), "\n") {
			m := textFields(l)
			switch m["msg"] {
			case "double read":
				if s, ok := m["suppressed"]; ok {
					n, _ := strconv.Atoi(fmt.Sprint(s))
					suppressed += n
				} else {
					doubles++
				}
			case "event":
				events++
			}
		}
		if st.DoubleReads <= 10 {
			t.Errorf("only %d double reads: nothing to limit", st.DoubleReads)
		}
		if doubles != 10 || uint64(doubles+suppressed) != st.DoubleReads {
			t.Errorf("%d double-read lines + suppressed=%d, want 10 + %d", doubles, suppressed, st.DoubleReads-10)
		}
		if uint64(events) != st.Events || events < junk+1 {
			t.Errorf("%d event lines, pipeline made %d events (at least %d)", events, st.Events, junk+1)
		}
	})
	a = startSimAgent(t, t.TempDir(), "debug", "")
	logs = a.logs
	code, err := a.keys.NewCode(issuer.CodeOptions{Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for range 60 {
		b.WriteString(code + "\n")
	}
	for i := range junk {
		fmt.Fprintf(&b, "JUNK-%d\n", i)
	}
	if _, err := a.scanner.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st := a.d.pipe.Snapshot(); st.Reads >= 60+junk && st.Events+st.DoubleReads == st.Reads {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %+v, want %d reads", a.d.pipe.Snapshot(), 60+junk)
		}
	}
}
