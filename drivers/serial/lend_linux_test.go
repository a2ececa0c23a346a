package serial

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// borrower is what the medical-insurance SDK does with a lent port: it opens the
// device node itself and takes it exclusively (TIOCEXCL), as go.bug.st/serial does.
type borrower struct {
	t testing.TB
	f *os.File
}

// exclusive reports whether some open file of the tty at path holds it exclusively
// (TIOCGEXCL). An exclusive tty refuses every other open with EBUSY, except root's.
func exclusive(t testing.TB, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGEXCL)
	if err != nil {
		t.Fatal(err)
	}
	return v != 0
}

func borrow(t testing.TB, path string) *borrower {
	t.Helper()
	if exclusive(t, path) {
		t.Fatalf("%s is still held exclusively while lent", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.TIOCEXCL, 0); err != nil {
		f.Close()
		t.Fatal(err)
	}
	b := &borrower{t: t, f: f}
	t.Cleanup(func() { f.Close() })
	return b
}

// readScan reads up to and including the next CR.
func (b *borrower) readScan(within time.Duration) string {
	b.t.Helper()
	if err := b.f.SetReadDeadline(time.Now().Add(within)); err != nil {
		b.t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 256)
	for !bytes.HasSuffix(got, []byte("\r")) {
		n, err := b.f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			b.t.Fatalf("borrower read %q: %v", got, err)
		}
	}
	return strings.TrimSuffix(string(got), "\r")
}

func (b *borrower) close() {
	b.f.SetReadDeadline(time.Time{})
	if err := b.f.Close(); err != nil {
		b.t.Fatal(err)
	}
}

