package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// Each cell of the operator's table, for the cases a person must not misread.
func TestWriteTable(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	all := []Status{
		{TerminalID: "K-1", State: StateOnline, At: now.Add(-3 * time.Second),
			Devices: map[string]device.State{"a": {State: device.StateConnected}, "b": {State: device.StateConnecting}},
			Trust:   &trust.Versions{HasKeySet: true, KeySet: 9, HasRevocations: true, Revocations: 4},
			Outbox:  &Outbox{Depth: 120, Dead: 2, Full: true, OldestAgeSeconds: 3 * 86400}},
		{TerminalID: "K-2", State: StateOnline, At: now.Add(-90 * time.Minute), Trust: &trust.Versions{}},
		// The broker's last will: no time of its own, only since when the connection was up.
		{TerminalID: "K-3", State: StateOffline, Reason: OfflineConnectionLost, OnlineSince: now.Add(-time.Hour)},
	}
	var b strings.Builder
	if err := WriteTable(&b, all, now); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(rows) != 4 {
		t.Fatalf("%d lines:\n%s", len(rows), b.String())
	}
	for i, want := range [][]string{
		{"K-1", "online", "1/2 connected; b connecting", "v9 rev v4", "120 oldest 3d, 2 dead, FULL", "3s ago"},
		{"K-2", "none", "no key set", " - ", "1h30m ago"},
		{"K-3", "offline (connection_lost)", "? (up since "},
	} {
		for _, w := range want {
			if !strings.Contains(rows[i+1], w) {
				t.Errorf("row %q lacks %q", rows[i+1], w)
			}
		}
	}
	for _, tc := range []struct {
		pattern, id string
		ok          bool
	}{{"", "K-1", true}, {"K-1", "K-1", true}, {"K-1", "K-10", false}, {"K-*", "K-10", true}, {"K-0[0-4]*", "K-0512", false}, {"[", "[", true}} {
		if got := MatchTerminal(tc.pattern, tc.id); got != tc.ok {
			t.Errorf("MatchTerminal(%q, %q) = %v", tc.pattern, tc.id, got)
		}
	}
	if CheckPattern("K-[") == nil || CheckPattern("a/b") == nil || CheckPattern("K-00*") != nil || CheckPattern("K-0001") != nil {
		t.Error("CheckPattern")
	}
}
