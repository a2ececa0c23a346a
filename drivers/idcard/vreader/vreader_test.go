package vreader

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goserial "go.bug.st/serial"

	"github.com/ehc-agent/ehc-agent/protocol/ga467"
	"github.com/ehc-agent/ehc-agent/protocol/hextest"
)

// host is the other end of the pty: a raw port, commands written by hand.
type host struct {
	t    *testing.T
	port goserial.Port
}

func openHost(t *testing.T, r *Reader) *host {
	t.Helper()
	p, err := goserial.Open(r.Path(), &goserial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &host{t: t, port: p}
}

// ask writes cmd and returns the first frame that comes back (nil after a second of
// silence), with the bytes dropped before it (or, with no frame, all of them).
func (h *host) ask(cmd []byte) (frame []byte, dropped int) {
	h.t.Helper()
	if _, err := h.port.Write(cmd); err != nil {
		h.t.Fatal(err)
	}
	var d ga467.Decoder
	buf := make([]byte, 4096)
	h.port.SetReadTimeout(time.Second)
	for {
		n, err := h.port.Read(buf)
		if err != nil {
			h.t.Fatal(err)
		}
		var evs []ga467.Event
		if n == 0 {
			evs = d.Expire(nil)
		} else {
			evs = d.Feed(buf[:n], nil)
		}
		for _, e := range evs {
			if e.Kind == ga467.EventDrop {
				dropped += e.Dropped
				continue
			}
			f, _ := ga467.AppendFrame(nil, e.Body)
			return f, dropped
		}
		if n == 0 {
			return nil, dropped
		}
	}
}

var unhex = hextest.Decode

func newReader(t *testing.T, c Config) *Reader {
	t.Helper()
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func testProfile(t *testing.T, name string) Profile {
	t.Helper()
	p, err := LoadProfile(filepath.Join("..", "..", "..", "configs", "profiles", "idcard-"+name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The reader answers exactly the frames of CARDS.md.
func TestSpecDialogue(t *testing.T) {
	r := newReader(t, Config{Halt: true})
	h := openHost(t, r)
	for _, step := range []struct {
		cmd, want string
	}{
		{ga467.FindCard, "AA AA AA 96 69 00 04 00 00 80 84"},
		{ga467.SelectCard, "AA AA AA 96 69 00 04 00 00 81 85"},
		{ga467.ReadCard, "AA AA AA 96 69 00 04 00 00 41 45"},
	} {
		if got, _ := h.ask([]byte(step.cmd)); !bytes.Equal(got, unhex(t, step.want)) {
			t.Fatalf("no card: % X answered % X, want %s", step.cmd, got, step.want)
		}
	}
	p := testProfile(t, "wang-zhe")
	if err := p.Place(r); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.ask([]byte(ga467.ReadCard)); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 04 00 00 41 45")) {
		t.Fatalf("read before select: % X", got)
	}
	if got, _ := h.ask([]byte(ga467.FindCard)); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")) {
		t.Fatalf("find: % X", got)
	}
	if got, _ := h.ask([]byte(ga467.SelectCard)); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C")) {
		t.Fatalf("select: % X", got)
	}
	got, _ := h.ask([]byte(ga467.ReadCard))
	if len(got) != 1295 || !bytes.HasPrefix(got, unhex(t, "AA AA AA 96 69 05 08 00 00 90 01 00 04 00")) {
		t.Fatalf("read: %d bytes, % X…", len(got), got[:min(len(got), 16)])
	}
	c, err := ga467.ParseCard(got[ga467.HeaderLen+3 : len(got)-1])
	if err != nil || c.Name != p.Card.Name || c.IDNumber != p.Card.IDNumber || !bytes.Equal(c.Photo, p.Card.Photo) {
		t.Fatalf("record: %v", err)
	}
	// Halt: the card read stops answering until placed again.
	if got, _ := h.ask([]byte(ga467.FindCard)); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 04 00 00 80 84")) {
		t.Fatalf("find after read with Halt: % X", got)
	}
	// A command with a wrong CHK gets status 10; an unknown one nothing.
	bad := []byte(ga467.FindCard)
	bad[len(bad)-1] ^= 1
	if got, _ := h.ask(bad); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 04 00 00 10 14")) {
		t.Fatalf("bad CHK: % X", got)
	}
	unknown, _ := ga467.Command{Cmd: 0x11, Para: 0xFF}.AppendBinary(nil)
	if got, _ := h.ask(unknown); got != nil {
		t.Fatalf("unknown command answered % X", got)
	}
	s := r.Stats()
	if s.Finds != 3 || s.FindsEmpty != 2 || s.Selects != 2 || s.Reads != 3 || s.ReadsOK != 1 || s.BadCommands != 1 || s.Commands != 10 {
		t.Fatalf("stats %+v", s)
	}
}

