package framing

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestLineSuffixes(t *testing.T) {
	for _, tc := range []struct {
		suffix string
		in     string
		want   []string
	}{
		{"\r", "ABC\rDEF\r", []string{`scan "ABC"`, `scan "DEF"`}},
		{"\n", "ABC\nD\rEF\n", []string{`scan "ABC"`, `scan "D\rEF"`}},
		{"\r\n", "ABC\r\nD\rE\nF\r\n\r\r\n", []string{`scan "ABC"`, `scan "D\rE\nF"`, `scan "\r"`}},
		{"\x03", "\x02AB\x03", []string{`scan "\x02AB"`}},
		// A terminator that overlaps itself: the first complete one ends the scan.
		{"\r\r\n", "A\r\r\r\nB\r\r\n", []string{`scan "A\r"`, `scan "B"`}},
	} {
		t.Run(fmt.Sprintf("%q", tc.suffix), func(t *testing.T) {
			sameEverySplit(t, Config{Suffix: []byte(tc.suffix)}, []byte(tc.in), tc.want...)
		})
	}
}

func TestLineAIM(t *testing.T) {
	c := Config{AIM: true}
	sameEverySplit(t, c, []byte("]Q1HELLO\r]Q2ECI\r]d1DM\r]C0128\r]E0690\r"),
		`scan "HELLO" ]Q1`, `scan "ECI" ]Q2`, `scan "DM" ]d1`, `scan "128" ]C0`, `scan "690" ]E0`)
	// Not an AIM identifier: "]" followed by a non-letter, or too short.
	expect(t, mustNew(t, c).Feed([]byte("]1AB\r]Q\r]Q-x\r"), nil), `scan "]1AB"`, `scan "]Q"`, `scan "]Q-x"`)
	// With AIM off the identifier is data.
	expect(t, mustNew(t, Config{}).Feed([]byte("]Q1HELLO\r"), nil), `scan "]Q1HELLO"`)
}

func TestLinePrefix(t *testing.T) {
	c := Config{Prefix: []byte("PFX"), AIM: true}
	expect(t, mustNew(t, c).Feed([]byte("PFX]Q1A\r]Q1PFXB\rPFXC\rD\rPF\r"), nil),
		`scan "A" ]Q1`, `scan "B" ]Q1`, `scan "C"`, `scan "D"`, `scan "PF"`)
	// Only one prefix is stripped.
	expect(t, mustNew(t, c).Feed([]byte("PFXPFXE\r"), nil), `scan "PFXE"`)
}

func TestLineEmpty(t *testing.T) {
	c := Config{Prefix: []byte{0x02}, AIM: true, Suffix: []byte("\r\n")}
	expect(t, mustNew(t, c).Feed([]byte("\r\n\x02\r\n]Q1\r\n\x02]Q1\r\nok\r\n"), nil),
		"drop empty 2", "drop empty 3", "drop empty 5", "drop empty 6", `scan "ok"`)
}

