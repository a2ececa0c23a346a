package serial_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// printSink prints scans and passes on when the device is connected.
type printSink struct {
	connected chan struct{}
	scans     chan device.Read
}

func (s printSink) Read(r device.Read) { s.scans <- r }
func (s printSink) Drop(device.Drop)   {}
func (s printSink) State(st device.State) {
	if st.State == device.StateConnected {
		s.connected <- struct{}{}
	}
}

// A scanner on a (virtual) serial port, CR-terminated with AIM ids, read by the driver.
func Example() {
	link := filepath.Join(os.TempDir(), fmt.Sprintf("serial-example-%d", os.Getpid()))
	vs, err := vscanner.New(vscanner.Config{Link: link, Suffix: []byte("\r"), AIM: "]Q1", Baud: 115200})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer vs.Close()

	dev, err := serial.New(serial.Config{
		Name:    "window-1",
		Path:    link, // or VID: "0c2e", PID: "0b61" to find it by USB ids
		Baud:    115200,
		Framing: framing.Config{Type: "line", Suffix: []byte("\r"), AIM: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sink := printSink{connected: make(chan struct{}, 1), scans: make(chan device.Read, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- dev.Run(ctx, sink) }()

	<-sink.connected
	vs.Send(ctx, []byte("EHC1:ABC"))
	r := <-sink.scans
	fmt.Printf("%s %s %q %s\n", r.Device, r.Driver, r.Data, r.AIM)

	cancel()
	fmt.Println(<-done)
	// Output:
	// window-1 serial "EHC1:ABC" ]Q1
	// <nil>
}
