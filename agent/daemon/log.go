package daemon

import (
	"io"
	"log/slog"
	"os"

	"github.com/ehc-agent/ehc-agent/agent/config"
)

// NewLogger returns the agent's logger. Identities reach it only through
// event.Summary, which masks them. With console on, logs go to stderr so that standard
// output carries only the event lines.
func NewLogger(stdout io.Writer, c config.Log, level *slog.LevelVar, console bool) *slog.Logger {
	level.Set(levelOf(c.Level))
	w := stdout
	if console {
		w = os.Stderr
	}
	o := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

func levelOf(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
