package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// simScannerSink collects what the serial driver reads from the sim scanner.
type simScannerSink struct {
	connected chan struct{}
	reads     chan device.Read
}

func (s *simScannerSink) Read(r device.Read) { s.reads <- r }
func (s *simScannerSink) Drop(device.Drop)   {}
func (s *simScannerSink) State(st device.State) {
	if st.State == device.StateConnected {
		select {
		case s.connected <- struct{}{}:
		default:
		}
	}
}

// The sim scanner's codes reach the real serial driver through the link, framed as
// asked; stopping it removes the link.
func TestSimScannerToSerialDriver(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	o := simScannerOpts{link: link, framing: "line", suffix: "crlf", aim: "]Q1", baud: 115200, interval: 5 * time.Millisecond, codes: "-"}
	cfg, err := o.config(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runSimScanner(ctx, pw, io.Discard, cfg, strings.NewReader("EHC1:A\r\n\nEHC1:B\nEHC1:C\n"), o)
	}()
	first, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(first); len(f) != 4 || f[0] != "pty" || !strings.HasPrefix(f[1], "/dev/pts/") || f[2] != "link" || f[3] != link {
		t.Fatalf("first line %q", first)
	}

	dev, err := serial.New(serial.Config{Name: "sim", Path: link, Baud: 115200, Logger: slog.New(slog.DiscardHandler),
		Framing: framing.Config{Type: "line", Suffix: []byte("\r\n"), AIM: true}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &simScannerSink{connected: make(chan struct{}, 1), reads: make(chan device.Read, 8)}
	devCtx, devCancel := context.WithCancel(context.Background())
	devDone := make(chan error, 1)
	go func() { devDone <- dev.Run(devCtx, sink) }()
	for _, want := range []string{"EHC1:A", "EHC1:B", "EHC1:C"} {
		select {
		case r := <-sink.reads:
			if string(r.Data) != want || r.AIM != "]Q1" {
				t.Fatalf("read %q %q, want %q ]Q1", r.Data, r.AIM, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no scan %q", want)
		}
	}
	devCancel()
	<-devDone

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link left behind: %v", err)
	}
}

func TestSimScannerFlags(t *testing.T) {
	for _, o := range []simScannerOpts{
		{framing: "morse"},
		{framing: "line", suffix: "zz"},
		{framing: "line", suffix: "cr", aim: "Q1"},
		{framing: "line", suffix: "cr", prefix: "xyz"},
		{framing: "line", suffix: "cr", trigger: "acme"},
		{framing: "idle", baud: -1},
	} {
		_, err := o.config(io.Discard)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%+v: %v, want a usage error", o, err)
		}
	}
	c, err := simScannerOpts{framing: "line", suffix: "none", trigger: "newland"}.config(io.Discard)
	if err != nil || len(c.Suffix) != 0 || c.Suffix == nil || len(c.Responses) != 2 {
		t.Fatalf("%+v %v", c, err)
	}
}

// As a process: the pty line on stdout, scans on the link, SIGINT ends it with status 0
// and removes the link.
func TestSimScannerProcess(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "scanner")
	codes := filepath.Join(dir, "codes.txt")
	os.WriteFile(codes, []byte("ONE\nTWO\n"), 0o600)
	cmd := startSimProcess(t, link, "scanner", "--link", link, "--codes", codes, "--baud", "0", "--interval", "1ms", "--repeat")
	host, err := os.OpenFile(link, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := ""
	buf := make([]byte, 64)
	for !strings.Contains(got, "ONE\rTWO\rONE\r") {
		n, err := host.Read(buf)
		if err != nil {
			t.Fatalf("read %q: %v", got, err)
		}
		got += string(buf[:n])
	}
	interruptSimProcess(t, cmd, link)
}

// startSimProcess runs `ehc-agent sim <args>`, a device whose pty is linked at link,
// until the test ends, and checks its first line names the pty and the link.
func startSimProcess(t *testing.T, link string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(agentBin, append([]string{"sim"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	first, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "pty /dev/pts/") || !strings.HasSuffix(first, " link "+link+"\n") {
		t.Fatalf("first line %q, %v", first, err)
	}
	return cmd
}

// interruptSimProcess sends SIGINT: the sim must exit with status 0 within 10 s and
// take its link away.
func interruptSimProcess(t *testing.T, cmd *exec.Cmd, link string) {
	t.Helper()
	cmd.Process.Signal(os.Interrupt)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGINT")
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link left behind: %v", err)
	}
}

// The "!" commands on standard input, as a process over real ptys: noise arrives
// before the code and holds no terminator, an unknown command is reported without
// stopping the scanner, !pull closes the pty under a host reading it and takes the
// link away, a code sent meanwhile is reported lost, and !plug puts a new pty behind
// the same link, where the next bytes arrive.
func TestSimScannerCommands(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	cmd := exec.Command(agentBin, "sim", "scanner", "--link", link, "--codes", "-", "--baud", "0", "--interval", "1ms")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer // read only after Wait
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	// The reads of its standard output have no deadline: a sim that never answers is
	// killed, which ends them.
	watchdog := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	lines := bufio.NewReader(out)
	ptyLine := func() string {
		t.Helper()
		l, err := lines.ReadString('\n')
		f := strings.Fields(l)
		if err != nil || len(f) != 4 || f[0] != "pty" || !strings.HasPrefix(f[1], "/dev/pts/") || f[2] != "link" || f[3] != link {
			t.Fatalf("pty line %q, %v", l, err)
		}
		return f[1]
	}
	input := func(s string) {
		t.Helper()
		if _, err := io.WriteString(stdin, s); err != nil {
			t.Fatal(err)
		}
	}
	openLink := func() *os.File {
		t.Helper()
		f, err := os.OpenFile(link, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		f.SetReadDeadline(time.Now().Add(10 * time.Second))
		return f
	}
	readUntil := func(f *os.File, end string) []byte {
		t.Helper()
		var got []byte
		buf := make([]byte, 256)
		for !bytes.HasSuffix(got, []byte(end)) {
			n, err := f.Read(buf)
			if err != nil {
				t.Fatalf("read %q: %v", got, err)
			}
			got = append(got, buf[:n]...)
		}
		return got
	}

	first := ptyLine()
	host1 := openLink()
	input("!noise 100\n!bogus\n!noise 0\nCODE-1\n")
	got := readUntil(host1, "CODE-1\r")
	if len(got) != 100+len("CODE-1\r") || bytes.IndexByte(got[:100], '\r') >= 0 {
		t.Fatalf("want 100 noise bytes without CR, then the code; got % x", got)
	}

	// host1 stays open, so the kernel cannot give its pty number to the new pty.
	input("!pull\nCODE-LOST\n")
	if n, err := host1.Read(make([]byte, 16)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after !pull: %d bytes, %v; want the pty gone", n, err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link after !pull: %v", err)
	}

	input("!plug\n")
	second := ptyLine()
	if second == first {
		t.Fatalf("plugged back at the same pty %s", first)
	}
	if target, err := os.Readlink(link); err != nil || target != second {
		t.Fatalf("link points at %q (%v), want %s", target, err, second)
	}
	host2 := openLink()
	input("!raw 41 42\nCODE-2\n")
	if got := readUntil(host2, "CODE-2\r"); string(got) != "ABCODE-2\r" {
		t.Fatalf("after !plug got %q, want the raw bytes then the code", got)
	}

	interruptSimProcess(t, cmd, link)
	log := stderr.String()
	for _, want := range []string{
		"noise sent (100 bytes)\n",
		"!bogus: unknown command",
		"!noise: wants a byte count from 1 to 65536\n",
		"scan 1 sent (6 bytes)\n",
		"cable pulled\n",
		"scan 2 (9 bytes) not sent: the cable is pulled\n",
		"plugged in at " + second + "\n",
		"raw bytes sent (2 bytes)\n",
		"scan 3 sent (6 bytes)\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
}
