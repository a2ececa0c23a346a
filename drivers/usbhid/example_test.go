//go:build cgo

package usbhid_test

import (
	"context"
	"fmt"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/usbhid"
)

type printSink struct{}

func (printSink) Read(r device.Read)   { fmt.Printf("%s %s %q\n", r.Device, r.AIM, r.Data) }
func (printSink) Drop(d device.Drop)   { fmt.Println("dropped", d.Reason, d.Bytes) }
func (printSink) State(s device.State) { fmt.Println(s.State, s.Reason, s.Detail) }

// A Honeywell scanner in HID POS mode, triggered by the host. The layout comes from the
// VID; Run looks for the scanner every second until it is plugged in, and reads it until
// ctx ends. (The real-USB runs of this driver are in guesttest, inside a QEMU guest.)
func Example() {
	dev, err := usbhid.New(usbhid.Config{
		Name: "window-1", VID: 0x0C2E, PID: 0x0B87, Mode: usbhid.ModeHIDPOS,
		TriggerBits: true, AIM: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go dev.Run(ctx, printSink{})
	// Once connected: dev.Trigger(ctx) sends output report 04 04.
}
