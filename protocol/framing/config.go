package framing

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

// DefaultGap is the stale-partial gap of the line and ssi framings when Config.Gap is 0.
const DefaultGap = 500 * time.Millisecond

// Bounds on configured byte strings: they are scanner affixes and replies, a few bytes
// each; the bound keeps a framer's memory a small constant over MaxScan.
const (
	maxAffix  = 32 // Suffix, Prefix, each Ignore entry
	maxIgnore = 8  // Ignore entries
)

// Config selects and parameterises a framing (SCANNERS.md, Serial, "Framings").
type Config struct {
	Type string // "line" (default), "idle", "ssi"
	// Suffix: line: the terminator, default {'\r'}; CRLF = {'\r','\n'}. idle and ssi:
	// optional, stripped from the end of a scan when present.
	Suffix []byte
	Prefix []byte // optional configured prefix, stripped when a scan starts with it
	// AIM strips a leading AIM identifier ("]" + code char + modifier) and reports it in
	// Output.AIM. Callers set it (true is the agent's default).
	AIM bool
	// Gap: idle: the end-of-scan gap (required, e.g. 50ms). line and ssi: a partial older
	// than this is dropped as "stale_partial" (default DefaultGap).
	Gap time.Duration
	// Ignore lists scanner command replies stripped where they appear at the start of a
	// frame (line, idle), e.g. {0x02,0x00,0x00,0x01,0x00,0x33,0x31} for 7E00 scanners or
	// {0x06} for newland-2d; trigger.Commands.Replies gives them. Not for ssi, whose
	// replies are packets the framer consumes anyway.
	Ignore  [][]byte
	MaxScan int // largest scan delivered, 1..MaxScan; 0 means MaxScan
}

// ConfigError is a Config that New refuses; Field names the Config field.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "framing: " + e.Field + ": " + e.Msg }

// New validates c, applies its defaults and returns its framer. The framer keeps copies of
// c's byte slices.
//
// Type "ssi" is built on protocol/ssi's Framer: that package imports nothing of this one,
// so every framing is made here.
func New(c Config) (Framer, error) {
	if c.Type == "" {
		c.Type = "line"
	}
	if c.Type != "line" && c.Type != "idle" && c.Type != "ssi" {
		return nil, &ConfigError{"Type", strconv.Quote(c.Type) + ` is not "line", "idle" or "ssi"`}
	}
	switch {
	case c.MaxScan == 0:
		c.MaxScan = MaxScan
	case c.MaxScan < 0 || c.MaxScan > MaxScan:
		return nil, &ConfigError{"MaxScan", strconv.Itoa(c.MaxScan) + " is outside 1.." + strconv.Itoa(MaxScan)}
	}
	switch {
	case c.Gap < 0:
		return nil, &ConfigError{"Gap", c.Gap.String() + " is negative"}
	case c.Gap == 0 && c.Type == "idle":
		return nil, &ConfigError{"Gap", `required for Type "idle" (at least 3 character times, e.g. 50ms at 115200 baud)`}
	case c.Gap == 0:
		c.Gap = DefaultGap
	}
	if c.Type == "line" && len(c.Suffix) == 0 {
		c.Suffix = []byte{'\r'}
	}
	if err := checkAffix("Suffix", c.Suffix); err != nil {
		return nil, err
	}
	if err := checkAffix("Prefix", c.Prefix); err != nil {
		return nil, err
	}
	if len(c.Ignore) > 0 && c.Type == "ssi" {
		return nil, &ConfigError{"Ignore", `scanner replies are SSI packets with Type "ssi": there is nothing to strip`}
	}
	if len(c.Ignore) > maxIgnore {
		return nil, &ConfigError{"Ignore", strconv.Itoa(len(c.Ignore)) + " entries, at most " + strconv.Itoa(maxIgnore)}
	}
	ignore := make([][]byte, len(c.Ignore))
	for i, r := range c.Ignore {
		field := "Ignore[" + strconv.Itoa(i) + "]"
		if len(r) == 0 {
			return nil, &ConfigError{field, "empty"}
		}
		if err := checkAffix(field, r); err != nil {
			return nil, err
		}
		ignore[i] = bytes.Clone(r)
	}

	t := trimmer{prefix: bytes.Clone(c.Prefix), aim: c.AIM, max: c.MaxScan}
	// The longest frame that can still hold a scan of MaxScan bytes.
	frame := c.MaxScan + len(c.Prefix) + len(c.Suffix)
	if c.AIM {
		frame += AIMLen
	}
	switch c.Type {
	case "ssi":
		t.suffix = bytes.Clone(c.Suffix)
		return &ssiFramer{trimmer: t, d: ssi.NewFramer(frame), gap: c.Gap}, nil
	case "idle":
		t.suffix = bytes.Clone(c.Suffix)
		return newStream(t, nil, ignore, c.Gap, frame), nil
	}
	return newStream(t, bytes.Clone(c.Suffix), ignore, c.Gap, frame), nil
}

func checkAffix(field string, b []byte) error {
	if len(b) > maxAffix {
		return &ConfigError{field, strconv.Itoa(len(b)) + " bytes, at most " + strconv.Itoa(maxAffix)}
	}
	return nil
}

// ParseSuffix reads a configured suffix: "cr", "lf", "crlf" (any case), or hex bytes such
// as "0d0a" or "0D 0A".
func ParseSuffix(s string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "cr":
		return []byte{'\r'}, nil
	case "lf":
		return []byte{'\n'}, nil
	case "crlf":
		return []byte{'\r', '\n'}, nil
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil || len(b) == 0 {
		return nil, &ConfigError{"Suffix", strconv.Quote(s) + ` is not cr, lf, crlf or hex bytes such as "0d0a"`}
	}
	if err := checkAffix("Suffix", b); err != nil {
		return nil, err
	}
	return b, nil
}