func TestLineIgnoresScannerReplies(t *testing.T) {
	reply7E := hx(t, "02 00 00 01 00 33 31")
	c := Config{AIM: true, Ignore: [][]byte{reply7E, {0x06}}}
	// The 7E00 reply arrives before any scan data, without a terminator of its own.
	sameEverySplit(t, c, cat(reply7E, []byte("]Q1HELLO\r")), `scan "HELLO" ]Q1`)
	// newland-2d answers 06; two commands, two replies, then the scan.
	sameEverySplit(t, c, []byte("\x06\x06SCAN\r"), `scan "SCAN"`)
	sameEverySplit(t, c, cat(reply7E, reply7E, []byte{6}, []byte("X\r")), `scan "X"`)

	t.Run("a reply alone leaves nothing pending", func(t *testing.T) {
		f := mustNew(t, c)
		expect(t, f.Feed(reply7E, nil))
		expect(t, f.Expire(nil))
		expect(t, f.Feed([]byte("A\r"), nil), `scan "A"`)
	})
	t.Run("only at the start of a frame", func(t *testing.T) {
		expect(t, mustNew(t, c).Feed([]byte("A\x06B\r"), nil), `scan "A\x06B"`)
	})
	t.Run("the start of a reply that turns into data is data", func(t *testing.T) {
		expect(t, mustNew(t, c).Feed([]byte("\x02\x00\x00A\r\x02\r"), nil), `scan "\x02\x00\x00A"`, `scan "\x02"`)
	})
	t.Run("a reply cut short is a stale partial", func(t *testing.T) {
		f := mustNew(t, c)
		expect(t, f.Feed(reply7E[:4], nil))
		expect(t, f.Expire(nil), "drop stale_partial 4")
	})
	t.Run("a reply then a bare terminator is empty", func(t *testing.T) {
		expect(t, mustNew(t, c).Feed([]byte("\x06\r"), nil), "drop empty 1")
	})
	t.Run("prefix that starts like a reply", func(t *testing.T) {
		c := Config{Prefix: []byte{0x02}, Suffix: []byte{0x03}, Ignore: [][]byte{reply7E}}
		sameEverySplit(t, c, cat(reply7E, []byte("\x02DATA\x03")), `scan "DATA"`)
	})
}

func TestLineTooLong(t *testing.T) {
	t.Run("exactly MaxScan is delivered, one more is not", func(t *testing.T) {
		c := Config{AIM: true, Prefix: []byte("P")}
		f := mustNew(t, c)
		ok := strings.Repeat("a", MaxScan)
		out := f.Feed([]byte("P]Q1"+ok+"\r"+ok+"b\rnext\r"), nil)
		expect(t, out, fmt.Sprintf(`scan "aaaaaaaaaaaaaaaaaaaa"…(%d bytes) ]Q1`, MaxScan),
			fmt.Sprintf("drop too_long %d", MaxScan+2), `scan "next"`)
	})
	t.Run("MaxScan setting", func(t *testing.T) {
		sameEverySplit(t, Config{MaxScan: 4}, []byte("abcd\rabcde\rabcdefghij\rok\r"),
			`scan "abcd"`, "drop too_long 6", "drop too_long 11", `scan "ok"`)
	})
	t.Run("64 KiB without terminator, then the next scan", func(t *testing.T) {
		junk := bytes.Repeat([]byte{'J'}, 64<<10)
		for _, size := range []int{1, 7, 4096, len(junk)} {
			f := mustNew(t, Config{})
			out := feedChunks(f, junk, size)
			out = f.Feed([]byte("\rGOOD\r"), out)
			expect(t, out, fmt.Sprintf("drop too_long %d", len(junk)+1), `scan "GOOD"`)
			if c := cap(f.(*stream).buf); c != MaxScan+1 {
				t.Errorf("chunk %d: frame buffer is %d bytes, want MaxScan+1", size, c)
			}
		}
	})
	t.Run("64 KiB without terminator, a gap, then the next scan", func(t *testing.T) {
		f := mustNew(t, Config{})
		out := f.Feed(bytes.Repeat([]byte{'J'}, 64<<10), nil)
		out = f.Expire(out)
		out = f.Feed([]byte("GOOD\r"), out)
		expect(t, out, fmt.Sprintf("drop too_long %d", 64<<10), `scan "GOOD"`)
	})
	t.Run("terminator split at the point the frame overflows", func(t *testing.T) {
		// MaxScan 4, CRLF: the frame holds 6 bytes. "xxxxx\r" fills it; "\n" overflows it
		// and must still end the junk.
		c := Config{MaxScan: 4, Suffix: []byte("\r\n")}
		sameEverySplit(t, c, []byte("xxxxx\r\nok\r\n"), "drop too_long 7", `scan "ok"`)
		sameEverySplit(t, c, []byte("xxxxxx\r\r\nok\r\n"), "drop too_long 9", `scan "ok"`)
	})
	t.Run("a terminator that overlaps itself, while discarding", func(t *testing.T) {
		// After "\r\r", a third "\r" still leaves "\r\r" matched: the junk ends at "\n".
		c := Config{MaxScan: 2, Suffix: []byte("\r\r\n")}
		sameEverySplit(t, c, []byte("xxxxxxx\r\r\r\nok\r\r\n"), "drop too_long 11", `scan "ok"`)
	})
}

