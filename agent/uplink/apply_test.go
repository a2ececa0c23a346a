package uplink_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
)

func application(t *testing.T, number string) *uplink.Application {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return &uplink.Application{
		ApplicationID: id.String(), TerminalID: terminalID, Source: "id_card_reader",
		Applicant: uplink.Applicant{IDType: "01", IDNumber: number, Name: testName, Address: "北京市海淀区"},
		Consent:   uplink.Consent{TextVersion: "2026-01", At: time.Now().UTC().Format(time.RFC3339)},
	}
}

// A lost answer is retried with the same application_id: one card at the platform, and
// the answer the first attempt would have had. A second application of the same
// resident gets the same card, created false.
func TestApplyRetriesLostAnswer(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sim.SetFaults(platformsim.Faults{DropNext: 1, DropPath: "/api/v1/cards/apply"})
	ctx := context.Background()
	a := application(t, "110108199003071238")
	is, err := e.up.Apply(ctx, a, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st := e.sim.Stats()
	if !is.Created || is.Code != is.EHCID+":1" || st.Drops != 1 || st.Applications != 2 || st.CardsIssued != 1 {
		t.Fatalf("issued %+v, stats %+v", is, st)
	}
	again, err := e.up.Apply(ctx, application(t, "110108199003071238"), 5*time.Second)
	if err != nil || again.Created || again.Code != is.Code {
		t.Fatalf("second application: %+v, %v", again, err)
	}
	if e.sim.Stats().CardsIssued != 1 {
		t.Fatal("a second card was issued")
	}
	if strings.Contains(e.logs.String(), testName) || strings.Contains(e.logs.String(), "110108199003071238") {
		t.Fatal("applicant data in the log")
	}
}

func TestApplyRefusedAndUnreachable(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	_, err := e.up.Apply(ctx, application(t, "110108199003071239"), 5*time.Second)
	var re *uplink.RefusedError
	if !errors.Is(err, uplink.ErrRefused) || !errors.As(err, &re) || re.Reason != "bad_id_number" {
		t.Fatalf("bad check digit: %v", err)
	}

	// Down: every attempt is reset; the answer comes when the timeout is up, not later.
	e.sim.Down(time.Minute)
	t0 := time.Now()
	_, err = e.up.Apply(ctx, application(t, "110108199003071238"), 1500*time.Millisecond)
	took := time.Since(t0)
	if !errors.Is(err, uplink.ErrUnreachable) {
		t.Fatalf("down: %v", err)
	}
	if took < 1400*time.Millisecond || took > 2500*time.Millisecond {
		t.Fatalf("down: answered after %s, want about 1.5 s", took)
	}
	if st := e.sim.Stats(); st.DownResets < 2 || st.CardsIssued != 0 {
		t.Fatalf("down: %+v (want several attempts, no card)", st)
	}

	// Slow beyond the timeout: unreachable too, within it.
	e.sim.Up()
	e.sim.SetFaults(platformsim.Faults{Latency: 3 * time.Second})
	t0 = time.Now()
	_, err = e.up.Apply(ctx, application(t, "110108199003071238"), time.Second)
	if took := time.Since(t0); !errors.Is(err, uplink.ErrUnreachable) || took > 2*time.Second {
		t.Fatalf("slow: %v after %s", err, took)
	}
}
