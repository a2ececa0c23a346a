package idcard

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial/enumerator"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/idcard/vreader"
	"github.com/ehc-agent/ehc-agent/drivers/serial"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/protocol/ga467"
)

// A card placed is read once, exactly; left on the reader it is not read again; lifted
// and another placed, the other is read.
func TestCardPlacedReadOnce(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{})
	_, rec := start(t, Config{Path: vr.Link()})
	rec.waitState(t, device.StateConnected)

	wang := profile(t, "wang-zhe")
	place(t, vr, wang)
	rec.expectCard(t, vr.Link(), wang.Card)
	waitFinds(t, vr, 4, 0) // four polls with the card still there
	rec.expectNoRead(t)
	if s := vr.Stats(); s.Reads != 1 || s.Selects != 1 {
		t.Fatalf("card read %d times, selected %d times", s.Reads, s.Selects)
	}

	vr.Remove()
	waitFinds(t, vr, 2, 2)
	long := profile(t, "long-name")
	place(t, vr, long)
	rec.expectCard(t, vr.Link(), long.Card)

	// The same card lifted and placed again is a new placement, read again.
	vr.Remove()
	waitFinds(t, vr, 2, 2)
	place(t, vr, long)
	rec.expectCard(t, vr.Link(), long.Card)
	if d := rec.dropped(); len(d) > 0 {
		t.Fatalf("drops on a clean line: %v", d)
	}
}

// A card that drops out of the field for a single poll is not read twice.
func TestCardFlickerNotReread(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{})
	_, rec := start(t, Config{Path: vr.Link()})
	wang := profile(t, "wang-zhe")
	place(t, vr, wang)
	rec.expectCard(t, vr.Link(), wang.Card)
	vr.Remove()
	waitFinds(t, vr, 1, 1)
	place(t, vr, wang)
	waitFinds(t, vr, 3, 0)
	rec.expectNoRead(t)
}

// Many readers stop answering for a card once it is read (find says 80 until it is
// lifted): the card is not read again while it lies there, and is once placed again.
func TestHaltingReader(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{Halt: true})
	_, rec := start(t, Config{Path: vr.Link()})
	p := profile(t, "long-term")
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)
	waitFinds(t, vr, 4, 4)
	rec.expectNoRead(t)
	vr.Remove()
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)
}

// Split answers, junk before every answer, and garbled read answers: the card is still
// read once and exactly, and what was thrown away is reported.
func TestFaultsRecovered(t *testing.T) {
	t.Parallel()
	// One garbled read answer a card leaves a spare retry for a slow machine, where a
	// stall in the middle of junk and a split answer can cost one more.
	vr := reader(t, vreader.Config{Faults: vreader.Faults{Split: true, Junk: true, BadCHK: 1}, Seed: 42})
	_, rec := start(t, Config{Path: vr.Link()})
	rec.waitState(t, device.StateConnected)
	for _, name := range []string{"wang-zhe", "long-name", "long-term"} {
		p := profile(t, name)
		place(t, vr, p)
		rec.expectCard(t, vr.Link(), p.Card)
		vr.Remove()
		waitFinds(t, vr, 2, 2)
	}
	rec.expectNoRead(t)
	if s := vr.Stats(); s.ReadsOK < 6 {
		t.Fatalf("%d read answers for 3 cards with 1 garbled each", s.ReadsOK)
	}
	// A garbled answer is dropped from its preamble to the next one, which may be a
	// false one inside the photo, cut short ("truncated") when the line goes quiet.
	d := rec.dropped()
	if d[ga467.ReasonBadChecksum]+d[ga467.ReasonTruncated]+d[ga467.ReasonNoise] < 3*ga467.MaxFrame ||
		d[ga467.ReasonBadChecksum] == 0 || d[ga467.ReasonNoise] == 0 || d[ga467.ReasonBadLength] == 0 {
		t.Fatalf("drops %v", d)
	}
}

