package framing

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzConfigs are the framings FuzzStream runs; plain ones (no prefix, AIM or Ignore)
// also check that every byte fed is accounted for.
var fuzzConfigs = []struct {
	c     Config
	plain bool
}{
	{Config{MaxScan: 16}, true},
	{Config{MaxScan: 16, Suffix: []byte("\r\n")}, true},
	{Config{MaxScan: 16, Suffix: []byte("\r\r\n")}, true},
	{Config{MaxScan: 16, AIM: true, Prefix: []byte{0x02}, Suffix: []byte{0x03}}, false},
	{Config{MaxScan: 16, AIM: true, Ignore: [][]byte{{0x02, 0x00, 0x00, 0x01, 0x00, 0x33, 0x31}, {0x06}}}, false},
	{Config{Type: "idle", Gap: time.Millisecond, MaxScan: 16}, true},
	{Config{Type: "idle", Gap: time.Millisecond, MaxScan: 16, AIM: true, Suffix: []byte("\r\n"), Ignore: [][]byte{{0x06}}}, false},
}

// FuzzStream: line and idle framing. Outputs do not depend on how the input is split, no
// scan is empty or over MaxScan or holds a terminator, and (plain framings) every byte is
// in a scan, a terminator or a drop.
func FuzzStream(f *testing.F) {
	for i := range fuzzConfigs {
		for _, s := range []string{
			"ABC\r", "]Q1HELLO\r\n", "\x02]d1DM\x03", "\x02\x00\x00\x01\x00\x33\x31]Q1X\r", "\x06\x06S\r",
			strings.Repeat("J", 40) + "\r\nok\r\n", "\r\r\r\n", "]Q2\r",
		} {
			f.Add(uint8(i), []byte(s), uint16(2))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte, split uint16) {
		fc := fuzzConfigs[int(which)%len(fuzzConfigs)]
		c := fc.c
		whole := mustNew(t, c)
		out := whole.Expire(whole.Feed(b, nil))

		k := 0
		if len(b) > 0 {
			k = int(split) % (len(b) + 1)
		}
		parts := mustNew(t, c)
		kept := parts.Feed(b[:k], nil)
		held := make([][]byte, 0, len(kept))
		for _, o := range kept {
			held = append(held, bytes.Clone(o.Data))
		}
		out2 := parts.Expire(parts.Feed(b[k:], kept))
		if !slices.Equal(describe(out), describe(out2)) {
			t.Fatalf("split at %d:\n%q\n%q", k, describe(out), describe(out2))
		}
		for i, h := range held {
			if !bytes.Equal(out2[i].Data, h) {
				t.Fatalf("output %d changed after more input: %q, was %q", i, out2[i].Data, h)
			}
		}

		term := c.Suffix
		if c.Type == "" && len(term) == 0 {
			term = []byte{'\r'}
		}
		accounted := 0
		for _, o := range out {
			switch o.Kind {
			case KindScan:
				if len(o.Data) == 0 || len(o.Data) > c.MaxScan {
					t.Fatalf("scan of %d bytes", len(o.Data))
				}
				if c.Type == "" && bytes.Contains(o.Data, term) {
					t.Fatalf("scan %q holds the terminator", o.Data)
				}
				if o.AIM != "" && !IsAIM([]byte(o.AIM)) {
					t.Fatalf("AIM %q", o.AIM)
				}
				accounted += len(o.Data)
				if c.Type == "" {
					accounted += len(term)
				}
			case KindDrop:
				if o.Dropped <= 0 {
					t.Fatalf("drop of %d bytes", o.Dropped)
				}
				accounted += o.Dropped
			default:
				t.Fatalf("output kind %d", o.Kind)
			}
		}
		if fc.plain && accounted != len(b) {
			t.Fatalf("%d bytes fed, %d accounted for: %q", len(b), accounted, describe(out))
		}
	})
}

// FuzzSSIFraming: ssi framing through New, with stripping; protocol/ssi fuzzes the packets.
func FuzzSSIFraming(f *testing.F) {
	f.Add(specSSI(f), uint8(0))
	f.Add(decodeData(f, 0x20, 0x1C, "P]Q1DATA\r"), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		c := Config{Type: "ssi", AIM: true, Prefix: []byte("P"), Suffix: []byte("\r"), MaxScan: 64}
		fr := mustNew(t, c)
		out := fr.Expire(feedChunks(fr, b, int(chunk)+1))
		for _, o := range out {
			switch o.Kind {
			case KindScan:
				if len(o.Data) == 0 || len(o.Data) > c.MaxScan {
					t.Fatalf("scan of %d bytes", len(o.Data))
				}
				if !IsAIM([]byte(o.AIM)) && !strings.HasPrefix(o.AIM, ssiAIMPrefix) {
					t.Fatalf("AIM %q", o.AIM)
				}
			case KindReply:
				if len(o.Data) < 6 {
					t.Fatalf("reply % X", o.Data)
				}
			case KindDrop:
				if o.Dropped <= 0 || o.Reason == "" {
					t.Fatalf("drop %q of %d", o.Reason, o.Dropped)
				}
			}
		}
	})
}

// FuzzParseSuffix: what ParseSuffix accepts is 1..32 bytes and survives a hex round trip.
func FuzzParseSuffix(f *testing.F) {
	for _, s := range []string{"cr", "lf", "crlf", "0d0a", "0D 0A", "", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseSuffix(s)
		if err != nil {
			return
		}
		if len(b) == 0 || len(b) > maxAffix {
			t.Fatalf("ParseSuffix(%q) = % X", s, b)
		}
		again, err := ParseSuffix(hex.EncodeToString(b))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip of % X: % X, %v", b, again, err)
		}
	})
}
