package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/drivers/serial"
)

// doctorResult is one row of `ehc-agent doctor`.
type doctorResult struct {
	Check  string // what was looked at, e.g. "serial /dev/ttyACM0"
	Status string // doctorPass, doctorWarn, doctorFail, or doctorInfo for a finding that is neither
	Detail string
}

const (
	doctorPass = "pass"
	doctorWarn = "warn"
	doctorFail = "fail"
	doctorInfo = "info"
)

// doctorCheck produces rows of the doctor's table. Checks run in order and must not
// change the machine: doctor runs beside a live agent.
type doctorCheck func(ctx context.Context) []doctorResult

// doctorChecks are the checks `ehc-agent doctor` runs; other files append theirs in
// init (the list is read when the command runs, so init order does not matter).
var doctorChecks = []doctorCheck{doctorSerialPorts(nil)}

// doctorSerialPorts lists the serial ports with their USB ids, one row each, so that
// an installer can copy VID/PID/serial into the configuration. The enumerator opens
// /dev/ttyS* to tell real UARTs from placeholders, which is harmless on a kiosk; tests
// pass their own list.
func doctorSerialPorts(ports serial.Ports) doctorCheck {
	return func(context.Context) []doctorResult {
		list, err := serial.ListPorts(ports)
		if err != nil {
			return []doctorResult{{"serial ports", doctorFail, "cannot list ports: " + err.Error()}}
		}
		if len(list) == 0 {
			return []doctorResult{{"serial ports", doctorWarn, "none found: is the scanner plugged in, and in serial (not keyboard) mode?"}}
		}
		rows := []doctorResult{{"serial ports", doctorPass, fmt.Sprintf("%d found", len(list))}}
		for _, p := range list {
			rows = append(rows, doctorResult{"serial " + p.Path, doctorInfo, portDetail(p)})
		}
		return rows
	}
}

func portDetail(p serial.PortInfo) string {
	if !p.USB {
		return "not USB"
	}
	d := []string{"usb vid=" + p.VID + " pid=" + p.PID}
	if p.SerialNumber != "" {
		d = append(d, "serial="+p.SerialNumber)
	}
	if name := strings.TrimSpace(p.Manufacturer + " " + p.Product); name != "" {
		d = append(d, fmt.Sprintf("product=%q", name))
	}
	return strings.Join(d, " ")
}

// newDoctorCmd runs checks (nil: doctorChecks) and prints them as a table; it exits 1
// when a check fails.
func newDoctorCmd(checks []doctorCheck) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for the agent: serial ports and their USB ids, and more",
		Long: `Run read-only checks and print one row per finding: CHECK, STATUS (pass, warn, fail,
info) and DETAIL. Serial ports are listed with their USB VID, PID and serial number, the
values a device's serial.vid, serial.pid and serial.serial_number take. Exits 1 if any
check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if checks == nil {
				checks = doctorChecks
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
			failed := false
			for _, c := range checks {
				for _, r := range c(cmd.Context()) {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Check, r.Status, r.Detail)
					failed = failed || r.Status == doctorFail
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if failed {
				return errSomeInvalid
			}
			return nil
		},
	}
}

func init() { rootCmd.AddCommand(newDoctorCmd(nil)) }
