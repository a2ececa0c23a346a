package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/event"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

func TestMetricsCountWithoutPersonalData(t *testing.T) {
	h := start(t, nil)
	h.srv.Event(testEvent(1, 64))
	h.srv.Event(testEvent(2, 64))
	bad := testEvent(3, 0)
	bad.Verification = &event.Verification{Status: "invalid", Reason: "expired", Offline: true}
	h.srv.Event(bad)
	// A reason that is not a reason code (here an ID number, as a buggy verifier might
	// produce) must not become a label value.
	odd := testEvent(4, 0)
	odd.Verification = &event.Verification{Status: "invalid", Reason: idNumber}
	h.srv.Event(odd)
	card := testEvent(5, 0)
	card.Code, card.Source.Kind = nil, "card"
	card.Card = &event.Card{Kind: "resident_id_card", Reader: "Virtual PCD 00 00"}
	h.srv.Event(card)

	now := time.Now()
	for _, st := range []string{device.StateConnecting, device.StateConnected, device.StateDisconnected, device.StateConnecting, device.StateConnected} {
		h.srv.DeviceState(device.State{Device: "front-scanner", State: st, At: now})
	}
	h.srv.ObserveVerify(80 * time.Microsecond)
	h.srv.ObserveDelivery(2 * time.Second)

	resp, body := h.do(t, "GET", "/metrics", auth())
	text := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`ehc_agent_scans_total{device="front-scanner",kind="qr",type="ehc_offline"} 4`,
		`ehc_agent_scans_total{device="front-scanner",kind="card",type="resident_id_card"} 1`,
		`ehc_agent_verdicts_total{reason="none",status="valid"} 3`,
		`ehc_agent_verdicts_total{reason="expired",status="invalid"} 1`,
		`ehc_agent_verdicts_total{reason="other",status="invalid"} 1`,
		`ehc_agent_device_state{device="front-scanner",state="connected"} 1`,
		`ehc_agent_device_state{device="front-scanner",state="disconnected"} 0`,
		`ehc_agent_device_reconnects_total{device="front-scanner"} 1`,
		`ehc_agent_outbox_depth 7`,
		`ehc_agent_events_last_seq 5`,
		`ehc_agent_verify_seconds_count 1`,
		`ehc_agent_outbox_delivery_seconds_count 1`,
		`ehc_agent_event_latency_seconds_count 5`,
		`ehc_agent_api_websocket_clients 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, pii := range []string{idNumber, holderName, ehcID, cardNo, codeMasked, mask.Number(idNumber), mask.Name(holderName),
		mask.Number(ehcID), "Virtual PCD", strings.Repeat("A", 64)} {
		if strings.Contains(text, pii) {
			t.Errorf("metrics contain personal data %q", pii)
		}
	}
}
