package printer

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
)

func TestPrintOverTCP(t *testing.T) {
	vp := listenTCP(t, vprinter.Config{})
	p := open(t, Config{Transport: TCP, Address: vp.Addr()})
	st, err := p.Status(ctxT(t, 5*time.Second))
	if err != nil || st != (Status{}) {
		t.Fatalf("status %v, %v", st, err)
	}
	receipt := testReceipt(t)
	if err := p.Print(ctxT(t, 10*time.Second), receipt); err != nil {
		t.Fatal(err)
	}
	checkPrinted(t, vp, receipt, "printer-receipt-tcp.png")
}

func TestTCPFaults(t *testing.T) {
	receipt := testReceipt(t)
	for _, c := range []struct {
		name   string
		cfg    vprinter.Config
		reason string
		is     error
	}{
		{"paper out", vprinter.Config{PaperOut: true}, ReasonPaperOut, ErrPaperOut},
		{"paper out and cover open", vprinter.Config{PaperOut: true, Offline: true}, ReasonPaperOut, ErrPaperOut},
		{"cover open", vprinter.Config{Offline: true}, ReasonOffline, ErrOffline},
		{"no status answers", vprinter.Config{Mute: true}, ReasonTimeout, ErrTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			vp := listenTCP(t, c.cfg)
			p := open(t, Config{Transport: TCP, Address: vp.Addr(), Timeout: 300 * time.Millisecond})
			start := time.Now()
			err := p.Print(ctxT(t, 10*time.Second), receipt)
			if Reason(err) != c.reason || !errors.Is(err, c.is) {
				t.Fatalf("error %v, want %s", err, c.reason)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %s", d)
			}
			checkNothingPrinted(t, vp)
		})
	}
}

// The paper near-end sensor is reported, and printing goes on.
func TestNearEnd(t *testing.T) {
	vp := listenTCP(t, vprinter.Config{NearEnd: true})
	p := open(t, Config{Transport: TCP, Address: vp.Addr()})
	st, err := p.Status(ctxT(t, 5*time.Second))
	if err != nil || !st.PaperNearEnd || st.PaperOut || st.Offline {
		t.Fatalf("status %+v, %v", st, err)
	}
	if err := p.Print(ctxT(t, 5*time.Second), testReceipt(t)); err != nil {
		t.Fatal(err)
	}
	// Paper loaded after running out: printing works again.
	vp.SetPaperOut(true)
	if err := p.Print(ctxT(t, 5*time.Second), testReceipt(t)); !errors.Is(err, ErrPaperOut) {
		t.Fatalf("error %v", err)
	}
	vp.SetPaperOut(false)
	if err := p.Print(ctxT(t, 5*time.Second), testReceipt(t)); err != nil {
		t.Fatal(err)
	}
	if jobs, err := vp.WaitJobs(ctxT(t, 5*time.Second), 2); err != nil || len(jobs) != 2 {
		t.Fatalf("%d jobs, %v", len(jobs), err)
	}
}

func TestTCPNotConnected(t *testing.T) {
	// A port nothing listens on: listen, note it, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := open(t, Config{Transport: TCP, Address: addr, Timeout: time.Second})
	if _, err := p.Status(ctxT(t, 5*time.Second)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("status: %v", err)
	}
	if err := p.Print(ctxT(t, 5*time.Second), testReceipt(t)); Reason(err) != ReasonNotConnected {
		t.Fatalf("print: %v", err)
	}
}

// Receipts printed at once come out whole, one after the other.
func TestConcurrentPrints(t *testing.T) {
	vp := listenTCP(t, vprinter.Config{})
	p := open(t, Config{Transport: TCP, Address: vp.Addr()})
	receipt := testReceipt(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- p.Print(ctxT(t, 20*time.Second), receipt) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := vp.WaitJobs(ctxT(t, 5*time.Second), 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		if j.Err != nil || string(j.Bytes) != string(receipt) {
			t.Fatalf("job %d: %v", i, j.Err)
		}
	}
}

// Close ends an operation waiting for an answer at once, and later calls fail.
func TestCloseDuringStatus(t *testing.T) {
	vp := listenTCP(t, vprinter.Config{Mute: true})
	p, err := Open(Config{Transport: TCP, Address: vp.Addr(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Status(context.Background())
		done <- err
	}()
	// Wait for the request to reach the printer.
	for deadline := time.Now().Add(5 * time.Second); len(vp.Received()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no request")
		}
	}
	start := time.Now()
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Status still waiting after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s", d)
	}
	if _, err := p.Status(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// The caller's deadline bounds an operation too; cancelling is reported as such.
func TestContext(t *testing.T) {
	vp := listenTCP(t, vprinter.Config{Mute: true})
	p := open(t, Config{Transport: TCP, Address: vp.Addr(), Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.Status(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := p.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestPrintRefusesABadReceipt(t *testing.T) {
	vp := listenTCP(t, vprinter.Config{})
	p := open(t, Config{Transport: TCP, Address: vp.Addr()})
	for _, bad := range [][]byte{nil, {0x1B, 0x40, 0x1B}, {0x1B, 0x7A, 0x00}} {
		if err := p.Print(ctxT(t, 5*time.Second), bad); err == nil || Reason(err) != "" {
			t.Fatalf("% X: %v", bad, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if rx := vp.Received(); len(rx) != 0 {
		t.Fatalf("sent % X", rx)
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, c := range []Config{
		{},
		{Transport: "usb"},
		{Transport: Serial},
		{Transport: Serial, Path: "/dev/ttyS0", VID: "0483", PID: "5740"},
		{Transport: Serial, VID: "48", PID: "5740"},
		{Transport: USBLP},
		{Transport: TCP},
		{Transport: TCP, Address: ":9100"},
		{Transport: TCP, Address: "h", Timeout: -1},
	} {
		if _, err := Open(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	p, err := Open(Config{Transport: TCP, Address: "printer.example"})
	if err != nil || p.Config().Address != "printer.example:9100" || p.Config().Timeout != DefaultTimeout {
		t.Fatalf("%+v, %v", p.Config(), err)
	}
	for in, want := range map[string]string{"[::1]": "[::1]:9100", "::1": "[::1]:9100", "[::1]:9101": "[::1]:9101", "10.0.0.5:9100": "10.0.0.5:9100"} {
		if got, err := TCPAddress(in); err != nil || got != want {
			t.Errorf("TCPAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"h:0", "h:x", "h:70000", ""} {
		if got, err := TCPAddress(bad); err == nil {
			t.Errorf("TCPAddress(%q) = %q", bad, got)
		}
	}
}
