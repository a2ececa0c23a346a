package printer

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial/enumerator"

	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
)

func newPTY(t *testing.T, c vprinter.Config) *vprinter.Printer {
	t.Helper()
	vp, err := vprinter.NewPTY(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vp.Close() })
	return vp
}

// A receipt over a real kernel pty, opened by go.bug.st/serial through a by-id style
// link as /dev/ttyUSB0 would be.
func TestPrintOverSerialPTY(t *testing.T) {
	link := filepath.Join(t.TempDir(), "printer")
	vp := newPTY(t, vprinter.Config{Link: link})
	p := open(t, Config{Transport: Serial, Path: link, Baud: 115200})
	if st, err := p.Status(ctxT(t, 5*time.Second)); err != nil || st != (Status{}) {
		t.Fatalf("status %v, %v", st, err)
	}
	receipt := testReceipt(t)
	if err := p.Print(ctxT(t, 10*time.Second), receipt); err != nil {
		t.Fatal(err)
	}
	checkPrinted(t, vp, receipt, "printer-receipt-serial.png")
}

// The USB printer class device is a character device read and written as a file; a
// pty slave is one too.
func TestPrintOverUSBLPPTY(t *testing.T) {
	vp := newPTY(t, vprinter.Config{})
	p := open(t, Config{Transport: USBLP, Path: vp.Path()})
	if st, err := p.Status(ctxT(t, 5*time.Second)); err != nil || st != (Status{}) {
		t.Fatalf("status %v, %v", st, err)
	}
	receipt := testReceipt(t)
	if err := p.Print(ctxT(t, 10*time.Second), receipt); err != nil {
		t.Fatal(err)
	}
	checkPrinted(t, vp, receipt, "printer-receipt-usblp.png")
}

// The port is found by its USB ids, from an injected port list (the OS enumerator
// probes every ttyS*: never in tests).
func TestSerialByUSBIDs(t *testing.T) {
	vp := newPTY(t, vprinter.Config{})
	ports := func() ([]*enumerator.PortDetails, error) {
		return []*enumerator.PortDetails{
			{Name: "/dev/ttyS0"},
			{Name: vp.Path(), IsUSB: true, VID: "0FE6", PID: "811E"},
		}, nil
	}
	p := open(t, Config{Transport: Serial, VID: "0fe6", PID: "811e", Ports: ports})
	receipt := testReceipt(t)
	if err := p.Print(ctxT(t, 10*time.Second), receipt); err != nil {
		t.Fatal(err)
	}
	checkPrinted(t, vp, receipt, "")

	q := open(t, Config{Transport: Serial, VID: "0fe6", PID: "0001", Ports: ports})
	if err := q.Print(ctxT(t, 5*time.Second), receipt); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("unknown ids: %v", err)
	}
}

// Paper out on every transport: paper_out, and nothing but the status requests sent.
func TestPaperOutOverPTY(t *testing.T) {
	receipt := testReceipt(t)
	for _, tr := range []string{Serial, USBLP} {
		t.Run(tr, func(t *testing.T) {
			vp := newPTY(t, vprinter.Config{PaperOut: true})
			p := open(t, Config{Transport: tr, Path: vp.Path(), Baud: 9600})
			st, err := p.Status(ctxT(t, 5*time.Second))
			if err != nil || !st.PaperOut {
				t.Fatalf("status %+v, %v", st, err)
			}
			err = p.Print(ctxT(t, 5*time.Second), receipt)
			if !errors.Is(err, ErrPaperOut) || Reason(err) != ReasonPaperOut {
				t.Fatalf("error %v", err)
			}
			checkNothingPrinted(t, vp)
		})
	}
}

func TestPTYFaults(t *testing.T) {
	receipt := testReceipt(t)
	for _, tr := range []string{Serial, USBLP} {
		t.Run(tr, func(t *testing.T) {
			vp := newPTY(t, vprinter.Config{Mute: true})
			p := open(t, Config{Transport: tr, Path: vp.Path(), Timeout: 300 * time.Millisecond})
			start := time.Now()
			if err := p.Print(ctxT(t, 5*time.Second), receipt); !errors.Is(err, ErrTimeout) {
				t.Fatalf("mute printer: %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %s", d)
			}
			vp.SetMute(false)
			vp.SetOffline(true)
			if err := p.Print(ctxT(t, 5*time.Second), receipt); !errors.Is(err, ErrOffline) {
				t.Fatalf("cover open: %v", err)
			}
			checkNothingPrinted(t, vp)
			vp.SetOffline(false)
			if err := p.Print(ctxT(t, 5*time.Second), receipt); err != nil {
				t.Fatalf("cover closed: %v", err)
			}
			checkPrinted(t, vp, receipt, "")

			gone := filepath.Join(t.TempDir(), "no-such-printer")
			q := open(t, Config{Transport: tr, Path: gone})
			if _, err := q.Status(ctxT(t, 5*time.Second)); !errors.Is(err, ErrNotConnected) {
				t.Fatalf("missing device: %v", err)
			}
		})
	}
}
