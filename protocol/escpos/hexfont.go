package escpos

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
)

// UnifontPath is where Debian's unifont package puts GNU Unifont in .hex form.
const UnifontPath = "/usr/share/unifont/unifont.hex"

// Font holds bitmaps for characters the built-in ASCII font lacks, as GNU Unifont's
// .hex format gives them (Debian's unifont package: /usr/share/unifont/unifont.hex):
// 16 rows a glyph, each row one byte (8 dots wide) or two (16 dots).
type Font map[rune][]byte

// ParseHexFont reads the glyphs of a .hex font ("4E2D:0100…", one per line) that need
// asks for; a whole Unifont is 3.7 MB and a receipt needs a few dozen of its characters.
func ParseHexFont(data []byte, need func(rune) bool) (Font, error) {
	f := Font{}
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		cp, bits, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return nil, fmt.Errorf("escpos: hex font line %d has no ':'", n)
		}
		r, err := strconv.ParseUint(string(cp), 16, 32)
		if err != nil || r > 0x10FFFF {
			return nil, fmt.Errorf("escpos: hex font line %d: bad code point %q", n, cp)
		}
		if !need(rune(r)) {
			continue
		}
		if len(bits) != 32 && len(bits) != 64 {
			return nil, fmt.Errorf("escpos: hex font line %d: %d hex digits, not 32 or 64", n, len(bits))
		}
		g := make([]byte, len(bits)/2)
		if _, err := hex.Decode(g, bits); err != nil {
			return nil, fmt.Errorf("escpos: hex font line %d: %v", n, err)
		}
		f[rune(r)] = g
	}
	return f, nil
}

// Runes is every character of d's text, for ParseHexFont's need.
func (d *Document) Runes() map[rune]bool {
	m := map[rune]bool{}
	for _, b := range d.Blocks {
		for _, r := range b.Text {
			m[r] = true
		}
	}
	return m
}

// draw puts glyph g of c in a cell cells×cellW wide and cellH high at (x, y), scaled
// w×h; false when the font has no such glyph.
func (f Font) draw(r *renderer, c rune, x, y, cells, w, h int, bold bool) bool {
	g, ok := f[c]
	if !ok {
		return false
	}
	per := len(g) / 16 // bytes a row: 1 or 2
	gw := 8 * per
	// 16 rows into a 22-dot-high box inside the 24-dot cell, nearest neighbour; the
	// width keeps the glyph's proportions.
	const boxH = 22
	boxW := gw * boxH / 16
	x0 := x + (cells*cellW-boxW)/2*w
	y0 := y + (cellH-boxH)/2*h
	for dy := 0; dy < boxH; dy++ {
		row := g[dy*16/boxH*per:]
		for dx := 0; dx < boxW; dx++ {
			sx := dx * gw / boxW
			if row[sx/8]&(0x80>>(sx%8)) == 0 {
				continue
			}
			r.rect(x0+dx*w, y0+dy*h, w, h)
			if bold {
				r.rect(x0+dx*w+1, y0+dy*h, w, h)
			}
		}
	}
	return true
}
