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
			Version: "3.00", IssueDate: "20230301", Expiry: "20330301"},
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
	for _, kept := range []string{`"kind":"social_security_card"`, `"reader":"R 00 00"`, `"atr":"3B6D"`, `"name":"张三"`} {
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
