package idcard_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/idcard"
	"github.com/ehc-agent/ehc-agent/drivers/idcard/vreader"
)

// firstRead is a device.Sink that hands over the first card read.
type firstRead chan device.Read

func (s firstRead) Read(r device.Read) {
	select {
	case s <- r:
	default:
	}
}
func (firstRead) State(device.State) {}
func (firstRead) Drop(device.Drop)   {}

// A reader on a pty (a real one would be /dev/ttyUSB0 or a /dev/serial/by-id link), a
// card on it, and the driver reading it once.
func Example() {
	dir, _ := os.MkdirTemp("", "idcard-example")
	defer os.RemoveAll(dir)
	vr, err := vreader.New(vreader.Config{Link: filepath.Join(dir, "reader"), Baud: 115200})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer vr.Close()
	p, err := vreader.LoadProfile("../../configs/profiles/idcard-long-term.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Place(vr)

	d, _ := idcard.New(idcard.Config{Name: "id-reader", Path: vr.Link(), Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	reads := make(firstRead, 1)
	go func() { done <- d.Run(ctx, reads) }()
	r := <-reads
	cancel()
	<-done

	id := r.Card.Identity
	fmt.Println(r.Kind, r.Driver, r.Card.Kind, r.Card.Reason == "")
	fmt.Println(id.IDType, id.Gender, id.Ethnicity, id.BirthDate, len(id.IDNumber))
	// Output:
	// card idcard resident_id_card true
	// 01 2 01 19491231 18
}
