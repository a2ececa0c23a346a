package escpos

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

// Control bytes.
const (
	HT  = 0x09
	LF  = 0x0A
	CR  = 0x0D
	DLE = 0x10
	EOT = 0x04
	ESC = 0x1B
	FS  = 0x1C
	GS  = 0x1D
)

// Align is the justification of a line or a symbol (`ESC a n`).
type Align byte

const (
	Left Align = iota
	Center
	Right
)

func (a Align) String() string {
	switch a {
	case Left:
		return "left"
	case Center:
		return "center"
	case Right:
		return "right"
	}
	return fmt.Sprintf("Align(%d)", byte(a))
}

// MaxQRData is the most a `GS ( k` store function may carry (7,089 numeric digits at
// level L), whatever the printer can really fit.
const MaxQRData = 7089

// Builder writes an ESC/POS job. Errors are sticky: the first one is returned by Bytes
// and every call after it does nothing, so a receipt is written without an error check
// per line. The zero value is ready to use.
type Builder struct {
	buf     []byte
	chinese bool
	err     error
}

// Bytes returns the job, or the first error.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return bytes.Clone(b.buf), nil
}

func (b *Builder) add(p ...byte) {
	if b.err == nil {
		b.buf = append(b.buf, p...)
	}
}

func (b *Builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("escpos: "+format, args...)
	}
}

// Init resets the printer (`ESC @`): modes, alignment and emphasis back to defaults.
// The Chinese character mode is off afterwards, as far as the Builder assumes.
func (b *Builder) Init() {
	b.add(ESC, '@')
	b.chinese = false
}

// Chinese turns the Chinese character mode on (`FS &`) or off (`FS .`): on, bytes ≥ 0x80
// are GBK.
func (b *Builder) Chinese(on bool) {
	if on {
		b.add(FS, '&')
	} else {
		b.add(FS, '.')
	}
	b.chinese = on
}

// Align sets the justification (`ESC a n`); printers apply it from the next line on.
func (b *Builder) Align(a Align) {
	if a > Right {
		b.fail("alignment %d is not left, center or right", a)
		return
	}
	b.add(ESC, 'a', byte(a))
}

// Bold turns emphasis on or off (`ESC E n`).
func (b *Builder) Bold(on bool) {
	b.add(ESC, 'E', boolByte(on))
}

// Double turns double width and height on (`GS ! 11`) or back to normal (`GS ! 00`).
func (b *Builder) Double(on bool) {
	if on {
		b.add(GS, '!', 0x11)
	} else {
		b.add(GS, '!', 0x00)
	}
}

// Text writes s without ending the line: ASCII as is, anything else as GBK, which needs
// the Chinese character mode. Control characters, and characters GBK lacks, are errors:
// a printer would act on the first and print garbage for the second.
func (b *Builder) Text(s string) {
	if b.err != nil {
		return
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			b.fail("text %q is not valid UTF-8 at byte %d", s, i)
			return
		case r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0):
			b.fail("text %q has the control character %U at byte %d", s, r, i)
			return
		case r >= 0x80 && !b.chinese:
			b.fail("text %q needs the Chinese character mode for %q", s, r)
			return
		}
	}
	enc, err := simplifiedchinese.GBK.NewEncoder().String(s)
	if err != nil {
		b.fail("text %q has a character GBK lacks", s)
		return
	}
	b.add([]byte(enc)...)
}

// Line writes s and ends the line (LF), which prints it.
func (b *Builder) Line(s string) {
	b.Text(s)
	b.add(LF)
}

// Feed prints n empty lines (n LF: understood by every printer, unlike `ESC d`).
func (b *Builder) Feed(n int) {
	if n < 0 || n > 255 {
		b.fail("feed of %d lines is outside 0..255", n)
		return
	}
	for range n {
		b.add(LF)
	}
}

// QR stores payload as a model 2 QR code with the given module size (1–16 dots) and
// error correction level, and prints it (`GS ( k`, functions 165, 167, 169, 180, 181),
// justified by the current alignment.
func (b *Builder) QR(payload []byte, moduleSize int, level qrimage.Level) {
	switch {
	case len(payload) == 0:
		b.fail("empty QR payload")
		return
	case len(payload) > MaxQRData:
		b.fail("QR payload of %d bytes is over %d", len(payload), MaxQRData)
		return
	case bytes.Contains(payload, []byte{DLE, EOT}):
		// A printer takes 10 04 n as a real-time status request wherever it occurs.
		b.fail("QR payload holds the real-time command bytes 10 04")
		return
	case moduleSize < 1 || moduleSize > 16:
		b.fail("QR module size %d is outside 1..16", moduleSize)
		return
	case level > qrimage.H:
		b.fail("QR error correction level %d is not L, M, Q or H", level)
		return
	}
	b.add(GS, '(', 'k', 4, 0, 0x31, 0x41, 0x32, 0x00)
	b.add(GS, '(', 'k', 3, 0, 0x31, 0x43, byte(moduleSize))
	b.add(GS, '(', 'k', 3, 0, 0x31, 0x45, 0x30+byte(level))
	n := len(payload) + 3
	b.add(GS, '(', 'k', byte(n), byte(n>>8), 0x31, 0x50, 0x30)
	b.add(payload...)
	b.add(GS, '(', 'k', 3, 0, 0x31, 0x51, 0x30)
}

// Cut feeds the paper past the cutter and cuts it partially (`GS V 66 0`).
func (b *Builder) Cut() {
	b.add(GS, 'V', 0x42, 0x00)
}

func boolByte(on bool) byte {
	if on {
		return 1
	}
	return 0
}

// gbkSafe replaces every character GBK lacks (rare characters of names, emoji) with '?':
// a receipt with one unprintable character is still worth printing.
func gbkSafe(s string) string {
	enc := simplifiedchinese.GBK.NewEncoder()
	var out []rune
	changed := false
	for _, r := range s {
		if r >= 0x80 {
			if _, err := enc.String(string(r)); err != nil {
				r, changed = '?', true
			}
		} else if r < 0x20 || r == 0x7F {
			r, changed = '?', true
		}
		out = append(out, r)
	}
	if !changed {
		return s
	}
	return string(out)
}
