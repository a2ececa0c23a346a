package main

import (
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/daemon"
)

// stateResetRow reports a state reset the running agent still keeps the damaged file
// of (agent/daemon, statereset.go): a warning, since the agent works, but events may
// have been lost and the platform sees a seq gap.
func stateResetRow(r *daemon.StateReset) []doctorResult {
	if r == nil {
		return nil
	}
	return row("state", doctorWarn, fmt.Sprintf("%s: agent.db was damaged (%s) and replaced at %s; kept as %s, %d pending event(s) salvaged, seq resumed above %d — fix: %s",
		r.Reason, r.Cause, r.At.UTC().Format(time.RFC3339), r.MovedTo, r.Salvaged, r.ResumedAbove, r.Hint))
}
