package api_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/api"
)

// The platform gauges follow Options.Platform at every scrape; the offset is absent
// until it was measured (a 0 would claim the clocks agree), and without a platform
// there are no platform gauges at all.
func TestPlatformGauges(t *testing.T) {
	none := start(t, nil)
	_, body := none.do(t, "GET", "/metrics", auth())
	for _, name := range []string{"ehc_agent_platform_auth_failed", "ehc_agent_clock_offset"} {
		if strings.Contains(string(body), name) {
			t.Fatalf("no platform configured, yet /metrics has %s", name)
		}
	}

	var mu sync.Mutex
	st := api.PlatformState{}
	h := start(t, func(o *api.Options) {
		o.Platform = func() api.PlatformState { mu.Lock(); defer mu.Unlock(); return st }
	})
	set := func(s api.PlatformState) { mu.Lock(); st = s; mu.Unlock() }
	check := func(step string, want, absent []string) {
		t.Helper()
		_, body := h.do(t, "GET", "/metrics", auth())
		text := string(body)
		for _, w := range want {
			if !strings.Contains(text, "\n"+w+"\n") {
				t.Errorf("%s: /metrics lacks %q", step, w)
			}
		}
		for _, a := range absent {
			if strings.Contains(text, "\n"+a+" ") {
				t.Errorf("%s: /metrics has %s", step, a)
			}
		}
	}
	check("before any answer", []string{"ehc_agent_platform_auth_failed 0", "ehc_agent_clock_offset_exceeded 0"}, []string{"ehc_agent_clock_offset_seconds"})
	set(api.PlatformState{AuthFailed: true, ClockMeasured: true, ClockOffset: 1500 * time.Millisecond})
	check("refused, clocks close", []string{"ehc_agent_platform_auth_failed 1", "ehc_agent_clock_offset_seconds 1.5", "ehc_agent_clock_offset_exceeded 0"}, nil)
	set(api.PlatformState{ClockMeasured: true, ClockOffset: -150 * time.Second, ClockOffsetExceeded: true})
	check("accepted, clock ahead of the platform's", []string{"ehc_agent_platform_auth_failed 0", "ehc_agent_clock_offset_seconds -150", "ehc_agent_clock_offset_exceeded 1"}, nil)
}
