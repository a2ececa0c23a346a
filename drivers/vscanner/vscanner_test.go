package vscanner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/hextest"
	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

var unhex = hextest.Decode

// host is the other end of the pty as a plain file: what a host reads and writes.
type host struct {
	t testing.TB
	f *os.File
}

func openHost(t testing.TB, path string) *host {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &host{t, f}
}

// readN reads exactly n bytes or fails after 5 s.
func (h *host) readN(n int) []byte {
	h.t.Helper()
	h.f.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := readFull(h.f, b); err != nil {
		h.t.Fatalf("host read %d bytes: %v (got % x)", n, err, b)
	}
	return b
}

func readFull(f *os.File, b []byte) (int, error) {
	got := 0
	for got < len(b) {
		n, err := f.Read(b[got:])
		got += n
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func newScanner(t testing.TB, c Config) *Scanner {
	t.Helper()
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// The spec's multipacket vector (500 × Z in a QR code, from a real scanner) is exactly
// what the simulator sends.
func TestSSIMultipacketVector(t *testing.T) {
	z := func(n int) string { return strings.Repeat("5A", n) }
	want := [][]byte{
		unhex(t, "FF 73 02 00 00 F3 00 00 01 F7 1C 01 01 F4"+z(241)+"A6 D5"),
		unhex(t, "FF 73 00 00 01"+z(250)+"A6 A9"),
		unhex(t, "0E 73 00 00 02"+z(9)+"FC 53"),
	}
	fs := ssiFrames(bytes.Repeat([]byte("Z"), 500), 0x1C, false)
	if len(fs) != len(want) {
		t.Fatalf("%d segments, want %d", len(fs), len(want))
	}
	for i, f := range fs {
		if got := f.encode(false, false); !bytes.Equal(got, want[i]) {
			t.Errorf("segment %d:\n got % x\nwant % x", i, got, want[i])
		}
	}
}

func TestSSIChecksumVectors(t *testing.T) {
	for _, v := range []string{
		"04 D0 04 00 FF 28",    // ACK
		"05 D1 04 00 01 FF 25", // NAK, resend
		"04 74 04 00 FF 84",    // MULTIPACKET_ACK
	} {
		b := unhex(t, v)
		if got := ssi.Checksum(b[:len(b)-2]); got != uint16(b[len(b)-2])<<8|uint16(b[len(b)-1]) {
			t.Errorf("%s: checksum %04x", v, got)
		}
	}
}

// The slave is raw from the start: CR arrives as CR and nothing is echoed back.
func TestRawFromCreation(t *testing.T) {
	s := newScanner(t, Config{})
	h := openHost(t, s.Path())
	if err := s.Send(ctx(t), []byte("A\nB")); err != nil {
		t.Fatal(err)
	}
	if got := h.readN(4); string(got) != "A\nB\r" {
		t.Fatalf("host read %q", got)
	}
	if _, err := h.f.Write([]byte("\x16T\r")); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReceived(ctx(t), []byte("\x16T\r")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := s.Received(); string(got) != "\x16T\r" {
		t.Fatalf("received %q: the scan was echoed", got)
	}
}

func TestLinkPullPlug(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	s := newScanner(t, Config{Link: link, ForceNewName: true})
	first := s.Path()
	if got, _ := os.Readlink(link); got != first {
		t.Fatalf("link -> %q, want %q", got, first)
	}
	h := openHost(t, link)
	if err := s.Pull(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link after pull: %v", err)
	}
	h.f.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := h.f.Read(make([]byte, 1)); err == nil && n > 0 {
		t.Fatal("host read data from a pulled pty")
	}
	if err := s.Send(ctx(t), []byte("x")); !errors.Is(err, ErrUnplugged) {
		t.Fatalf("send while unplugged: %v", err)
	}
	h.f.Close() // as a driver does on PortClosed: the old number is free again
	for i := 0; i < 5; i++ {
		if err := s.Plug(); err != nil {
			t.Fatal(err)
		}
		p := s.Path()
		if got, _ := os.Readlink(link); got != p {
			t.Fatalf("link -> %q, want %q", got, p)
		}
		if p == first {
			t.Fatalf("replug %d got %s again", i, p)
		}
		h := openHost(t, link)
		if err := s.Send(ctx(t), []byte("ok")); err != nil {
			t.Fatal(err)
		}
		if got := h.readN(3); string(got) != "ok\r" {
			t.Fatalf("read %q", got)
		}
		first = p
		s.Pull()
		h.f.Close()
	}
}

func TestLinkRefusesRegularFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("keep"), 0o600)
	if _, err := New(Config{Link: f}); err == nil {
		t.Fatal("New replaced a regular file with a symlink")
	}
}

func TestFramings(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Suffix: []byte("\r\n"), Prefix: []byte("P:"), AIM: "]Q1"}, "P:]Q1data\r\n"},
		{Config{Suffix: []byte{}}, "data"},
		{Config{Framing: Idle, Gap: time.Millisecond, AIM: "]d1"}, "]d1data"},
		{Config{Framing: Line, Suffix: []byte{0x03}}, "data\x03"},
	} {
		s := newScanner(t, tc.c)
		h := openHost(t, s.Path())
		if err := s.Send(ctx(t), []byte("data")); err != nil {
			t.Fatal(err)
		}
		if got := h.readN(len(tc.want)); string(got) != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}