// A read that keeps failing is reported once, and the card must be placed again.
func TestReadFailure(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{Faults: vreader.Faults{ReadFail: true}})
	_, rec := start(t, Config{Path: vr.Link()})
	p := profile(t, "wang-zhe")
	place(t, vr, p)
	rec.expectFailure(t, KindResidentIDCard, ga467.ReasonReadFailed)
	waitFinds(t, vr, 3, 0)
	rec.expectNoRead(t)

	vr.SetFaults(vreader.Faults{})
	waitFinds(t, vr, 2, 0)
	rec.expectNoRead(t) // still the same placement
	vr.Remove()
	waitFinds(t, vr, 2, 2)
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)
}

// CARDS.md: a status it does not name is reported as reader_error with the code; the
// next placement reads normally.
func TestReadUnknownStatus(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{Faults: vreader.Faults{ReadStatus: 0x33}})
	_, rec := start(t, Config{Path: vr.Link()})
	p := profile(t, "wang-zhe")
	place(t, vr, p)
	x := rec.expectFailure(t, KindResidentIDCard, ga467.ReasonReaderError)
	if x.Card.ReaderStatus != "33" {
		t.Fatalf("reader status %q, want 33", x.Card.ReaderStatus)
	}
	waitFinds(t, vr, 2, 0)
	rec.expectNoRead(t)

	// A status CARDS.md names is its own reason, without the code.
	vr.SetFaults(vreader.Faults{ReadStatus: ga467.StatusReadFailed})
	vr.Remove()
	waitFinds(t, vr, 2, 2)
	place(t, vr, p)
	rec.expectFailure(t, KindResidentIDCard, ga467.ReasonReadFailed)

	vr.SetFaults(vreader.Faults{})
	vr.Remove()
	waitFinds(t, vr, 2, 2)
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)
}

// A read answer garbled every time ends as bad_answer, once.
func TestReadAnswerAlwaysGarbled(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{Faults: vreader.Faults{BadCHK: 100}})
	_, rec := start(t, Config{Path: vr.Link()})
	place(t, vr, profile(t, "wang-zhe"))
	rec.expectFailure(t, KindResidentIDCard, ReasonBadAnswer)
	if s := vr.Stats(); s.Reads != readTries {
		t.Fatalf("%d reads, want %d", s.Reads, readTries)
	}
	waitFinds(t, vr, 2, 0)
	rec.expectNoRead(t)
}

// A foreign permanent resident card is refused, not misread.
func TestUnsupportedCard(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{})
	_, rec := start(t, Config{Path: vr.Link()})
	place(t, vr, profile(t, "foreign"))
	rec.expectFailure(t, KindUnknown, ReasonUnsupportedCard)
}

// Pull the cable: disconnected; plug it back (under another pty name, reached through
// the link): connected again, and the card that lay on the reader meanwhile is read
// again, since a reconnect forgets.
func TestPullReplug(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{ForceNewName: true})
	_, rec := start(t, Config{Path: vr.Link()})
	rec.waitState(t, device.StateConnected)
	p := profile(t, "wang-zhe")
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)

	before := vr.Path()
	if err := vr.Pull(); err != nil {
		t.Fatal(err)
	}
	st := rec.waitState(t, device.StateDisconnected)
	if st.Reason != serial.ReasonPortClosed {
		t.Fatalf("disconnected: %+v", st)
	}
	time.Sleep(300 * time.Millisecond) // a few failed opens
	if err := vr.Plug(); err != nil {
		t.Fatal(err)
	}
	if vr.Path() == before {
		t.Fatalf("replugged under the same name %s", before)
	}
	rec.waitState(t, device.StateConnected)
	rec.expectCard(t, vr.Link(), p.Card)
	waitFinds(t, vr, 3, 0)
	rec.expectNoRead(t)
}

