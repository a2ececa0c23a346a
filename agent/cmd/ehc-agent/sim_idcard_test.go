package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goserial "go.bug.st/serial"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/idcard"
	"github.com/ehc-agent/ehc-agent/drivers/idcard/vreader"
	"github.com/ehc-agent/ehc-agent/protocol/ga467"
)

// The sim reader's cards reach the real idcard driver through the link; lines on
// standard input lift and place them; stopping it removes the link.
func TestSimIDCardToDriver(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "idcard")
	files := []string{
		filepath.Join("..", "..", "..", "configs", "profiles", "idcard-wang-zhe.yaml"),
		filepath.Join("..", "..", "..", "configs", "profiles", "idcard-long-name.yaml"),
	}
	var ps []vreader.Profile
	for _, f := range files {
		p, err := vreader.LoadProfile(f)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	o := simIDCardOpts{link: link, profiles: files, baud: 115200}
	faults, err := parseIDCardFaults("split,junk,bad_chk")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	inR, inW := io.Pipe()
	defer inW.Close()
	var stderr simIDCardStderr
	done := make(chan error, 1)
	go func() { done <- runSimIDCard(ctx, outW, &stderr, inR, o, ps, faults) }()
	first, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(first); len(f) != 4 || f[0] != "pty" || !strings.HasPrefix(f[1], "/dev/pts/") || f[2] != "link" || f[3] != link {
		t.Fatalf("first line %q", first)
	}

	dev, err := idcard.New(idcard.Config{Name: "sim", Path: link, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	sink := &simIDCardSink{reads: make(chan device.Read, 8)}
	devCtx, devCancel := context.WithCancel(context.Background())
	devDone := make(chan error, 1)
	go func() { devDone <- dev.Run(devCtx, sink) }()
	expect := func(p vreader.Profile) {
		t.Helper()
		select {
		case r := <-sink.reads:
			id := r.Card.Identity
			if r.Card.Reason != "" || id == nil || id.IDNumber != p.Card.IDNumber || id.Name != p.Card.Name {
				t.Fatalf("read %+v", r.Card)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no card read; sim said:\n%s", stderr.String())
		}
	}
	expect(ps[0])
	io.WriteString(inW, "remove\n")
	time.Sleep(time.Second) // three polls without the card
	io.WriteString(inW, "place 2\n")
	expect(ps[1])
	devCancel()
	<-devDone

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log := stderr.String()
	for _, want := range []string{"card placed: 1 (idcard-wang-zhe.yaml)", "card removed", "card placed: 2 (idcard-long-name.yaml)", "host: read, answered 90"} {
		if !strings.Contains(log, want) {
			t.Errorf("sim log lacks %q:\n%s", want, log)
		}
	}
	for _, p := range ps {
		if strings.Contains(log, p.Card.Name) || strings.Contains(log, p.Card.IDNumber) {
			t.Errorf("sim log holds card data:\n%s", log)
		}
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link left behind: %v", err)
	}
}

type simIDCardSink struct{ reads chan device.Read }

func (s *simIDCardSink) Read(r device.Read) { s.reads <- r }
func (s *simIDCardSink) Drop(device.Drop)   {}
func (s *simIDCardSink) State(device.State) {}

// simIDCardStderr is a Writer the test can read while the sim writes.
type simIDCardStderr struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *simIDCardStderr) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *simIDCardStderr) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// As a process: the pty line on stdout, the spec's answer to a find on the link, SIGINT
// ends it with status 0 and removes the link; no profile is a usage error.
func TestSimIDCardProcess(t *testing.T) {
	link := filepath.Join(t.TempDir(), "idcard")
	profile := filepath.Join("..", "..", "..", "configs", "profiles", "idcard-long-term.yaml")
	cmd := startSimProcess(t, link, "idcard", "--link", link, "--profile", profile, "--baud", "0")
	host, err := goserial.Open(link, &goserial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Write([]byte(ga467.FindCard)); err != nil {
		t.Fatal(err)
	}
	host.SetReadTimeout(10 * time.Second)
	want := "\xAA\xAA\xAA\x96\x69\x00\x08\x00\x00\x9F\x00\x00\x00\x00\x97"
	got := ""
	buf := make([]byte, 64)
	for len(got) < len(want) {
		n, err := host.Read(buf)
		if err != nil || n == 0 {
			t.Fatalf("read % X: %v", got, err)
		}
		got += string(buf[:n])
	}
	if got != want {
		t.Fatalf("find answered % X", got)
	}
	interruptSimProcess(t, cmd, link)

	for _, args := range [][]string{
		{"sim", "idcard", "--link", link},
		{"sim", "idcard", "--link", link, "--profile", profile, "--faults", "fire"},
		{"sim", "idcard", "--link", link, "--profile", filepath.Join(t.TempDir(), "none.yaml")},
	} {
		err := exec.Command(agentBin, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
		}
	}
}

func TestSimIDCardFaults(t *testing.T) {
	f, err := parseIDCardFaults("split, junk,bad_chk=3,read_fail,silent")
	if err != nil || !f.Split || !f.Junk || f.BadCHK != 3 || !f.ReadFail || !f.Silent {
		t.Fatalf("%+v, %v", f, err)
	}
	if f, err := parseIDCardFaults("none"); err != nil || f != (vreader.Faults{}) {
		t.Fatalf("none: %+v, %v", f, err)
	}
	if f, err := parseIDCardFaults("bad_chk"); err != nil || f.BadCHK != 1 {
		t.Fatalf("bad_chk: %+v, %v", f, err)
	}
	for _, bad := range []string{"fire", "bad_chk=x", "bad_chk=-1", "split=2"} {
		if _, err := parseIDCardFaults(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
