package idcard

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/device/devicetest"
	"github.com/ehc-agent/ehc-agent/drivers/idcard/vreader"
	"github.com/ehc-agent/ehc-agent/protocol/ga467"
)

// recorder queues what the device tells for the test to wait on.
type recorder struct{ *devicetest.Recorder }

func newRecorder() *recorder { return &recorder{devicetest.NewRecorder(1024, 1024, 0)} }

// dropped sums the bytes dropped so far by reason.
func (r *recorder) dropped() map[string]int {
	m := map[string]int{}
	for _, d := range r.DropsSoFar() {
		m[d.Reason] += d.Bytes
	}
	return m
}

// waitState returns the next state change to want, skipping others.
func (r *recorder) waitState(t testing.TB, want string) device.State {
	t.Helper()
	return r.WaitState(t, want, 15*time.Second)
}

// waitRead returns the next card read.
func (r *recorder) waitRead(t testing.TB) device.Read {
	t.Helper()
	select {
	case x := <-r.Reads:
		if x.Driver != "idcard" || x.Kind != "card" || x.Card == nil || x.At.IsZero() || x.Device != "idcard-1" {
			t.Fatalf("read metadata %+v", x)
		}
		return x
	case <-time.After(20 * time.Second):
		t.Fatalf("no card read within 20s; drops %v; states %+v", r.dropped(), r.StatesSoFar())
	}
	panic("unreachable")
}

func (r *recorder) expectNoRead(t testing.TB) {
	t.Helper()
	select {
	case x := <-r.Reads:
		t.Fatalf("unexpected card read %+v", x.Card)
	default:
	}
}

// expectCard waits for a read of c, complete and exact.
func (r *recorder) expectCard(t testing.TB, reader string, c ga467.IDCard) {
	t.Helper()
	x := r.waitRead(t)
	cr := x.Card
	if cr.Kind != KindResidentIDCard || cr.Reason != "" || cr.Reader != reader || cr.Identity == nil {
		t.Fatalf("card read kind %q reason %q reader %q identity %v", cr.Kind, cr.Reason, cr.Reader, cr.Identity != nil)
	}
	id := cr.Identity
	if id.IDType != "01" || id.IDNumber != c.IDNumber || id.Name != c.Name || id.Gender != c.Gender ||
		id.Ethnicity != c.Ethnicity || id.BirthDate != c.BirthDate || id.Photo != "" || id.IdentityPartial ||
		id.Address != c.Address || id.IDAuthority != c.Authority || id.IDValidFrom != c.ValidFrom || id.IDValidTo != c.ValidTo {
		t.Fatalf("identity %+v does not match the card", *id)
	}
}

// expectFailure waits for a read that failed with reason, and returns it. Only a
// reader_error carries the reader's status.
func (r *recorder) expectFailure(t testing.TB, kind, reason string) device.Read {
	t.Helper()
	x := r.waitRead(t)
	if x.Card.Kind != kind || x.Card.Reason != reason || x.Card.Identity != nil {
		t.Fatalf("card read kind %q reason %q identity %v; want %q %q", x.Card.Kind, x.Card.Reason, x.Card.Identity != nil, kind, reason)
	}
	if reason != ga467.ReasonReaderError && x.Card.ReaderStatus != "" {
		t.Fatalf("reason %q with reader status %q", reason, x.Card.ReaderStatus)
	}
	return x
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start runs a device until the test ends, then checks that Run stopped cleanly.
func start(t testing.TB, c Config) (*Device, *recorder) {
	t.Helper()
	c.Name = "idcard-1"
	if c.Logger == nil {
		c.Logger = quietLogger()
	}
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	devicetest.Run(t, d, rec, 5*time.Second, func() { rec.CheckStopped(t) })
	return d, rec
}

// reader makes a virtual reader behind a symlink in the test's temp dir.
func reader(t testing.TB, c vreader.Config) *vreader.Reader {
	t.Helper()
	if c.Link == "" {
		c.Link = filepath.Join(t.TempDir(), "idcard")
	}
	if c.Baud == 0 {
		c.Baud = 115200
	}
	r, err := vreader.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// profile loads one of the shipped profiles.
func profile(t testing.TB, name string) vreader.Profile {
	t.Helper()
	p, err := vreader.LoadProfile(filepath.Join("..", "..", "configs", "profiles", "idcard-"+name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// place puts p's card on r.
func place(t testing.TB, r *vreader.Reader, p vreader.Profile) {
	t.Helper()
	if err := p.Place(r); err != nil {
		t.Fatal(err)
	}
}

// waitFinds waits until the reader has answered n more finds than now, of which empty
// more with no card: enough polls for the driver to have acted on what it saw.
func waitFinds(t testing.TB, r *vreader.Reader, n, empty uint64) {
	t.Helper()
	s0 := r.Stats()
	if err := r.Wait(testCtx(t), func(s vreader.Stats) bool {
		return s.Finds >= s0.Finds+n && s.FindsEmpty >= s0.FindsEmpty+empty
	}); err != nil {
		t.Fatal(err)
	}
}