// A port where nothing answers is not "connected": it is reopened, with reason
// no_answer, until the reader answers.
func TestSilentReader(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{Faults: vreader.Faults{Silent: true}})
	d, rec := start(t, Config{Path: vr.Link()})
	_ = d
	st := rec.waitState(t, device.StateConnecting) // start
	for st.Reason != ReasonNoAnswer {
		st = rec.waitState(t, device.StateConnecting)
	}
	for _, s := range rec.StatesSoFar() {
		if s.State == device.StateConnected {
			t.Fatalf("connected to a silent reader: %+v", rec.StatesSoFar())
		}
	}
	vr.SetFaults(vreader.Faults{})
	rec.waitState(t, device.StateConnected)
	p := profile(t, "long-term")
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)
}

// Polls are never closer than the poll interval, and never under 300 ms.
func TestPollInterval(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var finds []time.Time
	vr := reader(t, vreader.Config{OnCommand: func(cmd string, _ byte) {
		if cmd == "find" {
			mu.Lock()
			finds = append(finds, time.Now())
			mu.Unlock()
		}
	}})
	start(t, Config{Path: vr.Link(), Poll: 400 * time.Millisecond})
	waitFinds(t, vr, 5, 5)
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(finds); i++ {
		// The find is stamped when the reader decodes it; the driver waits the interval
		// after the previous answer, which came after the previous find.
		if gap := finds[i].Sub(finds[i-1]); gap < 400*time.Millisecond {
			t.Fatalf("finds %d and %d only %s apart", i-1, i, gap)
		}
	}
	if _, err := New(Config{Name: "x", Path: "/dev/null", Poll: 299 * time.Millisecond}); err == nil {
		t.Fatal("a 299 ms poll was accepted")
	}
}

// By VID/PID through the port list.
func TestOpenByUSBIDs(t *testing.T) {
	t.Parallel()
	vr := reader(t, vreader.Config{})
	ports := func() ([]*enumerator.PortDetails, error) {
		return []*enumerator.PortDetails{
			{Name: "/dev/ttyS0"},
			{Name: vr.Link(), IsUSB: true, VID: "10C4", PID: "EA60", SerialNumber: "GA467"},
		}, nil
	}
	_, rec := start(t, Config{VID: "10c4", PID: "0xea60", SerialNumber: "ga467", Ports: ports})
	if st := rec.waitState(t, device.StateConnected); st.Detail != vr.Link() {
		t.Fatalf("connected %+v", st)
	}
	p := profile(t, "wang-zhe")
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []Config{
		{Path: "/dev/ttyUSB0"},
		{Name: "x"},
		{Name: "x", Path: "/dev/ttyUSB0", VID: "10c4"},
		{Name: "x", VID: "10c4", PID: "xyz"},
		{Name: "x", Path: "/dev/ttyUSB0", Baud: -1},
		{Name: "x", Path: "/dev/ttyUSB0", Poll: time.Millisecond},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	d, err := New(Config{Name: "x", Path: "/dev/ttyUSB0"})
	if err != nil || d.cfg.Baud != DefaultBaud || d.cfg.Poll != MinPoll {
		t.Fatalf("defaults: %+v, %v", d.cfg, err)
	}
}

// No log line carries the card's data, at any level.
func TestNoPersonalDataLogged(t *testing.T) {
	t.Parallel()
	var buf logtest.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	vr := reader(t, vreader.Config{Faults: vreader.Faults{BadCHK: 1}})
	_, rec := start(t, Config{Path: vr.Link(), Logger: log})
	p := profile(t, "wang-zhe")
	place(t, vr, p)
	rec.expectCard(t, vr.Link(), p.Card)
	vr.Remove()
	waitFinds(t, vr, 3, 3) // the driver has acted on the second
	out := buf.String()
	if !strings.Contains(out, "id card read") || !strings.Contains(out, "id card removed") {
		t.Fatalf("log lacks the read and the removal:\n%s", out)
	}
	for _, s := range []string{p.Card.Name, p.Card.IDNumber, p.Card.IDNumber[:6] + p.Card.BirthDate, p.Card.Address[:9], p.Card.Authority} {
		if strings.Contains(out, s) {
			t.Fatalf("log holds %q:\n%s", s, out)
		}
	}
}
