package vcard

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"sync"
)

// Portrait is a small generated JPEG (102 × 126, the size of an RHC photo) that fits
// EF07 with room to spare; the same bytes every time.
var Portrait = sync.OnceValue(func() []byte {
	const w, h = 102, 126
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// A light background, a head and shoulders: enough for a kiosk to show
			// that the photo arrived.
			dx, dy := x-w/2, y-h*2/5
			v := uint8(220 - y/3)
			switch {
			case dx*dx*5+dy*dy*3 < 1600*3:
				v = 150
			case y > h*3/4 && dx*dx < (y-h*3/4+20)*(y-h*3/4+20):
				v = 70
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	for q := 60; ; q -= 10 {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
			panic(err)
		}
		if b.Len() <= 2048 || q <= 10 {
			return b.Bytes()
		}
	}
})
