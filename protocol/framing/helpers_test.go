package framing

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/hextest"
)

var hx = hextest.Decode

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func mustNew(t testing.TB, c Config) Framer {
	t.Helper()
	f, err := New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return f
}

// describe renders outputs so that a test can compare whole sequences.
func describe(out []Output) []string {
	var s []string
	for _, o := range out {
		switch o.Kind {
		case KindScan:
			d := fmt.Sprintf("%q", o.Data)
			if len(o.Data) > 40 {
				d = fmt.Sprintf("%q…(%d bytes)", o.Data[:20], len(o.Data))
			}
			if o.AIM != "" {
				d += " " + o.AIM
			}
			s = append(s, "scan "+d)
		case KindReply:
			s = append(s, fmt.Sprintf("reply % X", o.Data))
		case KindDrop:
			s = append(s, fmt.Sprintf("drop %s %d", o.Reason, o.Dropped))
		default:
			s = append(s, fmt.Sprintf("kind %d?", o.Kind))
		}
	}
	return s
}

func expect(t *testing.T, out []Output, want ...string) {
	t.Helper()
	if got := describe(out); !slices.Equal(got, want) {
		t.Errorf("outputs:\n got %q\nwant %q", got, want)
	}
}

func feedChunks(f Framer, b []byte, size int) []Output {
	var out []Output
	for len(b) > 0 {
		k := min(size, len(b))
		out = f.Feed(b[:k], out)
		b = b[k:]
	}
	return out
}

// sameEverySplit feeds b whole, byte by byte, and split in two at every offset, and
// checks that the outputs are those of feeding it whole.
func sameEverySplit(t *testing.T, c Config, b []byte, want ...string) {
	t.Helper()
	expect(t, mustNew(t, c).Feed(b, nil), want...)
	expect(t, feedChunks(mustNew(t, c), b, 1), want...)
	for i := range len(b) + 1 {
		f := mustNew(t, c)
		out := f.Feed(b[:i], nil)
		if got := describe(f.Feed(b[i:], out)); !slices.Equal(got, want) {
			t.Fatalf("split at %d:\n got %q\nwant %q", i, got, want)
		}
	}
}