// A lend while scans flow: the scan sent just before the lend reaches the driver, the
// port is then free for another program, which takes it exclusively and reads the next
// scan itself; the driver reads nothing and changes no state while lent; after Reclaim
// the very next scan, sent before the port is even reopened, reaches the driver.
func TestLendWhileScanning(t *testing.T) {
	vs := scanner(t, vscanner.Config{})
	d, rec := start(t, Config{Path: vs.Link()})
	rec.waitState(t, device.StateConnected)
	ctx := testCtx(t)
	send := func(p string) {
		t.Helper()
		if err := vs.Send(ctx, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	send("before-1")
	rec.expectRead(t, "before-1", "")
	if !exclusive(t, vs.Path()) {
		t.Fatal("the driver does not hold its port exclusively: a borrower could not be kept out")
	}

	// Sent, then lent at once: the driver still reads it.
	send("before-2")
	t0 := time.Now()
	if err := d.Lend(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Logf("lend took %s", time.Since(t0))
	rec.expectRead(t, "before-2", "")
	st := rec.waitState(t, device.StateLent)
	if st.Reason != device.ReasonLent || !strings.HasPrefix(st.Detail, "until ") {
		t.Fatalf("lent state %+v", st)
	}
	if err := d.Lend(ctx, time.Now().Add(time.Minute)); !errors.Is(err, device.ErrAlreadyLent) {
		t.Fatalf("second lend: %v, want already_lent", err)
	}

	sdk := borrow(t, vs.Path())
	send("for-the-sdk")
	if got := sdk.readScan(5 * time.Second); got != "for-the-sdk" {
		t.Fatalf("borrower read %q", got)
	}
	rec.expectNoRead(t, 300*time.Millisecond)
	if all := rec.StatesSoFar(); all[len(all)-1].State != device.StateLent {
		t.Fatalf("state changed while lent: %+v", all[len(all)-1])
	}
	sdk.close()

	if err := d.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	send("after-1") // before the port is open again: it waits in the tty for the driver
	if st := rec.waitState(t, device.StateConnecting); st.Reason != device.ReasonReclaimed {
		t.Fatalf("after reclaim: %+v", st)
	}
	rec.waitState(t, device.StateConnected)
	rec.expectRead(t, "after-1", "")
	send("after-2")
	rec.expectRead(t, "after-2", "")
	if err := d.Reclaim(ctx); !errors.Is(err, device.ErrNotLent) {
		t.Fatalf("reclaim of a device not lent: %v", err)
	}
	if drops := rec.DropsSoFar(); len(drops) > 0 {
		t.Fatalf("drops: %+v", drops)
	}
}

// A lend asked in the middle of a scan waits for its end (within device.LendGrace):
// the driver delivers the whole scan and the borrower gets none of it.
func TestLendFinishesScanInProgress(t *testing.T) {
	vs := scanner(t, vscanner.Config{})
	d, rec := start(t, Config{Path: vs.Link()})
	rec.waitState(t, device.StateConnected)
	ctx := testCtx(t)
	if err := vs.SendRaw(ctx, []byte("first-half,")); err != nil {
		t.Fatal(err)
	}
	if err := vs.WaitRead(ctx); err != nil {
		t.Fatal(err)
	}
	lent := make(chan time.Time, 1)
	go func() {
		if err := d.Lend(context.Background(), time.Now().Add(time.Minute)); err != nil {
			t.Error(err)
		}
		lent <- time.Now()
	}()
	time.Sleep(300 * time.Millisecond)
	rest := time.Now()
	if err := vs.SendRaw(ctx, []byte("second-half\r")); err != nil {
		t.Fatal(err)
	}
	rec.expectRead(t, "first-half,second-half", "")
	select {
	case at := <-lent:
		if at.Before(rest) {
			t.Fatalf("lent %s before the scan in progress ended", rest.Sub(at))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lend did not return")
	}
	rec.waitState(t, device.StateLent)
	if drops := rec.DropsSoFar(); len(drops) > 0 {
		t.Fatalf("drops: %+v", drops)
	}
}

// A scan that never ends does not hold the lend up beyond device.LendGrace: its part
// is dropped and the port lent.
func TestLendGraceBounded(t *testing.T) {
	vs := scanner(t, vscanner.Config{Baud: 2400})
	d, rec := start(t, Config{Path: vs.Link()})
	rec.waitState(t, device.StateConnected)
	ctx := testCtx(t)
	// 2400 baud, 10 bits a byte: 1,000 bytes take about 4 s, with no terminator.
	go vs.SendRaw(ctx, bytes.Repeat([]byte("x"), 1000))
	time.Sleep(300 * time.Millisecond) // the driver holds a partial scan
	t0 := time.Now()
	if err := d.Lend(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("lend in the middle of an endless scan took %s", took)
	if took < device.LendGrace-100*time.Millisecond || took > device.LendGrace+time.Second {
		t.Fatalf("lend took %s, want about %s", took, device.LendGrace)
	}
	rec.waitState(t, device.StateLent)
	rec.waitDrop(t, "disconnected")
}

// A lend ends by itself at its deadline: the driver reports lend_expired, opens the
// port again and reads the scans sent meanwhile.
func TestLendExpires(t *testing.T) {
	vs := scanner(t, vscanner.Config{})
	d, rec := start(t, Config{Path: vs.Link()})
	rec.waitState(t, device.StateConnected)
	ctx := testCtx(t)
	until := time.Now().Add(1500 * time.Millisecond)
	if err := d.Lend(ctx, until); err != nil {
		t.Fatal(err)
	}
	rec.waitState(t, device.StateLent)
	if err := vs.Send(ctx, []byte("while-lent")); err != nil {
		t.Fatal(err)
	}
	st := rec.waitState(t, device.StateConnecting)
	if st.Reason != device.ReasonLendExpired || st.At.Before(until) {
		t.Fatalf("after the deadline %s: %+v", until.Format(time.RFC3339Nano), st)
	}
	rec.waitState(t, device.StateConnected)
	// Nobody borrowed the port: the scan sent while lent waited in the tty.
	rec.expectRead(t, "while-lent", "")
	if err := d.Reclaim(ctx); !errors.Is(err, device.ErrNotLent) {
		t.Fatalf("reclaim after expiry: %v", err)
	}
}

// A device that is not connected can be lent too: the driver stops retrying at once
// and, after the lend, goes back to its reconnect loop.
func TestLendWhileDisconnected(t *testing.T) {
	vs := scanner(t, vscanner.Config{})
	d, rec := start(t, Config{Path: vs.Link()})
	rec.waitState(t, device.StateConnected)
	if err := vs.Pull(); err != nil {
		t.Fatal(err)
	}
	rec.waitState(t, device.StateDisconnected)
	ctx := testCtx(t)
	if err := d.Lend(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec.waitState(t, device.StateLent)
	if err := vs.Plug(); err != nil {
		t.Fatal(err)
	}
	rec.expectNoRead(t, 300*time.Millisecond)
	if all := rec.StatesSoFar(); all[len(all)-1].State != device.StateLent {
		t.Fatalf("driver reopened while lent: %+v", all[len(all)-1])
	}
	if err := d.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	rec.waitState(t, device.StateConnected)
	if err := vs.Send(ctx, []byte("back")); err != nil {
		t.Fatal(err)
	}
	rec.expectRead(t, "back", "")
}

// A lend the driver never takes (Run not running) fails with not_running and leaves
// nothing lent.
func TestLendNotRunning(t *testing.T) {
	d, err := New(Config{Name: "s", Path: "/nonexistent", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := d.Lend(ctx, time.Now().Add(time.Minute)); !errors.Is(err, device.ErrNotRunning) {
		t.Fatalf("lend: %v", err)
	}
	if err := d.Reclaim(context.Background()); !errors.Is(err, device.ErrNotLent) {
		t.Fatalf("reclaim: %v", err)
	}
	if err := d.Lend(context.Background(), time.Now().Add(time.Hour)); !errors.Is(err, device.ErrBadLendTime) {
		t.Fatalf("lend of an hour: %v", err)
	}
}