func TestLineStaleAndReset(t *testing.T) {
	f := mustNew(t, Config{})
	expect(t, f.Expire(nil))
	expect(t, f.Feed([]byte("par"), nil))
	expect(t, f.Expire(nil), "drop stale_partial 3")
	expect(t, f.Feed([]byte("tial\r"), nil), `scan "tial"`)
	expect(t, f.Feed([]byte("cut"), nil))
	expect(t, f.Reset(nil), "drop disconnected 3")
	expect(t, f.Reset(nil))
	long := bytes.Repeat([]byte{'x'}, MaxScan+10)
	f.Feed(long, nil)
	expect(t, f.Reset(nil), fmt.Sprintf("drop disconnected %d", len(long)))
	expect(t, f.Feed([]byte("ok\r"), nil), `scan "ok"`)
}

func TestLineScanDataIsFresh(t *testing.T) {
	f := mustNew(t, Config{AIM: true})
	in := []byte("]Q1keep\r")
	out := f.Feed(in, nil)
	kept := out[0].Data
	copy(in, "]Q1XXXX\r") // the driver reuses its read buffer
	f.Feed(in, nil)
	if string(kept) != "keep" {
		t.Errorf("kept scan changed to %q", kept)
	}
	_ = append(kept, "!!!!"...) // the caller may append to its scan
	expect(t, f.Feed([]byte("]Q1more\r"), nil), `scan "more" ]Q1`)
}

func TestIdle(t *testing.T) {
	c := Config{Type: "idle", Gap: 50e6, AIM: true}
	f := mustNew(t, c)
	expect(t, feedChunks(f, []byte("]Q1HEL\rLO"), 2))
	expect(t, f.Expire(nil), `scan "HEL\rLO" ]Q1`)
	expect(t, f.Expire(nil))
	expect(t, f.Feed([]byte("]d1"), nil))
	expect(t, f.Expire(nil), "drop empty 3")

	t.Run("optional suffix", func(t *testing.T) {
		f := mustNew(t, Config{Type: "idle", Gap: 50e6, Suffix: []byte("\r\n")})
		expect(t, f.Expire(f.Feed([]byte("A\r\n"), nil)), `scan "A"`)
		expect(t, f.Expire(f.Feed([]byte("B"), nil)), `scan "B"`)
	})
	t.Run("too long, then the next scan", func(t *testing.T) {
		f := mustNew(t, Config{Type: "idle", Gap: 50e6, MaxScan: 8})
		out := feedChunks(f, bytes.Repeat([]byte{'z'}, 10<<10), 100)
		out = f.Expire(out)
		out = f.Expire(f.Feed([]byte("12345678"), out))
		out = f.Expire(f.Feed([]byte("123456789"), out))
		expect(t, out, fmt.Sprintf("drop too_long %d", 10<<10), `scan "12345678"`, "drop too_long 9")
	})
	t.Run("replies", func(t *testing.T) {
		f := mustNew(t, Config{Type: "idle", Gap: 50e6, Ignore: [][]byte{{6}, hx(t, "02 00 00 01 00 33 31")}})
		expect(t, f.Expire(f.Feed([]byte{6}, nil)))
		expect(t, f.Expire(f.Feed([]byte{6, 'S', 6}, nil)), `scan "S\x06"`)
		expect(t, f.Expire(f.Feed([]byte{2, 0}, nil)), "drop stale_partial 2")
	})
	t.Run("reset", func(t *testing.T) {
		f := mustNew(t, c)
		f.Feed([]byte("half"), nil)
		expect(t, f.Reset(nil), "drop disconnected 4")
		expect(t, f.Expire(nil))
	})
}
