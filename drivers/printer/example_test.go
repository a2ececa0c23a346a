package printer_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/printer"
	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// Printing a card application's receipt on a network printer, and what the kiosk is
// told when the paper runs out.
func Example() {
	vp, err := vprinter.ListenTCP("127.0.0.1:0", vprinter.Config{})
	if err != nil {
		panic(err)
	}
	defer vp.Close()

	p, err := printer.Open(printer.Config{Transport: printer.TCP, Address: vp.Addr()})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	r := escpos.Receipt{Code: "4F1C7A0E9B3D52A6C8E1F0B7D4A29C3E5F7081A2B3C4D5E6F708192A3B4C5D6E:1",
		Name: "王五", IDNumber: "110101198001011234", IssuedAt: time.Now(), TerminalID: "K-0001"}
	receipt, err := r.Bytes()
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println("print:", p.Print(ctx, receipt))

	vp.SetPaperOut(true)
	err = p.Print(ctx, receipt)
	fmt.Println("print:", printer.Reason(err), errors.Is(err, printer.ErrPaperOut))

	jobs, _ := vp.WaitJobs(ctx, 1)
	fmt.Println("printed:", len(jobs), "QR:", len(jobs[0].Doc.QRs()[0].Payload), "bytes")
	// Output:
	// print: <nil>
	// print: paper_out true
	// printed: 1 QR: 66 bytes
}
