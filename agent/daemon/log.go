package daemon

import (
	"io"
	"log/slog"
	"os"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/lograte"
)

// NewLogger returns the agent's logger. Identities reach it only through
// event.Summary, which masks them. With console on, logs go to stderr so that standard
// output carries only the event lines. Repeats of one kind of line beyond a burst are
// held back and counted in a summary line (agent/lograte), so that a flapping device
// cannot flood journald or rotate the Windows log file away; event lines never are.
func NewLogger(stdout io.Writer, c config.Log, level *slog.LevelVar, console bool) *slog.Logger {
	level.Set(levelOf(c.Level))
	w := stdout
	if console {
		w = os.Stderr
	}
	o := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, o)
	if c.Format == "text" {
		h = slog.NewTextHandler(w, o)
	}
	return slog.New(lograte.New(h, lograte.Options{}))
}

// flushLog writes the summaries of lines l still holds back; Run calls it after its last
// line, so that a flood just before a stop is counted in the log.
func flushLog(l *slog.Logger) {
	if h, ok := l.Handler().(*lograte.Handler); ok {
		h.Flush()
	}
}

func levelOf(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
