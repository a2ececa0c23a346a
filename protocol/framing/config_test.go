package framing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewDefaults(t *testing.T) {
	f := mustNew(t, Config{})
	if f.Timeout() != 500*time.Millisecond {
		t.Errorf("line Timeout = %v, want 500ms", f.Timeout())
	}
	expect(t, f.Feed([]byte("A\rB\n\r"), nil), `scan "A"`, `scan "B\n"`)
	if got := mustNew(t, Config{Type: "ssi"}).Timeout(); got != DefaultGap {
		t.Errorf("ssi Timeout = %v", got)
	}
	if got := mustNew(t, Config{Type: "idle", Gap: 50 * time.Millisecond}).Timeout(); got != 50*time.Millisecond {
		t.Errorf("idle Timeout = %v", got)
	}
	if got := mustNew(t, Config{Gap: time.Second}).Timeout(); got != time.Second {
		t.Errorf("line Timeout with Gap 1s = %v", got)
	}
}

func TestNewRejects(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, maxAffix+1)
	for _, tc := range []struct {
		c     Config
		field string
		msg   string
	}{
		{Config{Type: "lines"}, "Type", `"lines" is not`},
		{Config{Type: "idle"}, "Gap", `required for Type "idle"`},
		{Config{Gap: -time.Millisecond}, "Gap", "negative"},
		{Config{MaxScan: -1}, "MaxScan", "outside 1..4096"},
		{Config{MaxScan: MaxScan + 1}, "MaxScan", "4097 is outside"},
		{Config{Suffix: long}, "Suffix", "33 bytes, at most 32"},
		{Config{Prefix: long}, "Prefix", "33 bytes"},
		{Config{Type: "ssi", Ignore: [][]byte{{6}}}, "Ignore", "nothing to strip"},
		{Config{Ignore: [][]byte{{6}, {}}}, "Ignore[1]", "empty"},
		{Config{Ignore: [][]byte{{6}, long}}, "Ignore[1]", "33 bytes"},
		{Config{Ignore: make([][]byte, maxIgnore+1)}, "Ignore", "9 entries"},
	} {
		f, err := New(tc.c)
		var ce *ConfigError
		if f != nil || !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("New(%+v) = %v, %v; want a %s error containing %q", tc.c, f, err, tc.field, tc.msg)
			continue
		}
		if !strings.HasPrefix(err.Error(), "framing: "+tc.field+": ") {
			t.Errorf("error %q does not name the field first", err)
		}
	}
}

func TestNewCopiesConfig(t *testing.T) {
	c := Config{Suffix: []byte{'\n'}, Prefix: []byte("P"), Ignore: [][]byte{{6}}}
	f := mustNew(t, c)
	c.Suffix[0], c.Prefix[0], c.Ignore[0][0] = 'x', 'y', 'z'
	expect(t, f.Feed([]byte("\x06PA\n"), nil), `scan "A"`)
}

func TestParseSuffix(t *testing.T) {
	for in, want := range map[string]string{
		"cr": "\r", "CR": "\r", " lf ": "\n", "crlf": "\r\n", "CrLf": "\r\n",
		"0d0a": "\r\n", "0D 0A": "\r\n", "03": "\x03", "1d 0d": "\x1d\r",
	} {
		got, err := ParseSuffix(in)
		if err != nil || string(got) != want {
			t.Errorf("ParseSuffix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", " ", "tab", "0d0", "zz", "0x0d", strings.Repeat("00", maxAffix+1)} {
		got, err := ParseSuffix(in)
		var ce *ConfigError
		if err == nil || !errors.As(err, &ce) || ce.Field != "Suffix" {
			t.Errorf("ParseSuffix(%q) = %q, %v; want a Suffix error", in, got, err)
		}
	}
}