// A host that NAKs the first transmission gets it again with the retransmit bit.
func TestSSIResendAfterNAK(t *testing.T) {
	s := newScanner(t, Config{Framing: SSI, AckTimeout: 2 * time.Second})
	h := openHost(t, s.Path())
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx(t), []byte("HI")) }()
	first := h.readN(9)
	if want := unhex(t, "07 F3 00 20 1C 48 49"); !bytes.Equal(first[:7], want) {
		t.Fatalf("packet % x", first)
	}
	h.f.Write(unhex(t, "05 D1 04 00 01 FF 25"))
	again := h.readN(9)
	if again[3] != 0x21 {
		t.Fatalf("resent packet % x lacks the retransmit bit", again)
	}
	h.f.Write(unhex(t, "04 D0 04 00 FF 28"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.NAKs != 1 || st.Retransmits != 1 || st.Scans != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSSIBadChecksumOption(t *testing.T) {
	s := newScanner(t, Config{Framing: SSI, AckTimeout: 50 * time.Millisecond, Retries: 1})
	h := openHost(t, s.Path())
	err := s.Send(ctx(t), []byte("A"), BadChecksum(0))
	if !errors.Is(err, ErrNoAck) {
		t.Fatalf("no host answering: %v", err)
	}
	p := h.readN(16)
	bad, good := p[:8], p[8:]
	if ssi.Checksum(bad[:6]) == uint16(bad[6])<<8|uint16(bad[7]) {
		t.Fatalf("first transmission % x has a good checksum", bad)
	}
	if ssi.Checksum(good[:6]) != uint16(good[6])<<8|uint16(good[7]) || good[3]&ssi.StatusRetransmit == 0 {
		t.Fatalf("resend % x", good)
	}
	if st := s.Stats(); st.Timeouts != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResponses(t *testing.T) {
	s := newScanner(t, Config{Responses: []Response{{When: unhex(t, "7E 00 08 01 00 02 01 02 DA"), Reply: unhex(t, "02 00 00 01 00 33 31")}}})
	h := openHost(t, s.Path())
	cmd := unhex(t, "7E 00 08 01 00 02 01 02 DA")
	h.f.Write(cmd[:4]) // split across reads
	time.Sleep(10 * time.Millisecond)
	h.f.Write(cmd[4:])
	if got, want := h.readN(7), unhex(t, "02 00 00 01 00 33 31"); !bytes.Equal(got, want) {
		t.Fatalf("reply % x", got)
	}
}

// Pacing matches the baud rate: 1,152 bytes at 115200 take 100 ms on the wire. Only
// the lower bound is asserted; a loaded machine may be slower, never faster.
func TestPacing(t *testing.T) {
	s := newScanner(t, Config{Baud: 115200})
	h := openHost(t, s.Path())
	read := make(chan error, 1)
	go func() {
		h.f.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := readFull(h.f, make([]byte, 1152))
		read <- err
	}()
	start := time.Now()
	if err := s.SendRaw(ctx(t), make([]byte, 1152)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start) + s.pace.untilFree()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	t.Logf("1152 bytes at 115200: %v (nominal 100ms)", took)
	if took < 95*time.Millisecond {
		t.Fatalf("sent in %v: faster than the line", took)
	}
}

func TestNoise(t *testing.T) {
	n := Noise(1<<16, 1, '\r', '\n')
	if len(n) != 1<<16 || bytes.ContainsAny(n, "\r\n") {
		t.Fatal("noise has a terminator")
	}
	if !bytes.Equal(n, Noise(1<<16, 1, '\r', '\n')) {
		t.Fatal("noise is not reproducible")
	}
}
