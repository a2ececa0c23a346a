package ssi_test

import (
	"fmt"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

func ExampleParse() {
	p, n, err := ssi.Parse([]byte{0x08, 0xF3, 0x00, 0x20, 0x1C, 'E', 'H', 'C', 0xFD, 0xF9, 0x99})
	fmt.Println(n, err)
	fmt.Printf("opcode %02X status %02X type %s data %q\n", p.Opcode, p.Status, ssi.TypeName(p.Data[0]), p.Data[1:])
	// Output:
	// 10 <nil>
	// opcode F3 status 20 type qr data "EHC"
}

func ExampleFramer() {
	f := ssi.NewFramer(4096)
	// A DECODE_DATA packet as a scanner sends it: the framer asks for an ACK and gives the scan.
	for _, e := range f.Feed([]byte{0x08, 0xF3, 0x00, 0x20, 0x1C, 'E', 'H', 'C', 0xFD, 0xF9}, nil) {
		switch e.Kind {
		case ssi.EventReply:
			fmt.Printf("write % X\n", e.Data)
		case ssi.EventScan:
			fmt.Printf("scan %s %q\n", ssi.TypeName(e.Type), e.Data)
		}
	}
	// Output:
	// write 04 D0 04 00 FF 28
	// scan qr "EHC"
}
