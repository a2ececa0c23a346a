package vprinter

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

func job(t *testing.T) []byte {
	t.Helper()
	r := escpos.Receipt{Code: "ABC123:1", Name: "张三", IDNumber: "110101198001011234", IssuedAt: time.Now(), TerminalID: "K-1"}
	b, err := r.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dial(t *testing.T, p *Printer) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A job written a byte at a time, with status requests in between, is recorded whole
// and without the requests; each request is answered at once.
func TestStreamInPieces(t *testing.T) {
	p, err := ListenTCP("127.0.0.1:0", Config{NearEnd: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	want := job(t)
	for i, b := range want {
		if i == 5 {
			c.Write(escpos.PaperStatusRequest)
			var r [1]byte
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, r[:]); err != nil || r[0] != 0x1E {
				t.Fatalf("paper status %02X, %v", r[0], err)
			}
			c.Write(escpos.PaperSensorRequest)
			if _, err := io.ReadFull(c, r[:]); err != nil || r[0] != 0x03 {
				t.Fatalf("GS r 1 answer %02X, %v", r[0], err)
			}
		}
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := p.WaitJobs(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if jobs[0].Err != nil || !bytes.Equal(jobs[0].Bytes, want) || string(jobs[0].Doc.QRs()[0].Payload) != "ABC123:1" {
		t.Fatalf("job %+v", jobs[0])
	}
}

// Paper running out in the middle of a job ends it there, marked half-printed; the
// rest is discarded and counted.
func TestPaperRunsOutMidJob(t *testing.T) {
	p, err := ListenTCP("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	b := job(t)
	half := len(b) / 2
	c.Write(b[:half])
	for deadline := time.Now().Add(5 * time.Second); len(p.Received()) < half; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("first half not received")
		}
	}
	p.SetPaperOut(true)
	c.Write(b[half:])
	jobs, err := p.WaitJobs(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if jobs[0].Err == nil || jobs[0].Doc != nil {
		t.Fatalf("half-printed job %+v", jobs[0])
	}
	for deadline := time.Now().Add(5 * time.Second); p.Discarded() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing discarded")
		}
	}
}

// A connection that ends without a cut still leaves its job, marked.
func TestConnectionEndsWithoutCut(t *testing.T) {
	p, err := ListenTCP("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	c.Write([]byte("\x1b@hello\n"))
	c.Close()
	jobs, err := p.WaitJobs(ctxT(t), 1)
	if err != nil || jobs[0].Err == nil || string(jobs[0].Bytes) != "\x1b@hello\n" {
		t.Fatalf("%+v, %v", jobs, err)
	}
}

func TestMuteAndClose(t *testing.T) {
	p, err := ListenTCP("127.0.0.1:0", Config{Mute: true})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	c.Write(escpos.PaperStatusRequest)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _ := c.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a mute printer answered")
	}
	// Close ends the connection being served and the acceptor; twice is fine.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.WaitJobs(ctx, 1); err == nil {
		t.Fatal("WaitJobs did not time out")
	}
}

// A slow printer answers the status late, and Close does not wait for the delay.
func TestReplyDelay(t *testing.T) {
	p, err := ListenTCP("127.0.0.1:0", Config{ReplyDelay: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	t0 := time.Now()
	c.Write(escpos.PaperStatusRequest)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if took := time.Since(t0); took < 400*time.Millisecond {
		t.Fatalf("answered after %s, want ≥ 400 ms", took)
	}
	// Another request, held back an hour: Close ends the wait.
	p.SetReplyDelay(time.Hour)
	c.Write(escpos.PaperStatusRequest)
	time.Sleep(100 * time.Millisecond)
	t0 = time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Fatalf("Close took %s behind a delayed answer", took)
	}
}

func TestPTYLink(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ptys: Linux only")
	}
	link := t.TempDir() + "/printer"
	p, err := NewPTY(Config{Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != p.Path() {
		t.Fatalf("link %q, %v; pty %s", target, err, p.Path())
	}
	f, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(escpos.PaperStatusRequest)
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	var r [1]byte
	if _, err := io.ReadFull(f, r[:]); err != nil || r[0] != 0x12 {
		t.Fatalf("answer %02X, %v", r[0], err)
	}
	want := job(t)
	f.Write(want)
	jobs, err := p.WaitJobs(ctxT(t), 1)
	if err != nil || !bytes.Equal(jobs[0].Bytes, want) {
		t.Fatalf("%v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link left: %v", err)
	}
	// A regular file where the link should go is never replaced.
	if err := os.WriteFile(link, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPTY(Config{Link: link}); err == nil {
		t.Fatal("a regular file was taken for the link")
	}
}
