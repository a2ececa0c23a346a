package escpos_test

import (
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// A card application's receipt, and what a printer reads in it.
func Example() {
	r := escpos.Receipt{
		Code:       "E1D1A0B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5FBB18:1",
		Name:       "张三丰",
		IDNumber:   "110101198001011234",
		IssuedAt:   time.Date(2026, 11, 24, 8, 0, 1, 0, time.FixedZone("CST", 8*3600)),
		TerminalID: "K-0001",
	}
	job, err := r.Bytes()
	if err != nil {
		panic(err)
	}
	d, err := escpos.Parse(job)
	if err != nil {
		panic(err)
	}
	for _, b := range d.Blocks {
		switch b.Kind {
		case escpos.BlockText:
			if b.Text != "" {
				fmt.Printf("%-6s %s\n", b.Align, b.Text)
			}
		case escpos.BlockQR:
			fmt.Printf("%-6s QR model %d, %d dots a module, level %v: %s\n", b.Align, b.QR.Model, b.QR.ModuleSize, b.QR.Level, b.QR.Payload)
		case escpos.BlockCut:
			fmt.Println("cut")
		}
	}
	// Output:
	// center 居民电子健康卡
	// center 申领凭证
	// center QR model 2, 8 dots a module, level M: E1D1A0B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5FBB18:1
	// left   姓名：张**
	// left   证件号码：1101**********1234
	// left   发卡时间：2026-11-24 08:00:01
	// left   终端编号：K-0001
	// cut
}

// Reading a paper status reply (PRINTERS.md: bits 2–3 near end, bits 5–6 out).
func ExampleParsePaperStatus() {
	for _, reply := range []byte{0x12, 0x1E, 0x72} {
		s, err := escpos.ParsePaperStatus(reply)
		fmt.Printf("%02X: %v %v\n", reply, s, err)
	}
	// Output:
	// 12: paper ok <nil>
	// 1E: paper near end <nil>
	// 72: paper out <nil>
}
