package framing

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

func specSSI(t testing.TB) []byte {
	z := func(n int) []byte { return bytes.Repeat([]byte{0x5A}, n) }
	return cat(
		hx(t, "FF 73 02 00 00 F3 00 00 01 F7 1C 01 01 F4"), z(241), hx(t, "A6 D5"),
		hx(t, "FF 73 00 00 01"), z(250), hx(t, "A6 A9"),
		hx(t, "0E 73 00 00 02"), z(9), hx(t, "FC 53"),
	)
}

func decodeData(t testing.TB, status byte, typ byte, data string) []byte {
	b, err := ssi.Packet{Opcode: ssi.OpDecodeData, Status: status, Data: append([]byte{typ}, data...)}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSSIFramingSpecVector(t *testing.T) {
	c := Config{Type: "ssi", AIM: true}
	mack := "reply 04 74 04 00 FF 84"
	for _, size := range []int{1, 64, 1 << 20} {
		f := mustNew(t, c)
		out := feedChunks(f, specSSI(t), size)
		expect(t, out, mack, mack, mack, `scan "ZZZZZZZZZZZZZZZZZZZZ"…(500 bytes) ssi:1C`)
		if len(out) == 4 {
			if !bytes.Equal(out[3].Data, bytes.Repeat([]byte{'Z'}, 500)) || Symbology(out[3].AIM) != "qr" {
				t.Errorf("scan %q, symbology %q", out[3].Data, Symbology(out[3].AIM))
			}
		}
	}
}

func TestSSIFramingBadChecksum(t *testing.T) {
	good := decodeData(t, 0x20, ssi.TypeDataMatrix, "HELLO")
	bad := bytes.Clone(good)
	bad[len(bad)-2] ^= 0x10
	f := mustNew(t, Config{Type: "ssi", AIM: true})
	expect(t, f.Feed(bad, nil), "reply 05 D1 04 00 01 FF 25")
	expect(t, f.Feed(decodeData(t, 0x21, ssi.TypeDataMatrix, "HELLO"), nil),
		fmt.Sprintf("drop bad_checksum %d", len(bad)), "reply 04 D0 04 00 FF 28", `scan "HELLO" ssi:1B`)
}

func TestSSIFramingStripsLikeTheOthers(t *testing.T) {
	f := mustNew(t, Config{Type: "ssi", AIM: true, Prefix: []byte("P"), Suffix: []byte("\r"), MaxScan: 5})
	ack := "reply 04 D0 04 00 FF 28"
	expect(t, f.Feed(cat(
		decodeData(t, 0, ssi.TypeQR, "P]Q112345\r"), // all three stripped, the AIM identifier wins
		decodeData(t, 0, ssi.TypeQR, "12345"),
		decodeData(t, 0, ssi.TypeQR, "P123456"),
		decodeData(t, 0, ssi.TypeQR, "P\r"),
	), nil), ack, `scan "12345" ]Q1`, ack, `scan "12345" ssi:1C`, ack, "drop too_long 7", ack, "drop empty 2")
}

func TestSSIFramingExpireAndReset(t *testing.T) {
	f := mustNew(t, Config{Type: "ssi"})
	p := decodeData(t, 0, ssi.TypeCode128, "x")
	expect(t, f.Feed(p[:3], nil))
	expect(t, f.Expire(nil), "drop stale_partial 3")
	expect(t, f.Feed(p[:3], nil))
	expect(t, f.Reset(nil), "drop disconnected 3")
	expect(t, f.Feed(p, nil), "reply 04 D0 04 00 FF 28", `scan "x" ssi:03`)
}

func TestReasonsMatchSSI(t *testing.T) {
	for _, p := range [][2]string{
		{ReasonTooLong, ssi.ReasonTooLong},
		{ReasonEmpty, ssi.ReasonEmpty},
		{ReasonStalePartial, ssi.ReasonStalePartial},
		{ReasonDisconnected, ssi.ReasonDisconnected},
	} {
		if p[0] != p[1] {
			t.Errorf("framing reason %q, ssi reason %q: one code, two spellings", p[0], p[1])
		}
	}
}
