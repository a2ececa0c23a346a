package framing_test

import (
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// A driver's loop, without the port: Feed what was read, write replies back, hand scans up.
func Example() {
	f, err := framing.New(framing.Config{
		Type:   "line",
		Suffix: []byte("\r\n"),
		AIM:    true,
		Ignore: [][]byte{{0x02, 0x00, 0x00, 0x01, 0x00, 0x33, 0x31}}, // 7E00 trigger reply
	})
	if err != nil {
		panic(err)
	}
	var out []framing.Output
	for _, read := range []string{"\x02\x00\x00\x01\x00\x33\x31]Q1EHC1:AB", "CD\r\n\r\n"} {
		out = f.Feed([]byte(read), out[:0])
		for _, o := range out {
			switch o.Kind {
			case framing.KindScan:
				fmt.Printf("scan %q %s (%s)\n", o.Data, o.AIM, framing.Symbology(o.AIM))
			case framing.KindReply:
				fmt.Printf("write % X\n", o.Data)
			case framing.KindDrop:
				fmt.Printf("drop %s, %d bytes\n", o.Reason, o.Dropped)
			}
		}
	}
	// Output:
	// scan "EHC1:ABCD" ]Q1 (qr)
	// drop empty, 2 bytes
}

// Idle framing: the driver calls Expire when no byte has arrived for Timeout().
func Example_idle() {
	f, _ := framing.New(framing.Config{Type: "idle", Gap: 50 * time.Millisecond})
	out := f.Feed([]byte("NO-SUFFIX"), nil)
	fmt.Println(len(out), f.Timeout())
	out = f.Expire(out)
	fmt.Printf("%q\n", out[0].Data)
	// Output:
	// 0 50ms
	// "NO-SUFFIX"
}

func ExampleParseSuffix() {
	for _, s := range []string{"cr", "crlf", "0D 0A", "03"} {
		b, _ := framing.ParseSuffix(s)
		fmt.Printf("% X\n", b)
	}
	// Output:
	// 0D
	// 0D 0A
	// 0D 0A
	// 03
}
