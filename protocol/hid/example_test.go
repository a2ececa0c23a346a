package hid_test

import (
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/hid"
)

// A Honeywell scan of 60 bytes arrives in two 64-byte reports, the first with the
// continuation flag set.
func ExamplePOS() {
	p, _ := hid.NewPOS(hid.POSConfig{Layout: hid.Honeywell, Gap: 200 * time.Millisecond})
	data := []byte("HC1:6BFOXN*TS0BI$ZD-PHQ7I9AD66V5B22CH9M9ESI9XBHXK-%69LQOGI.*V76GLV")
	var out []framing.Output
	for len(data) > 0 {
		r := make([]byte, hid.ReportLen)
		n := copy(r[5:61], data)
		r[0], r[1] = 0x02, byte(n)
		copy(r[2:5], "]Q1")
		if n < len(data) {
			r[63] = 0x01 // more data follows
		}
		out = p.Feed(r, out)
		data = data[n:]
	}
	fmt.Printf("%s %s\n", out[0].AIM, out[0].Data)
	// Output: ]Q1 HC1:6BFOXN*TS0BI$ZD-PHQ7I9AD66V5B22CH9M9ESI9XBHXK-%69LQOGI.*V76GLV
}

// A wedge scanner types "Hi" and Enter: Shift+h, release, i, release, Enter.
func ExampleKeyboard() {
	k, _ := hid.NewKeyboard(hid.KeyboardConfig{Gap: 100 * time.Millisecond})
	var out []framing.Output
	for _, r := range [][]byte{
		{0x02, 0, 0x0B, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0},
		{0x00, 0, 0x0C, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0},
		{0x00, 0, 0x28, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0},
	} {
		out = k.Feed(r, out)
	}
	fmt.Printf("%s\n", out[0].Data)
	// Output: Hi
}

// The same scanner exposes a 0x8C and a 0xFF8C interface: the report descriptor tells
// which one scans.
func ExampleParseDescriptor() {
	d, _ := hid.ParseDescriptor([]byte{0x06, 0x8C, 0xFF, 0x09, 0x01, 0xA1, 0x01, 0xC0})
	fmt.Println(d.HasPage(hid.PagePOS), d.HasPage(hid.PageVendorPOS))
	// Output: false true
}
