package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Card applications on the event stream, end to end through the built agent: an
// application answered and one the platform could not be reached for each make one
// card_application event, seen at the local API (GET /v1/events) and delivered through
// the outbox to the platform emulator, the applicant masked in both, and neither the
// applicant nor the ID card's address in a log line or the outbox file. The ID card's
// own read reaches the platform without its address, authority and validity.
func TestApplicationEventsReachAPIAndPlatform(t *testing.T) {
	r := newApplyRig(t)
	consent := map[string]any{"text_version": "2026-01"}
	r.place(1)
	a := r.post("/v1/applications", map[string]any{"source": "id_card_reader", "card_seq": 1, "consent": consent})
	if a.status != 201 {
		t.Fatalf("application: %d %v", a.status, a.body)
	}
	appID, ehcID := a.body["application_id"].(string), a.body["ehc_id"].(string)

	// The platform down for a moment: platform_unreachable, and the attempt is an event.
	r.sim.Down(time.Minute)
	a = r.post("/v1/applications", map[string]any{"source": "manual", "consent": consent,
		"applicant": map[string]any{"id_number": "11010519491231002X", "name": "赵六"}})
	if a.status != 503 || a.body["error"] != "platform_unreachable" {
		t.Fatalf("platform down: %d %v", a.status, a.body)
	}
	r.sim.Up()

	// The local API: the events were committed before the answers, so they are there.
	st, body := r.get("/v1/events?after=0")
	if st != 200 {
		t.Fatalf("/v1/events: %d %s", st, body)
	}
	var local []event.Event
	if err := json.Unmarshal(body, &local); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(local) != 3 || local[0].Card == nil || local[0].Card.Kind != "resident_id_card" {
		t.Fatalf("local events: %s", body)
	}
	// The local API keeps the ID card's own fields; the platform never gets them (below).
	if local[0].Identity == nil || local[0].Identity.Address == "" || local[0].Identity.IDValidTo == "" {
		t.Fatalf("the local API lost the ID card's address or validity: %+v", local[0].Identity)
	}
	created, unreachable := local[1], local[2]
	checkApp := func(where string, e event.Event, id, result, ehc, source, device string, cardSeq uint64, number, name string) {
		t.Helper()
		x := e.Application
		if x == nil || e.Source != (event.Source{Kind: "card_application", Device: device, Driver: "apply"}) ||
			(id != "" && x.ApplicationID != id) || x.Result != result || x.EHCID != ehc || x.Source != source || x.CardSeq != cardSeq ||
			x.Applicant.IDNumber != number || x.Applicant.Name != name || x.Applicant.IDType != "01" {
			t.Errorf("%s: %+v %+v", where, e.Source, x)
		}
		if e.Identity != nil || e.Card != nil || e.Code != nil {
			t.Errorf("%s: fields that do not apply: %+v", where, e)
		}
	}
	checkApp("local created", created, appID, "created", ehcID, "id_card_reader", "idcard", 1, "1101**********1238", "王*")
	checkApp("local unreachable", unreachable, "", "platform_unreachable", "", "manual", "local_api", 0, "1101**********002X", "赵*")
	if created.Seq != 2 || unreachable.Seq != 3 {
		t.Errorf("seqs %d %d", created.Seq, unreachable.Seq)
	}

	// The platform: all three delivered through the outbox once it is back.
	deadline := time.Now().Add(30 * time.Second)
	for len(r.sim.Events()) < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	got := r.sim.Events()
	if len(got) != 3 {
		t.Fatalf("the platform has %d events, want 3", len(got))
	}
	bySeq := map[uint64][]byte{}
	for _, e := range got {
		bySeq[e.Seq] = e.JSON
	}
	for seq, want := range map[uint64]event.Event{2: created, 3: unreachable} {
		var e event.Event
		if err := json.Unmarshal(bySeq[seq], &e); err != nil {
			t.Fatalf("seq %d at the platform: %v", seq, err)
		}
		if e.EventID != want.EventID {
			t.Errorf("seq %d: event_id %s at the platform, %s locally", seq, e.EventID, want.EventID)
		}
		checkApp("platform", e, want.Application.ApplicationID, want.Application.Result, want.Application.EHCID,
			want.Application.Source, want.Source.Device, want.Application.CardSeq, want.Application.Applicant.IDNumber, want.Application.Applicant.Name)
	}
	for _, local := range []string{`"address"`, `"id_authority"`, `"id_valid_from"`, `"id_valid_to"`, `"photo"`, r.card.Card.Address} {
		if bytes.Contains(bySeq[1], []byte(local)) {
			t.Errorf("the ID card's %s reached the platform: %s", local, bySeq[1])
		}
	}
	if st := r.sim.Stats(); st.UnmaskedApplicants != 0 || st.IDCardDetailLeaks != 0 || st.PhotoLeaks != 0 || len(st.Rejected) != 0 {
		t.Errorf("platform stats %+v", st)
	}
	for seq, js := range bySeq {
		if seq == 1 {
			continue // the ID card's read carries its identity, as every card read does
		}
		for _, pii := range []string{"110108199003071238", "王喆", "11010519491231002X", "赵六"} {
			if bytes.Contains(js, []byte(pii)) {
				t.Errorf("%s unmasked in event %d at the platform: %s", pii, seq, js)
			}
		}
	}

	// The logs and the outbox file: no applicant, no address, in clear.
	r.agent.stop(5 * time.Second)
	r.agent.mu.Lock()
	logs := r.agent.stderr.String() + strings.Join(r.agent.lines, "\n")
	r.agent.mu.Unlock()
	db, err := os.ReadFile(filepath.Join(r.state, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pii := range []string{"110108199003071238", "王喆", "11010519491231002X", "赵六", r.card.Card.Address} {
		if strings.Contains(logs, pii) {
			t.Errorf("%s in the agent's logs", pii)
		}
		if bytes.Contains(db, []byte(pii)) {
			t.Errorf("%s in clear in agent.db", pii)
		}
	}
	if !strings.Contains(logs, "card_application created") || !strings.Contains(logs, "card_application platform_unreachable") {
		t.Errorf("the console lines lack the application events:\n%s", strings.Join(r.agent.lines, "\n"))
	}
}
