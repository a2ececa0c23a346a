package escpos

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// artifact is where a rendering is kept after the test: $EHC_TEST_ARTIFACTS, or a
// directory in the system's temporary directory.
func artifact(t *testing.T, name string) string {
	dir := os.Getenv("EHC_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ehc-agent-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// loadFont reads the glyphs d needs from GNU Unifont when the unifont package is
// installed; without it Chinese characters are drawn as boxes.
func loadFont(t *testing.T, d *Document) Font {
	data, err := os.ReadFile(UnifontPath)
	if err != nil {
		t.Logf("no %s: Chinese characters drawn as boxes", UnifontPath)
		return nil
	}
	runes := d.Runes()
	f, err := ParseHexFont(data, func(r rune) bool { return runes[r] })
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// decodeQR finds and reads the QR code in a whole page with gozxing, an independent
// decoder, as a phone camera would.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	return res.GetText()
}

// The receipt, parsed and rendered as the printer prints it, decodes back to the code.
func TestRenderedReceiptDecodes(t *testing.T) {
	for _, width := range []int{Dots58mm, Dots80mm} {
		r := testReceipt()
		r.PrintWidth = width
		job, err := r.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		d, err := Parse(job)
		if err != nil {
			t.Fatal(err)
		}
		p, err := RenderPNG(d, width, loadFont(t, d))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() != width {
			t.Fatalf("rendered %d dots wide", img.Bounds().Dx())
		}
		if got := decodeQR(t, img); got != testCode {
			t.Fatalf("width %d: decoded %q", width, got)
		}
		if width == Dots58mm {
			if err := os.WriteFile(artifact(t, "escpos-receipt-58mm.png"), p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	d := &Document{Blocks: []Block{{Kind: BlockQR, QR: &QR{Model: 2, ModuleSize: 16, Payload: bytes.Repeat([]byte("a"), 100)}}}}
	if _, err := Render(d, Dots58mm, nil); err == nil {
		t.Error("a symbol wider than the paper was rendered")
	}
	d.Blocks[0].QR = &QR{Model: 1, ModuleSize: 3, Payload: []byte("a")}
	if _, err := Render(d, Dots58mm, nil); err == nil {
		t.Error("model 1 was rendered")
	}
	if _, err := Render(&Document{}, 10, nil); err == nil {
		t.Error("10 dots accepted")
	}
	d = &Document{Blocks: []Block{{Kind: BlockFeed, Lines: 255}}}
	for range 10 {
		d.Blocks = append(d.Blocks, d.Blocks[0])
	}
	if _, err := Render(d, Dots58mm, nil); err == nil {
		t.Error("a rendering over the height limit")
	}
}

func TestParseHexFont(t *testing.T) {
	data := []byte("# comment\n0041:0000000018242442427E424242420000\n" +
		"4E2D:01000100010001003FF8210821082108210821083FF821080100010001000100\n\n")
	f, err := ParseHexFont(data, func(r rune) bool { return r == 0x4E2D })
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 1 || len(f[0x4E2D]) != 32 || f[0x4E2D][8] != 0x3F {
		t.Fatalf("font %v", f)
	}
	for _, bad := range []string{"4E2D", "XYZ:00", "0041:0000", "0041:00000000182424424" + "27E42424242000G"} {
		if _, err := ParseHexFont([]byte(bad), func(rune) bool { return true }); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Drawn with the font, the title is ink, not boxes: it differs from a rendering
	// without the font.
	d := &Document{Blocks: []Block{{Kind: BlockText, Text: "中", Width: 1, High: 1}}}
	a, _ := Render(d, Dots58mm, nil)
	b, _ := Render(d, Dots58mm, f)
	if bytes.Equal(a.Pix, b.Pix) {
		t.Fatal("the font changed nothing")
	}
}
