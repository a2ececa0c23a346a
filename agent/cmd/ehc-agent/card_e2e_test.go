//go:build linux

package main

// End-to-end: the agent binary with a pcsc device on a real pcscd, cards played by
// `ehc-agent sim card` (another process, over vpcd) or in this process (drivers/vcard).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/vcard"
	"github.com/ehc-agent/ehc-agent/drivers/vcard/pcscdtest"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

var profiles = filepath.Join("..", "..", "..", "configs", "profiles")

// simCard runs `ehc-agent sim card` until the test ends (or stop is called).
func simCard(t *testing.T, addr, profile string, args ...string) (stop func(), out *bytes.Buffer) {
	t.Helper()
	out = &bytes.Buffer{}
	var mu sync.Mutex
	cmd := exec.Command(agentBin, append([]string{"sim", "card", "--vpcd", addr, "--profile", filepath.Join(profiles, profile)}, args...)...)
	cmd.Stdout = &lockedWriter{w: out, mu: &mu}
	cmd.Stderr = cmd.Stdout
	// A sim card keeps re-inserting itself while vpcd is away: it must not outlive a
	// test binary that was killed, or it would play into a later pcscd on the same port.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	return stop, out
}

func pinFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "psam.pin")
	if err := os.WriteFile(p, []byte("123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCardsThroughTheAgent(t *testing.T) {
	d := pcscdtest.Start(t)
	dir := t.TempDir()
	keys := simKeys(t, agentBin, dir)
	cfg := filepath.Join(dir, "agent.yaml")
	writeConfig(t, cfg, filepath.Join(dir, "state"), keys, fmt.Sprintf(
		"  - {name: desk-reader, driver: pcsc, pcsc: {reader: %q, psam_reader: %q, psam_pin_file: %s}}\n",
		d.Readers[0], d.Readers[1], pinFile(t)))
	a := startAgent(t, cfg)
	a.waitFor(`"readers: Virtual PCD 00 00"`, true, 10*time.Second)

	simCard(t, d.Addr(1), "card-psam.yaml")
	d.WaitCard(1, true)

	stop, _ := simCard(t, d.Addr(0), "card-rhc.yaml")
	a.waitFor("#1 desk-reader resident_health_card valid name=王** id=4401**********2818", false, 10*time.Second)
	stop()
	a.waitFor(`"card_removed"`, true, 3*time.Second)

	stop, _ = simCard(t, d.Addr(0), "card-ssc.yaml")
	a.waitFor("#2 desk-reader social_security_card valid name=买****", false, 10*time.Second)
	stop()
	d.WaitCard(0, false)

	stop, _ = simCard(t, d.Addr(0), "card-transit.yaml")
	a.waitFor("#3 desk-reader unknown invalid (unsupported_card)", false, 10*time.Second)
	stop()
	d.WaitCard(0, false)

	stop, out := simCard(t, d.Addr(0), "card-rhc-pulled.yaml")
	a.waitFor("#4 desk-reader resident_health_card invalid (card_removed)", false, 10*time.Second)
	stop()
	if !strings.Contains(out.String(), "a fault of the profile pulled it") {
		t.Errorf("sim card said:\n%s", out.String())
	}
	a.stop(5 * time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, secret := range []string{"440106198506142818", "王小明", "123456", "12 34 56"} {
		if strings.Contains(a.stderr.String(), secret) || strings.Contains(strings.Join(a.lines, "\n"), secret) {
			t.Errorf("%q reached the agent's output", secret)
		}
	}
}

// A pcscd restart under a running agent: it reads the next card within 5 s of pcscd's return.
func TestAgentSurvivesPCSCDRestart(t *testing.T) {
	d := pcscdtest.Start(t)
	dir := t.TempDir()
	keys := simKeys(t, agentBin, dir)
	cfg := filepath.Join(dir, "agent.yaml")
	writeConfig(t, cfg, filepath.Join(dir, "state"), keys, fmt.Sprintf("  - {name: r, driver: pcsc, pcsc: {reader: %q}}\n", d.Readers[0]))
	a := startAgent(t, cfg)
	a.waitFor(`"readers: Virtual PCD 00 00"`, true, 10*time.Second)
	d.Kill()
	a.waitFor(`"service_lost"`, true, 5*time.Second)
	time.Sleep(time.Second)
	d.Restart()
	back := time.Now()
	// The sim card waits for vpcd itself; here it is started once pcscd is back.
	simCard(t, d.Addr(0), "card-ssc-gen1.yaml")
	a.waitFor("#1 r social_security_card valid name=李*", false, 5*time.Second)
	t.Logf("next card read %s after pcscd's return", time.Since(back).Round(time.Millisecond))
}

func TestCardReadCommand(t *testing.T) {
	d := pcscdtest.Start(t)
	psam, err := vcard.New(&vcard.Profile{Kind: vcard.KindPSAM})
	if err != nil {
		t.Fatal(err)
	}
	in, err := vcard.Insert(context.Background(), d.Addr(1), psam)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Remove)
	d.WaitCard(1, true)
	rhc, err := vcard.New(&vcard.Profile{Kind: vcard.KindRHC, Holder: vcard.Holder{Name: "欧阳娜娜", IDNumber: "440106199005120025"}})
	if err != nil {
		t.Fatal(err)
	}
	card, err := vcard.Insert(context.Background(), d.Addr(0), rhc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(card.Remove)
	pin := pinFile(t)
	read := func(args ...string) (event.Event, string, int) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := runAgent(t, &stdout, &stderr, append([]string{"card", "read", "--reader", d.Readers[0], "--timeout", "5s"}, args...)...)
		var e event.Event
		if stdout.Len() > 0 {
			if err := json.Unmarshal(stdout.Bytes(), &e); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
		}
		return e, stderr.String(), code
	}
	// A card already in the reader counts; masked by default, no photo.
	e, stderr, code := read("--psam-reader", d.Readers[1], "--psam-pin-file", pin)
	if code != 0 || e.Card.Kind != "resident_health_card" || e.Verification.Status != "valid" || e.Identity.Name != "欧***" ||
		e.Identity.IDNumber != "4401**********0025" || e.Identity.Photo != "" || e.Source.Driver != "pcsc" || e.Card.ATR == "" {
		t.Fatalf("exit %d %+v %+v\n%s", code, e, e.Identity, stderr)
	}
	// --unmasked, and the photo to a file.
	photo := filepath.Join(t.TempDir(), "photo.jpg")
	e, stderr, code = read("--psam-reader", d.Readers[1], "--psam-pin-file", pin, "--unmasked", "--photo", photo)
	got, _ := os.ReadFile(photo)
	if code != 0 || e.Identity.Name != "欧阳娜娜" || e.Identity.Photo == "" || !bytes.Equal(got, vcard.Portrait()) {
		t.Fatalf("exit %d %+v (%d photo bytes)\n%s", code, e.Identity, len(got), stderr)
	}
	// Without the PSAM: partial, still exit 0.
	e, _, code = read()
	if code != 0 || !e.Identity.IdentityPartial || e.Verification.Reason != "psam_absent" {
		t.Fatalf("exit %d %+v", code, e)
	}
	// An unsupported card: exit 1, the reason on stderr, the event (with its ATR) printed.
	card.Remove()
	d.WaitCard(0, false)
	transit, _ := vcard.New(&vcard.Profile{Kind: vcard.KindTransit})
	card, err = vcard.Insert(context.Background(), d.Addr(0), transit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(card.Remove)
	e, stderr, code = read()
	if code != 1 || !strings.Contains(stderr, "card read: unsupported_card") || e.Card.ATR != fmt.Sprintf("%X", transit.ATR()) {
		t.Fatalf("exit %d %+v\n%s", code, e.Card, stderr)
	}
	// No card: exit 1 after the timeout.
	card.Remove()
	d.WaitCard(0, false)
	start := time.Now()
	_, stderr, code = read("--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "card read: timeout") || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %s\n%s", code, time.Since(start), stderr)
	}
}