// Faults: junk and split answers still carry the frame; BadCHK garbles the first reads of
// a placement; ReadFail fails them, ReadStatus answers them with its status; Silent
// answers nothing.
func TestFaults(t *testing.T) {
	r := newReader(t, Config{Faults: Faults{Split: true, Junk: true, BadCHK: 1}, Seed: 3})
	h := openHost(t, r)
	p := testProfile(t, "long-name")
	if err := p.Place(r); err != nil {
		t.Fatal(err)
	}
	want, _ := p.Card.ReadAnswer()
	for range 3 {
		got, dropped := h.ask([]byte(ga467.SelectCard))
		if len(got) != 19 || dropped == 0 {
			t.Fatalf("select with junk: % X, %d dropped", got, dropped)
		}
	}
	if got, dropped := h.ask([]byte(ga467.ReadCard)); got != nil || dropped < ga467.MaxFrame {
		t.Fatalf("garbled read answer: %d bytes decoded, %d dropped", len(got), dropped)
	}
	if got, _ := h.ask([]byte(ga467.ReadCard)); !bytes.Equal(got, want) {
		t.Fatalf("second read: %d bytes", len(got))
	}
	r.SetFaults(Faults{ReadFail: true})
	if got, _ := h.ask([]byte(ga467.ReadCard)); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 04 00 00 41 45")) {
		t.Fatalf("ReadFail: % X", got)
	}
	r.SetFaults(Faults{ReadStatus: 0x33})
	if got, _ := h.ask([]byte(ga467.ReadCard)); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 04 00 00 33 37")) {
		t.Fatalf("ReadStatus 33: % X", got)
	}
	r.SetFaults(Faults{Silent: true})
	if got, _ := h.ask([]byte(ga467.FindCard)); got != nil {
		t.Fatalf("Silent answered % X", got)
	}
}

// Pull ends the host's port; Plug gives a new one, and the card is still there but not
// selected.
func TestPullPlug(t *testing.T) {
	link := filepath.Join(t.TempDir(), "reader")
	r := newReader(t, Config{Link: link, ForceNewName: true})
	if err := r.Place(testProfile(t, "long-term").Card); err != nil {
		t.Fatal(err)
	}
	h := openHost(t, r)
	h.ask([]byte(ga467.SelectCard))
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); err == nil {
		t.Fatal("link left while unplugged")
	}
	if err := r.Plug(); err != nil {
		t.Fatal(err)
	}
	h = openHost(t, r)
	if got, _ := h.ask([]byte(ga467.ReadCard)); !bytes.Equal(got, unhex(t, "AA AA AA 96 69 00 04 00 00 41 45")) {
		t.Fatalf("read without select after replug: % X", got)
	}
	if got, _ := h.ask([]byte(ga467.FindCard)); len(got) != 15 {
		t.Fatalf("find after replug: % X", got)
	}
}

func TestWait(t *testing.T) {
	r := newReader(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx, func(s Stats) bool { return s.Finds > 0 }); err == nil {
		t.Fatal("Wait returned without a find")
	}
	r.Remove() // nothing to remove: no change
	if err := r.Place(testProfile(t, "wang-zhe").Card); err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(context.Background(), func(s Stats) bool { return s.Placements == 1 }); err != nil {
		t.Fatal(err)
	}
}

func TestProfiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "configs", "profiles", "idcard-*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("%d profiles, %v", len(files), err)
	}
	for _, f := range files {
		if _, err := LoadProfile(f); err != nil {
			t.Errorf("%v", err)
		}
	}
	if p := testProfile(t, "foreign"); p.Type != 'I' {
		t.Errorf("foreign profile type %q", p.Type)
	}
	if p := testProfile(t, "long-term"); p.Card.ValidTo != ga467.LongTerm || !strings.HasSuffix(p.Card.IDNumber, "X") {
		t.Errorf("long-term profile %q %q", p.Card.ValidTo, p.Card.IDNumber[17:])
	}

	base := "name: 王喆\ngender: 1\nethnicity: 01\nbirth_date: 19900307\naddress: 北京\nid_number: 110108199003071238\n" +
		"authority: 北京市公安局\nvalid_from: 20150307\nvalid_to: 20350307\n"
	p, err := ParseProfile([]byte(base), "unquoted")
	if err != nil || p.Card.Ethnicity != "01" || p.Card.BirthDate != "19900307" || len(p.Card.Photo) != ga467.MaxPhotoLen {
		t.Fatalf("unquoted scalars: %+v, %v", p.Card, err)
	}
	for _, bad := range []string{
		base + "nickname: x\n",
		strings.Replace(base, "王喆", "穆罕默德·阿卜杜热合曼·吐尔逊江", 1),
		strings.Replace(base, "19900307", "1990-03-07", 1),
		strings.Replace(base, "110108199003071238", "1101081990030712", 1),
		base + "card_type: X\n",
		base + "photo: '***'\n",
	} {
		if _, err := ParseProfile([]byte(bad), "bad"); err == nil {
			t.Errorf("accepted:\n%s", bad)
		} else if strings.Contains(err.Error(), "1101081990030712") {
			t.Errorf("error quotes the data: %v", err)
		}
	}
}
