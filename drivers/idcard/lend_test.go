package idcard

import (
	"errors"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/idcard/vreader"
)

// A lent ID card reader is not polled at all (the borrower owns the line); after the
// reclaim the driver polls again and reads the card placed meanwhile.
func TestLendStopsPolling(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{})
	d, rec := start(t, Config{Path: vr.Link()})
	rec.waitState(t, device.StateConnected)
	waitFinds(t, vr, 2, 2)
	ctx := testCtx(t)
	if err := d.Lend(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec.waitState(t, device.StateLent)
	if err := d.Lend(ctx, time.Now().Add(time.Minute)); !errors.Is(err, device.ErrAlreadyLent) {
		t.Fatalf("second lend: %v", err)
	}
	before := vr.Stats().Finds
	wang := profile(t, "wang-zhe")
	place(t, vr, wang)
	time.Sleep(500 * time.Millisecond)
	if n := vr.Stats().Finds - before; n > 0 {
		t.Fatalf("%d polls while lent", n)
	}
	rec.expectNoRead(t)
	if err := d.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if st := rec.waitState(t, device.StateConnecting); st.Reason != device.ReasonReclaimed {
		t.Fatalf("after reclaim: %+v", st)
	}
	rec.waitState(t, device.StateConnected)
	rec.expectCard(t, vr.Link(), wang.Card)
}
