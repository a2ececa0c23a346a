package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

const sscReader = "ACS ACR39U ICC Reader 00 00"

// sscEvent is a social security card read by the pcsc device "desk" in reader.
func sscEvent(seq uint64, reader string) *event.Event {
	return &event.Event{EventID: "e", TerminalID: "T-TEST", Seq: seq, OccurredAt: time.Now().UTC(),
		Source: event.Source{Kind: "card", Device: "desk", Driver: "pcsc"},
		Card: &event.Card{Kind: "social_security_card", Reader: reader, ATR: "3B6D00000081544C9786843202AD932A48",
			CardID: "440100D15600000500A1B2C3D4E5F607", Version: "3.00", IssueDate: "20210601", Expiry: "20310601"},
		Verification: &event.Verification{Status: "valid", Offline: true},
		Identity:     &event.Identity{IDType: "01", IDNumber: idNumber, Name: holderName, Gender: "1", CardNo: "A12345678"},
	}
}

const sscPipe = "440100|" + idNumber + "|A12345678|440100D15600000500A1B2C3D4E5F607|" + holderName +
	"|0081544C9786843202AD932A48|3.00|20210601|20310601|T-TEST|" + sscReader + "|"

// sscard asks for the card in a goroutine, so that the test can insert one meanwhile.
func sscard(h *harness, query string) <-chan answer {
	c := make(chan answer, 1)
	go func() {
		t0 := time.Now()
		resp, b, err := h.try("GET", "/compat/v1/sscard"+query, auth())
		c <- answer{resp, b, err, time.Since(t0)}
	}()
	return c
}

type answer struct {
	resp *http.Response
	body []byte
	err  error
	took time.Duration
}

func (a answer) must(t *testing.T, status int) answer {
	t.Helper()
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", a.resp.StatusCode, status, a.body)
	}
	return a
}

func wait(t *testing.T, c <-chan answer) answer {
	t.Helper()
	select {
	case a := <-c:
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("no answer")
	}
	return answer{}
}

func TestSSCardWaitsForTheNextCard(t *testing.T) {
	h := start(t, nil)
	// Not a card read, and a card read of another reader family: neither answers.
	h.srv.Event(testEvent(1, 0))
	idcard := sscEvent(2, "/dev/ttyUSB0")
	idcard.Source.Driver, idcard.Card.Kind = "idcard", "resident_id_card"
	h.srv.Event(idcard)
	c := sscard(h, "?timeout=10s")
	time.Sleep(300 * time.Millisecond)
	select {
	case a := <-c:
		t.Fatalf("answered before any card: %d %s", a.resp.StatusCode, a.body)
	default:
	}
	h.srv.Event(sscEvent(3, sscReader))
	a := wait(t, c).must(t, http.StatusOK)
	if ct := a.resp.Header.Get("Content-Type"); ct != "text/plain; charset=GBK" {
		t.Errorf("Content-Type %q", ct)
	}
	want, _ := simplifiedchinese.GBK.NewEncoder().String(sscPipe)
	if string(a.body) != want {
		got, _ := simplifiedchinese.GBK.NewDecoder().String(string(a.body))
		t.Fatalf("got %q\nwant %q", got, sscPipe)
	}
}

func TestSSCardAnswersTheCardInTheReaderAtOnce(t *testing.T) {
	h := start(t, nil)
	h.srv.DeviceState(device.State{Device: "desk", State: device.StateConnected, At: time.Now()})
	h.srv.Event(sscEvent(1, sscReader))
	a := wait(t, sscard(h, "?charset=utf-8")).must(t, http.StatusOK)
	if string(a.body) != sscPipe || a.took > 2*time.Second {
		t.Fatalf("%s after %s", a.body, a.took)
	}
	if ct := a.resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var j map[string]string
	a = wait(t, sscard(h, "?format=json")).must(t, http.StatusOK)
	if err := json.Unmarshal(a.body, &j); err != nil {
		t.Fatal(err)
	}
	fields := strings.Split(strings.TrimSuffix(sscPipe, "|"), "|")
	names := []string{"IssuingAreaCode", "SocialSecurityNumber", "CardNumber", "CardIdentificationCode", "Name", "CardResetInfo",
		"SpecificationVersion", "IssuingDate", "ExpirationDate", "TerminalNumber", "TerminalDeviceNumber"}
	if len(j) != len(names) {
		t.Errorf("%d fields: %s", len(j), a.body)
	}
	for i, n := range names {
		if j[n] != fields[i] {
			t.Errorf("%s = %q, want %q", n, j[n], fields[i])
		}
	}

	// The card leaves its reader: the next call waits, and times out.
	h.srv.DeviceState(device.State{Device: "desk", State: device.StateConnected, Reason: "card_removed", Detail: sscReader, At: time.Now()})
	a = wait(t, sscard(h, "?timeout=500ms")).must(t, http.StatusGatewayTimeout)
	if !strings.Contains(string(a.body), `"error":"no_card"`) || a.took < 400*time.Millisecond {
		t.Fatalf("%s after %s", a.body, a.took)
	}
	// A card there, then the device loses its readers: no card is there any more.
	h.srv.Event(sscEvent(2, sscReader))
	wait(t, sscard(h, "?timeout=0")).must(t, http.StatusOK)
	h.srv.DeviceState(device.State{Device: "desk", State: device.StateDisconnected, Reason: "no_reader", At: time.Now()})
	wait(t, sscard(h, "?timeout=0")).must(t, http.StatusGatewayTimeout)
}

