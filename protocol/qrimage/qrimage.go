// Package qrimage turns a payload into a QR code symbol (ISO/IEC 18004, model 2) and a
// PNG of it: the symbol a receipt printer prints for `GS ( k` (PRINTERS.md), and the
// image the local API serves as GET /v1/applications/{id}/qr.png (PLATFORM.md, Card
// application).
//
// Encoding is github.com/skip2/go-qrcode, which picks the smallest version for the
// payload with mixed numeric / alphanumeric / byte segments, as printers do. The package
// is pure: no I/O, bounded work (a symbol is at most 177×177 modules, an image at most
// MaxPNGSize pixels square), and a panic inside the encoder is returned as an error.
package qrimage

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// Level is an error correction level.
type Level byte

// Error correction levels, as `GS ( k … 31 45 n` numbers them (n = '0' + Level).
const (
	L Level = iota // ~7 % recovery
	M              // ~15 %: PRINTERS.md's choice for receipts
	Q              // ~25 %
	H              // ~30 %
)

func (l Level) String() string {
	if l <= H {
		return string("LMQH"[l])
	}
	return fmt.Sprintf("Level(%d)", byte(l))
}

func (l Level) recovery() (qrcode.RecoveryLevel, error) {
	switch l {
	case L:
		return qrcode.Low, nil
	case M:
		return qrcode.Medium, nil
	case Q:
		return qrcode.High, nil
	case H:
		return qrcode.Highest, nil
	}
	return 0, fmt.Errorf("qrimage: error correction level %d is not L, M, Q or H", byte(l))
}

// QuietZone is the white border, in modules, a reader needs around a symbol.
const QuietZone = 4

// MaxPayload is the most a model 2 symbol holds (version 40, level L, byte mode).
const MaxPayload = 2953

// ErrTooLong means the payload does not fit in any version at the level asked.
var ErrTooLong = errors.New("qrimage: payload too long for a QR code at this level")

// Symbol is an encoded QR code, without its quiet zone.
type Symbol struct {
	Version int // 1–40
	Size    int // modules per side: 17 + 4·Version
	dark    []bool
}

// Dark reports whether the module at column x, row y is dark; outside the symbol
// (the quiet zone) everything is light.
func (s *Symbol) Dark(x, y int) bool {
	if x < 0 || y < 0 || x >= s.Size || y >= s.Size {
		return false
	}
	return s.dark[y*s.Size+x]
}

// Encode makes the symbol a printer or a screen shows for payload at level.
func Encode(payload []byte, level Level) (s *Symbol, err error) {
	rl, err := level.recovery()
	if err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		return nil, errors.New("qrimage: empty payload")
	}
	if len(payload) > MaxPayload {
		return nil, ErrTooLong
	}
	// The encoder reports its own inconsistencies with log.Panic; a payload must never
	// take the agent or the virtual printer down with it.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("qrimage: encoder failed: %v", r)
		}
	}()
	q, err := qrcode.New(string(payload), rl)
	if err != nil {
		return nil, ErrTooLong
	}
	q.DisableBorder = true
	bm := q.Bitmap() // once only: each call appends terminator bits again
	n := len(bm)
	if n != 17+4*q.VersionNumber {
		return nil, fmt.Errorf("qrimage: encoder gave %d modules for version %d", n, q.VersionNumber)
	}
	s = &Symbol{Version: q.VersionNumber, Size: n, dark: make([]bool, n*n)}
	for y, row := range bm {
		copy(s.dark[y*n:], row)
	}
	return s, nil
}

// Version is the smallest version that holds payload at level, as Encode would choose.
func Version(payload []byte, level Level) (int, error) {
	rl, err := level.recovery()
	if err != nil {
		return 0, err
	}
	if len(payload) == 0 || len(payload) > MaxPayload {
		return 0, ErrTooLong
	}
	q, err := qrcode.New(string(payload), rl)
	if err != nil {
		return 0, ErrTooLong
	}
	return q.VersionNumber, nil
}

// ByteModeVersion is the smallest version that holds n bytes at level in byte mode
// only. Some printers never switch to the alphanumeric or numeric mode, and so print a
// bigger symbol than Version says: module sizes are chosen to suit both.
func ByteModeVersion(n int, level Level) (int, error) {
	if n <= 0 || n > MaxPayload {
		return 0, ErrTooLong
	}
	// Lower-case letters are outside the alphanumeric set, so the encoder has no
	// choice but one byte-mode segment of the same length.
	return Version([]byte(strings.Repeat("a", n)), level)
}

// Image draws s with scale pixels per module and the quiet zone around it.
func (s *Symbol) Image(scale int) *image.Paletted {
	side := (s.Size + 2*QuietZone) * scale
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	for y := 0; y < s.Size; y++ {
		for x := 0; x < s.Size; x++ {
			if s.Dark(x, y) {
				fill(img, (x+QuietZone)*scale, (y+QuietZone)*scale, scale)
			}
		}
	}
	return img
}

func fill(img *image.Paletted, x0, y0, n int) {
	for y := y0; y < y0+n; y++ {
		row := img.Pix[y*img.Stride:]
		for x := x0; x < x0+n; x++ {
			row[x] = 1
		}
	}
}

// PNG sizes for QRPNG.
const (
	MinPNGSize = 64
	MaxPNGSize = 2048
)

// QRPNG is a size×size black-on-white PNG of code's QR symbol at level M, for a screen:
// every module is the same whole number of pixels (a scaled symbol with uneven modules
// reads worse on phone cameras), centred, with at least the 4-module quiet zone. size
// must be MinPNGSize–MaxPNGSize and leave at least one pixel per module.
func QRPNG(code string, size int) ([]byte, error) {
	if size < MinPNGSize || size > MaxPNGSize {
		return nil, fmt.Errorf("qrimage: size %d is outside %d..%d", size, MinPNGSize, MaxPNGSize)
	}
	s, err := Encode([]byte(code), M)
	if err != nil {
		return nil, err
	}
	scale := size / (s.Size + 2*QuietZone)
	if scale < 1 {
		return nil, fmt.Errorf("qrimage: size %d is too small for a %d-module symbol (at least %d)", size, s.Size, s.Size+2*QuietZone)
	}
	sym := s.Image(scale)
	img := image.NewPaletted(image.Rect(0, 0, size, size), sym.Palette)
	off := (size - sym.Rect.Dx()) / 2
	for y := 0; y < sym.Rect.Dy(); y++ {
		copy(img.Pix[(y+off)*img.Stride+off:], sym.Pix[y*sym.Stride:y*sym.Stride+sym.Rect.Dx()])
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
