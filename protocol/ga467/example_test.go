package ga467_test

import (
	"fmt"

	"github.com/ehc-agent/ehc-agent/protocol/ga467"
)

func ExampleParseFrame() {
	// A reader's answer to FindCard when a card is in the field (CARDS.md).
	wire := []byte{0xAA, 0xAA, 0xAA, 0x96, 0x69, 0x00, 0x08, 0x00, 0x00, 0x9F, 0x00, 0x00, 0x00, 0x00, 0x97}
	body, n, err := ga467.ParseFrame(wire)
	fmt.Println(n, err)
	a, _ := ga467.ParseAnswer(body)
	fmt.Printf("SW3 %02X, %d data bytes, reason %q\n", a.SW3, len(a.Data), ga467.StatusReason(a.SW3))
	// Output:
	// 15 <nil>
	// SW3 9F, 4 data bytes, reason ""
}

func ExampleDecoder() {
	var d ga467.Decoder
	// Line noise, then a "no card" answer split across two reads.
	for _, chunk := range [][]byte{{0x13, 0x37, 0xAA, 0xAA, 0xAA, 0x96}, {0x69, 0x00, 0x04, 0x00, 0x00, 0x80, 0x84}} {
		for _, e := range d.Feed(chunk, nil) {
			switch e.Kind {
			case ga467.EventDrop:
				fmt.Printf("dropped %d bytes: %s\n", e.Dropped, e.Reason)
			case ga467.EventFrame:
				a, _ := ga467.ParseAnswer(e.Body)
				fmt.Printf("answer %02X: %s\n", a.SW3, ga467.StatusReason(a.SW3))
			}
		}
	}
	// Output:
	// dropped 2 bytes: noise
	// answer 80: no_card
}

func ExampleParseCard() {
	card := ga467.IDCard{
		Name: "王喆", Gender: "1", Ethnicity: "01", BirthDate: "19900307",
		Address: "北京市海淀区中关村大街27号", IDNumber: "11010819900307123X", Authority: "北京市公安局海淀分局",
		ValidFrom: "20150307", ValidTo: ga467.LongTerm, Photo: make([]byte, 1024),
	}
	wire, _ := card.ReadAnswer() // what a reader sends after ReadCard
	body, _, _ := ga467.ParseFrame(wire)
	a, _ := ga467.ParseAnswer(body)
	got, err := ga467.ParseCard(a.Data)
	fmt.Println(len(wire), err, got.Gender, got.ValidTo, len(got.Photo))
	// Output:
	// 1295 <nil> 1 长期 1024
}
