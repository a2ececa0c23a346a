package qrimage

import (
	"bytes"
	"image"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// decode reads a QR code from img with gozxing, a decoder independent of the encoder,
// finding the symbol as a camera app would. With pure, the image is taken to be the
// symbol and its quiet zone only: gozxing's finder-pattern search misses a few percent
// of flawless synthetic symbols (zbarimg reads those), which says nothing of the
// encoding, so round trips of random payloads read the grid directly.
func decode(t *testing.T, img image.Image, pure bool) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	if pure {
		hints = map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	return res.GetText()
}

// The code format the platform issues (64 hex digits, ':' and a digit).
const code = "E1D1A0B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5FBB18:1"

func TestQRPNGDecodesToTheCode(t *testing.T) {
	for _, size := range []int{MinPNGSize, 256, 300, 512, MaxPNGSize} {
		b, err := QRPNG(code, size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if r := img.Bounds(); r.Dx() != size || r.Dy() != size {
			t.Fatalf("size %d: image is %v", size, r)
		}
		if got := decode(t, img, false); got != code {
			t.Fatalf("size %d: decoded %q", size, got)
		}
	}
}

func TestQRPNGRefusesBadSizes(t *testing.T) {
	for _, size := range []int{0, -1, MinPNGSize - 1, MaxPNGSize + 1} {
		if _, err := QRPNG(code, size); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
	// A version 40 symbol (185 modules with its quiet zone) cannot fit 64 pixels.
	if _, err := QRPNG(strings.Repeat("a", 2000), 64); err == nil {
		t.Error("a symbol bigger than the image was accepted")
	}
	if _, err := QRPNG("", 256); err == nil {
		t.Error("empty code accepted")
	}
}

func TestVersions(t *testing.T) {
	// Alphanumeric 66 characters at M need version 4; as bytes, version 5.
	if v, err := Version([]byte(code), M); err != nil || v != 4 {
		t.Errorf("Version = %d, %v; want 4", v, err)
	}
	if v, err := ByteModeVersion(len(code), M); err != nil || v != 5 {
		t.Errorf("ByteModeVersion = %d, %v; want 5", v, err)
	}
	// Capacity edges from ISO/IEC 18004 table 7 (byte mode): version 1-M holds 14 bytes,
	// version 40-L 2,953.
	for _, c := range []struct {
		n     int
		level Level
		want  int
	}{{14, M, 1}, {15, M, 2}, {2953, L, 40}, {2331, M, 40}} {
		if v, err := ByteModeVersion(c.n, c.level); err != nil || v != c.want {
			t.Errorf("ByteModeVersion(%d, %v) = %d, %v; want %d", c.n, c.level, v, err, c.want)
		}
	}
	if _, err := ByteModeVersion(2332, M); err == nil {
		t.Error("2,332 bytes fit at M")
	}
	if _, err := Encode([]byte("x"), Level(4)); err == nil {
		t.Error("level 4 accepted")
	}
}

// Symbols of random payloads mixing digits, capitals and other bytes (so that the
// encoder switches modes) at every level decode back to the payload.
func TestEncodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"0123456789", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", "abcdefghijklmnopqrstuvwxyz!?#&"}
	for range 200 {
		var b strings.Builder
		n := 1 + rng.IntN(300)
		for b.Len() < n {
			a := alphabets[rng.IntN(len(alphabets))]
			for run := 1 + rng.IntN(20); run > 0; run-- {
				b.WriteByte(a[rng.IntN(len(a))])
			}
		}
		payload := b.String()
		level := Level(rng.IntN(4))
		s, err := Encode([]byte(payload), level)
		if err != nil {
			t.Fatalf("%q at %v: %v", payload, level, err)
		}
		if s.Size != 17+4*s.Version {
			t.Fatalf("size %d for version %d", s.Size, s.Version)
		}
		if got := decode(t, s.Image(3), true); got != payload {
			t.Fatalf("%q at %v decoded as %q", payload, level, got)
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add([]byte(code), byte(1))
	f.Add([]byte("0123456789"), byte(0))
	f.Add([]byte{0xff, 0x00, 0x10, 0x04}, byte(3))
	f.Fuzz(func(t *testing.T, payload []byte, level byte) {
		s, err := Encode(payload, Level(level%4))
		if err != nil {
			return
		}
		if s.Size != 17+4*s.Version || s.Version < 1 || s.Version > 40 {
			t.Fatalf("size %d version %d", s.Size, s.Version)
		}
	})
}
