package escpos

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"unicode/utf8"

	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

// Render geometry, in printer dots: font A cells (12×24 for ASCII, 24×24 for Chinese
// characters) and the default line spacing of about 1/6 inch.
const (
	cellW, cellH = 12, 24
	lineGap      = 6
	margin       = 16
	// MaxRenderHeight bounds a rendering: 2 m of paper.
	MaxRenderHeight = 2000 * DotsPerMM
)

// Render draws d as a printer printing printWidth dots per line would: one pixel per
// dot, black on white, text lines wrapped at the paper's edge, each QR symbol
// rasterised from its stored payload with its module size and level, a dashed line at
// each cut. ASCII is drawn with a small built-in font, other characters with font
// (see ParseHexFont) when it has them, and as boxes of their printed width otherwise,
// which keeps the layout true. A symbol wider than the paper, a model other than 2 or a
// rendering over MaxRenderHeight is an error.
func Render(d *Document, printWidth int, font Font) (*image.Paletted, error) {
	if printWidth < 64 || printWidth > 2048 {
		return nil, fmt.Errorf("escpos: print width %d is outside 64..2048 dots", printWidth)
	}
	r := renderer{width: printWidth, font: font}
	if err := r.layout(d); err != nil {
		return nil, err
	}
	r.img = image.NewPaletted(image.Rect(0, 0, printWidth, r.y), color.Palette{color.White, color.Black})
	r.y = 0
	if err := r.layout(d); err != nil {
		return nil, err
	}
	return r.img, nil
}

// RenderPNG is Render encoded as a PNG.
func RenderPNG(d *Document, printWidth int, font Font) ([]byte, error) {
	img, err := Render(d, printWidth, font)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// renderer lays the document out twice: once without an image to measure it, once
// drawing.
type renderer struct {
	width int
	y     int
	img   *image.Paletted // nil while measuring
	font  Font
}

func (r *renderer) layout(d *Document) error {
	r.y = margin
	for _, b := range d.Blocks {
		switch b.Kind {
		case BlockText:
			r.text(b)
		case BlockFeed:
			r.y += b.Lines * (cellH + lineGap)
		case BlockQR:
			if err := r.qr(b); err != nil {
				return err
			}
		case BlockCut:
			r.y += margin
			if r.img != nil {
				for x := 0; x < r.width; x += 8 {
					r.rect(x, r.y, 4, 1)
				}
			}
			r.y += margin
		}
		if r.y > MaxRenderHeight {
			return errors.New("escpos: rendering over the height limit")
		}
	}
	r.y += margin
	return nil
}

// text draws one line, wrapped into as many printed lines as it takes.
func (r *renderer) text(b Block) {
	w, h := max(b.Width, 1), max(b.High, 1)
	type glyph struct {
		r     rune
		cells int
	}
	var rows [][]glyph
	var row []glyph
	used := 0
	for _, c := range b.Text {
		n := 1
		if c >= 0x80 {
			n = 2
		}
		if used+n*cellW*w > r.width && len(row) > 0 {
			rows, row, used = append(rows, row), nil, 0
		}
		row = append(row, glyph{c, n})
		used += n * cellW * w
	}
	rows = append(rows, row)
	for _, row := range rows {
		x := 0
		rowW := 0
		for _, g := range row {
			rowW += g.cells * cellW * w
		}
		switch b.Align {
		case Center:
			x = (r.width - rowW) / 2
		case Right:
			x = r.width - rowW
		}
		for _, g := range row {
			if r.img != nil && !r.font.draw(r, g.r, x, r.y, g.cells, w, h, b.Bold) {
				r.glyph(g.r, x, r.y, w, h, b.Bold)
			}
			x += g.cells * cellW * w
		}
		r.y += cellH*h + lineGap
		if r.y > MaxRenderHeight {
			return
		}
	}
}

// glyph draws c in its cell at (x, y), scaled w×h.
func (r *renderer) glyph(c rune, x, y, w, h int, bold bool) {
	if c >= 0x80 || c == utf8.RuneError {
		// A box two cells wide: a character the built-in font cannot draw.
		bw, bh := (2*cellW-4)*w, (cellH-4)*h
		x0, y0 := x+2*w, y+2*h
		r.rect(x0, y0, bw, 2)
		r.rect(x0, y0+bh-2, bw, 2)
		r.rect(x0, y0, 2, bh)
		r.rect(x0+bw-2, y0, 2, bh)
		return
	}
	cols := font5x7(c)
	const s = 2 // font pixels are 2×2 dots in a 12×24 cell
	for col, bits := range cols {
		for row := 0; row < 7; row++ {
			if bits&(1<<row) == 0 {
				continue
			}
			px, py := x+(1+col*s)*w, y+(5+row*s)*h
			r.rect(px, py, s*w, s*h)
			if bold {
				r.rect(px+1, py, s*w, s*h)
			}
		}
	}
}

func (r *renderer) qr(b Block) error {
	q := b.QR
	if q.Model != 2 {
		return fmt.Errorf("escpos: QR model %d is not rendered (only model 2)", q.Model)
	}
	s, err := qrimage.Encode(q.Payload, q.Level)
	if err != nil {
		return err
	}
	side := s.Size * q.ModuleSize
	if (s.Size+2*qrimage.QuietZone)*q.ModuleSize > r.width {
		return fmt.Errorf("escpos: a %d-module QR symbol at %d dots a module is wider than the paper (%d dots)", s.Size, q.ModuleSize, r.width)
	}
	x0 := 0
	switch b.Align {
	case Center:
		x0 = (r.width - side) / 2
	case Right:
		x0 = r.width - side
	}
	x0 = min(max(x0, qrimage.QuietZone*q.ModuleSize), r.width-side-qrimage.QuietZone*q.ModuleSize)
	r.y += qrimage.QuietZone * q.ModuleSize
	if r.img != nil {
		for y := 0; y < s.Size; y++ {
			for x := 0; x < s.Size; x++ {
				if s.Dark(x, y) {
					r.rect(x0+x*q.ModuleSize, r.y+y*q.ModuleSize, q.ModuleSize, q.ModuleSize)
				}
			}
		}
	}
	r.y += side + qrimage.QuietZone*q.ModuleSize
	return nil
}

// rect blackens a w×h rectangle, clipped to the image.
func (r *renderer) rect(x, y, w, h int) {
	b := r.img.Rect
	for yy := max(y, b.Min.Y); yy < min(y+h, b.Max.Y); yy++ {
		for xx := max(x, b.Min.X); xx < min(x+w, b.Max.X); xx++ {
			r.img.Pix[yy*r.img.Stride+xx] = 1
		}
	}
}
