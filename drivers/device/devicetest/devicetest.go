// Package devicetest runs a driver's device in a test as the agent would, and checks
// that it stops cleanly when told. Only tests import it.
package devicetest

import (
	"context"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// Run runs d with sink until the test ends. Then it cancels Run's context: Run must
// return nil within `within`. after, if not nil, runs next (Run has returned, or been
// given up on), for checks on what the sink was told.
func Run(t testing.TB, d device.Device, sink device.Sink, within time.Duration, after func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }() // ends with ctx, cancelled below
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(within):
			t.Errorf("Run did not return within %s of cancel", within)
		}
		if after != nil {
			after()
		}
	})
}

// CheckStopped fails the test unless the last of states (all a sink was told, in
// order) is stopped, as it must be once Run has returned.
func CheckStopped(t testing.TB, states []device.State) {
	t.Helper()
	if len(states) == 0 || states[len(states)-1].State != device.StateStopped {
		t.Errorf("last state is not stopped: %+v", states)
	}
}