// With two readers holding cards, the social security card wins over a newer other card.
func TestSSCardPrefersTheSocialSecurityCard(t *testing.T) {
	h := start(t, nil)
	h.srv.Event(sscEvent(1, sscReader))
	rhc := sscEvent(2, "Other Reader 00 00")
	rhc.Card.Kind = "resident_health_card"
	h.srv.Event(rhc)
	a := wait(t, sscard(h, "?charset=utf-8")).must(t, http.StatusOK)
	if string(a.body) != sscPipe {
		t.Fatalf("%s", a.body)
	}
}

func TestSSCardSaysWhyACardIsNotOne(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(e *event.Event)
		reason string
	}{
		{"rhc", func(e *event.Event) { e.Card.Kind = "resident_health_card" }, "not_social_security_card"},
		{"transit", func(e *event.Event) {
			e.Card.Kind, e.Identity, e.Verification.Status, e.Verification.Reason = "unknown", nil, "invalid", "unsupported_card"
		}, "not_social_security_card"},
		{"pulled", func(e *event.Event) {
			e.Identity, e.Verification.Status, e.Verification.Reason = nil, "invalid", "card_removed"
		}, "card_removed"},
		{"garbage", func(e *event.Event) {
			e.Identity, e.Verification.Status, e.Verification.Reason = nil, "invalid", "bad_answer"
		}, "bad_answer"},
		{"mute", func(e *event.Event) {
			e.Card.Kind, e.Identity, e.Verification.Status, e.Verification.Reason = "unknown", nil, "invalid", "card_mute"
		}, "card_mute"},
		{"no card identification code", func(e *event.Event) { e.Card.CardID = "" }, "card_incomplete"},
		{"separator in a field", func(e *event.Event) { e.Identity.Name = "张|三" }, "bad_answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, nil)
			ch := sscard(h, "?timeout=10s")
			time.Sleep(100 * time.Millisecond)
			e := sscEvent(1, sscReader)
			c.change(e)
			h.srv.Event(e)
			a := wait(t, ch).must(t, http.StatusUnprocessableEntity)
			var body struct{ Error, Message, Card_Kind string }
			if err := json.Unmarshal(a.body, &body); err != nil || body.Error != c.reason || body.Message == "" || body.Card_Kind != e.Card.Kind {
				t.Fatalf("%s (%v)", a.body, err)
			}
		})
	}
}

func TestSSCardRequestRules(t *testing.T) {
	h := start(t, nil)
	h.srv.Event(sscEvent(1, sscReader))
	for q, reason := range map[string]string{
		"?format=xml":              "bad_format",
		"?charset=latin1":          "bad_charset",
		"?format=json&charset=gbk": "bad_charset",
		"?timeout=soon":            "bad_timeout",
		"?timeout=-1s":             "bad_timeout",
	} {
		resp, b := h.do(t, "GET", "/compat/v1/sscard"+q, auth())
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"`+reason+`"`) {
			t.Errorf("%s: %d %s", q, resp.StatusCode, b)
		}
	}
	// The same token and Origin rules as /v1/*.
	resp, b := h.do(t, "GET", "/compat/v1/sscard", nil)
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), idNumber) {
		t.Errorf("no token: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do(t, "GET", "/compat/v1/sscard", map[string]string{"token": testToken, "Origin": "http://evil.example"})
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), idNumber) {
		t.Errorf("foreign origin: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do(t, "GET", "/compat/v1/sscard?format=json", map[string]string{"token": testToken, "Origin": "http://kiosk.example:8080"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "http://kiosk.example:8080" || !strings.Contains(string(b), idNumber) {
		t.Errorf("allowed origin: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	// timeout is capped at 60 s, and a stopping agent ends a wait at once.
	h2 := start(t, nil)
	c := sscard(h2, "?timeout=1h")
	time.Sleep(200 * time.Millisecond)
	h2.stop()
	a := wait(t, c)
	if a.err == nil && a.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("at stop: %d %s", a.resp.StatusCode, a.body)
	}
}
