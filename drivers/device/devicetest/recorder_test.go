package devicetest

import (
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// A full queue never blocks the driver: it is counted. Without a drops queue, drops
// are kept but never counted as overflow.
func TestRecorderCountsOverflowAndKeepsAll(t *testing.T) {
	r := NewRecorder(1, 1, 0)
	r.Read(device.Read{Device: "a"})
	r.Read(device.Read{Device: "b"}) // queue full
	r.State(device.State{State: device.StateConnecting})
	r.State(device.State{State: device.StateConnected}) // queue full
	for range 3 {
		r.Drop(device.Drop{Reason: "noise", Bytes: 2})
	}
	if n := r.Overflow.Load(); n != 2 {
		t.Fatalf("overflow %d, want 2", n)
	}
	if x := <-r.Reads; x.Device != "a" {
		t.Fatalf("queued read %+v", x)
	}
	if st := r.StatesSoFar(); len(st) != 2 || st[1].State != device.StateConnected {
		t.Fatalf("states kept %+v", st)
	}
	if d := r.DropsSoFar(); len(d) != 3 {
		t.Fatalf("drops kept %+v", d)
	}
	q := NewRecorder(1, 1, 1)
	q.Drop(device.Drop{Reason: "a"})
	q.Drop(device.Drop{Reason: "b"})
	if n, d := q.Overflow.Load(), <-q.Drops; n != 1 || d.Reason != "a" {
		t.Fatalf("overflow %d, queued %+v", n, d)
	}
}

func TestRecorderWaitStateSkipsOthers(t *testing.T) {
	r := NewRecorder(1, 4, 0)
	r.State(device.State{State: device.StateConnecting})
	r.State(device.State{State: device.StateConnected, Detail: "/dev/x"})
	if s := r.WaitState(t, device.StateConnected, time.Second); s.Detail != "/dev/x" {
		t.Fatalf("%+v", s)
	}
	if len(r.States) != 0 {
		t.Fatalf("%d states left queued", len(r.States))
	}
}
