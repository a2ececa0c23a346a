package qrimage_test

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

// The image behind GET /v1/applications/{id}/qr.png.
func ExampleQRPNG() {
	b, err := qrimage.QRPNG("4F1C7A0E9B3D52A6C8E1F0B7D4A29C3E5F7081A2B3C4D5E6F708192A3B4C5D6E:1", 256)
	if err != nil {
		panic(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	fmt.Println(img.Bounds().Dx(), "×", img.Bounds().Dy())
	// Output: 256 × 256
}
