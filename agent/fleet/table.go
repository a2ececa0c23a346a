package fleet

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// MatchTerminal reports whether terminal id matches pattern: an exact id, or a shell
// pattern (path.Match: * ? [a-z]) such as "K-00*". An empty pattern matches all.
// Terminal ids have no '/', so * never has a level to stop at.
func MatchTerminal(pattern, id string) bool {
	if pattern == "" || pattern == id {
		return true
	}
	ok, err := path.Match(pattern, id)
	return err == nil && ok
}

// CheckPattern reports why pattern can be neither a terminal id nor a shell pattern.
func CheckPattern(pattern string) error {
	if !IsPattern(pattern) {
		return CheckID(pattern)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%q: %v", pattern, err)
	}
	return nil
}

// IsPattern reports whether s has shell pattern characters, as opposed to being one id.
func IsPattern(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// WriteTable writes one row per status, for an operator's terminal (`ehc-agent fleet
// status`): terminal, online or offline and why, device states, trust version and
// staleness, outbox depth and oldest age, and how long ago the status was made.
// now is the reader's clock, for the ages.
func WriteTable(w io.Writer, all []Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TERMINAL\tSTATE\tDEVICES\tTRUST\tOUTBOX\tLAST SEEN")
	for _, s := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.TerminalID, stateCell(s), devicesCell(s), trustCell(s, now), outboxCell(s), seenCell(s, now))
	}
	return tw.Flush()
}

func stateCell(s Status) string {
	if s.Reason != "" {
		return s.State + " (" + s.Reason + ")"
	}
	return s.State
}

// devicesCell names only the devices that need a look: "2/2 connected", or
// "1/2 connected; id-reader disconnected (not_found)".
func devicesCell(s Status) string {
	if s.State != StateOnline {
		return "-" // the last will carries no devices; a stopped agent has none running
	}
	if len(s.Devices) == 0 {
		return "none"
	}
	names := make([]string, 0, len(s.Devices))
	for n := range s.Devices {
		names = append(names, n)
	}
	sort.Strings(names)
	var down []string
	for _, n := range names {
		d := s.Devices[n]
		if d.State == device.StateConnected {
			continue
		}
		x := n + " " + d.State
		if d.Reason != "" {
			x += " (" + d.Reason + ")"
		}
		down = append(down, x)
	}
	cell := fmt.Sprintf("%d/%d connected", len(names)-len(down), len(names))
	if len(down) > 0 {
		cell += "; " + strings.Join(down, ", ")
	}
	return cell
}

func trustCell(s Status, now time.Time) string {
	t := s.Trust
	switch {
	case t == nil:
		return "-"
	case !t.HasKeySet:
		return "no key set"
	}
	cell := fmt.Sprintf("v%d", t.KeySet)
	if t.HasRevocations {
		cell += fmt.Sprintf(" rev v%d", t.Revocations)
	}
	if t.Stale {
		cell += " STALE"
		if !t.NextUpdate.IsZero() && now.After(t.NextUpdate) {
			cell += " " + age(now.Sub(t.NextUpdate))
		}
	}
	return cell
}

func outboxCell(s Status) string {
	o := s.Outbox
	if o == nil {
		return "-"
	}
	cell := fmt.Sprintf("%d", o.Depth)
	if o.Depth > 0 {
		cell += " oldest " + age(time.Duration(o.OldestAgeSeconds*float64(time.Second)))
	}
	if o.Dead > 0 {
		cell += fmt.Sprintf(", %d dead", o.Dead)
	}
	if o.Full {
		cell += ", FULL"
	}
	return cell
}

// seenCell is the age of the status. The broker's last will has no time: it was made
// when the connection came up, and published when it died.
func seenCell(s Status, now time.Time) string {
	if s.At.IsZero() {
		if !s.OnlineSince.IsZero() {
			return "? (up since " + s.OnlineSince.Local().Format("01-02 15:04") + ")"
		}
		return "?"
	}
	return age(now.Sub(s.At)) + " ago"
}

// age is a duration for a glance: "42s", "17m", "5h3m", "12d".
func age(d time.Duration) string {
	switch d = max(d, 0); {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
