package apdu_test

import (
	"fmt"

	"github.com/ehc-agent/ehc-agent/protocol/apdu"
)

// Reading the social security number of CARDS.md's example: READ RECORD by record
// identifier 08 through SFI 6, Le = 18 + 2.
func ExampleCommand() {
	b, _ := apdu.Command{INS: 0xB2, P1: 0x08, P2: 6 << 3, Ne: 18 + 2}.Bytes()
	fmt.Printf("% X\n", b)
	// Output: 00 B2 08 30 14
}

func ExampleParseRecord() {
	answer := []byte{0x0E, 0x04, 0x19, 0x80, 0x01, 0x01} // RHC EF06 record 4, birth date
	v, err := apdu.ParseRecord(answer, 0x0E, 4)
	if err != nil {
		panic(err)
	}
	date, _ := apdu.BCD(v)
	fmt.Println(date)
	// Output: 19800101
}

func ExampleText() {
	name, _ := apdu.Text([]byte{0xD5, 0xC5, 0xC8, 0xFD, 0x00, 0x00}) // GBK, 00-padded
	fmt.Println(name)
	// Output: 张三
}

// A T=0 card answers 61xx; Exchange fetches the rest with GET RESPONSE.
func ExampleExchange() {
	card := answers{{0x61, 0x02}, {0xAB, 0xCD, 0x90, 0x00}}
	r, err := apdu.Exchange(&card, apdu.Command{INS: 0xA4, P1: 0x04, Data: []byte("sx1.sh.")})
	fmt.Printf("% X %04X %v\n", r.Data, r.SW, err)
	// Output: AB CD 9000 <nil>
}

type answers [][]byte

func (a *answers) Transmit(cmd []byte) ([]byte, error) {
	r := (*a)[0]
	*a = (*a)[1:]
	return r, nil
}
