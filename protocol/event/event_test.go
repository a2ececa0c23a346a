package event

import (
	"encoding/json"
	"strings"
	"testing"
)

// What the local API alone may see (the photo, the card's own details) never leaves in
// ForPlatform's copy, and the original keeps it.
func TestForPlatformKeepsLocalFieldsLocal(t *testing.T) {
	e := &Event{EventID: "x", Seq: 1, Source: Source{Kind: "card", Device: "r", Driver: "pcsc"},
		Card: &Card{Kind: "social_security_card", Reader: "R 00 00", ATR: "3B6D", CardID: "650100D156000005",
			Version: "3.00", IssueDate: "20230301", Expiry: "20330301", ReaderStatus: "33"},
		Identity: &Identity{Name: "张三", Photo: "SECRETPHOTO"}}
	b, err := json.Marshal(e.ForPlatform())
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range []string{"SECRETPHOTO", "650100D156000005", "card_id", "3.00", "20230301", "20330301", "issue_date", "expiry", `"version"`} {
		if strings.Contains(string(b), local) {
			t.Errorf("%s reached the platform's copy: %s", local, b)
		}
	}
	for _, kept := range []string{`"kind":"social_security_card"`, `"reader":"R 00 00"`, `"atr":"3B6D"`, `"name":"张三"`, `"reader_status":"33"`} {
		if !strings.Contains(string(b), kept) {
			t.Errorf("%s missing from the platform's copy: %s", kept, b)
		}
	}
	if e.Card.CardID == "" || e.Identity.Photo == "" {
		t.Errorf("the original lost its local fields: %+v %+v", e.Card, e.Identity)
	}
	local, _ := json.Marshal(e)
	if !strings.Contains(string(local), `"card_id":"650100D156000005"`) || !strings.Contains(string(local), `"version":"3.00"`) {
		t.Errorf("the local API's copy lacks the card's details: %s", local)
	}
}

// A resident ID card's identity reaches the platform with PLATFORM.md's identity fields
// only: its address, issuing authority and validity (and photo) stay on the local API.
func TestForPlatformKeepsIDCardDetailsLocal(t *testing.T) {
	e := &Event{EventID: "x", Seq: 2, Source: Source{Kind: "card", Device: "idr", Driver: "idcard"},
		Card: &Card{Kind: "resident_id_card", Reader: "idr"},
		Identity: &Identity{IDType: "01", IDNumber: "11010519491231002X", Name: "张三", Gender: "1", Ethnicity: "01",
			BirthDate: "19491231", Address: "北京市东城区某街1号", IDAuthority: "北京市公安局东城分局",
			IDValidFrom: "20200101", IDValidTo: "长期", Photo: "V0xURk9UTw=="}}
	b, err := json.Marshal(e.ForPlatform())
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range []string{"北京市东城区某街1号", "北京市公安局东城分局", "20200101", "长期", "V0xURk9UTw==",
		`"address"`, `"id_authority"`, `"id_valid_from"`, `"id_valid_to"`, `"photo"`} {
		if strings.Contains(string(b), local) {
			t.Errorf("%s reached the platform's copy: %s", local, b)
		}
	}
	for _, kept := range []string{`"id_type":"01"`, `"id_number":"11010519491231002X"`, `"name":"张三"`, `"gender":"1"`,
		`"ethnicity":"01"`, `"birth_date":"19491231"`, `"kind":"resident_id_card"`} {
		if !strings.Contains(string(b), kept) {
			t.Errorf("%s missing from the platform's copy: %s", kept, b)
		}
	}
	if id := e.Identity; id.Address == "" || id.IDAuthority == "" || id.IDValidFrom == "" || id.IDValidTo == "" || id.Photo == "" {
		t.Errorf("the original (the local API's) lost its fields: %+v", id)
	}
}

// A card application's event carries the applicant masked, on every copy, and its
// summary (the log line) too; masking again changes nothing.
func TestApplicationEventMasked(t *testing.T) {
	e := &Event{EventID: "x", Seq: 3, Source: Source{Kind: SourceApplication, Device: "idr", Driver: DriverApply},
		Application: &Application{ApplicationID: "a", Result: ApplicationCreated, EHCID: "EHC0000000000000001", Source: "id_card_reader",
			Applicant: MaskApplicant("01", "11010519491231002X", "张三丰")}}
	if a := e.Application.Applicant; a.IDNumber != "1101**********002X" || a.Name != "张**" {
		t.Fatalf("not masked: %+v", a)
	}
	// Even one built by hand, unmasked, leaves masked.
	raw := *e
	app := *e.Application
	app.Applicant = Applicant{IDType: "01", IDNumber: "11010519491231002X", Name: "张三丰"}
	raw.Application = &app
	for _, ev := range []*Event{e.ForPlatform(), raw.ForPlatform()} {
		b, _ := json.Marshal(ev)
		for _, secret := range []string{"11010519491231002X", "张三丰", "0519491231"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s in %s", secret, b)
			}
		}
		if !strings.Contains(string(b), `"applicant":{"id_type":"01","id_number":"1101**********002X","name":"张**"}`) ||
			!strings.Contains(string(b), `"result":"created"`) || !strings.Contains(string(b), `"ehc_id":"EHC0000000000000001"`) {
			t.Errorf("platform copy: %s", b)
		}
		if strings.Contains(string(b), `"identity"`) || strings.Contains(string(b), `"code"`) || strings.Contains(string(b), `"card"`) {
			t.Errorf("fields that do not apply are present: %s", b)
		}
	}
	if s := raw.Summary(); strings.Contains(s, "11010519491231002X") || strings.Contains(s, "张三丰") || !strings.Contains(s, "card_application created") {
		t.Errorf("summary: %s", s)
	}
}
