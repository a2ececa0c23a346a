package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/fleet"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// fleetFlags are the operator's side of the broker connection, shared by the fleet tools.
type fleetFlags struct {
	broker, prefix, caFile, clientCert, clientKey string
	timeout                                       time.Duration
}

func (f *fleetFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.broker, "broker", "", "broker URL: mqtts://host[:8883] (mqtt:// on loopback only)")
	cmd.Flags().StringVar(&f.prefix, "prefix", config.DefaultFleetPrefix, "topic prefix, as the terminals' fleet.prefix")
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "PEM CA(s) of the broker's certificate (mqtts)")
	cmd.Flags().StringVar(&f.clientCert, "client-cert", "", "PEM operator client certificate (mqtts)")
	cmd.Flags().StringVar(&f.clientKey, "client-key", "", "PEM key of the client certificate")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
}

// dial connects as an operator; key may be nil when nothing is signed.
func (f *fleetFlags) dial(ctx context.Context, key []byte) (*fleet.Operator, error) {
	if f.broker == "" {
		return nil, usageErrorf("--broker is required")
	}
	u, err := fleet.ParseBroker(f.broker)
	if err != nil {
		return nil, usageErrorf("--broker: %v", err)
	}
	o := fleet.OperatorOptions{Broker: f.broker, Prefix: f.prefix}
	if fleet.IsTLS(u) {
		if f.caFile == "" || f.clientCert == "" || f.clientKey == "" {
			return nil, usageErrorf("mqtts needs --ca-file, --client-cert and --client-key")
		}
		var tc *tls.Config
		if tc, err = uplink.LoadTLS(f.caFile, f.clientCert, f.clientKey); err != nil {
			return nil, usageErrorf("%v", err)
		}
		o.TLS = tc
	}
	if key != nil {
		if o.Key, err = sm2sig.ParsePrivateKey(key); err != nil {
			return nil, usageErrorf("--key: %v", err)
		}
	}
	op, err := fleet.DialOperator(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return op, nil
}

func newSimFleetCmdCmd() *cobra.Command {
	var (
		f       fleetFlags
		keyFile string
		term    string
	)
	cmd := &cobra.Command{
		Use:   "fleet-cmd --broker URL --key FLEET_KEY --terminal ID VERB [NAME=VALUE ...]",
		Short: "Sign a fleet command with the fleet key, send it to one terminal, print its reply",
		Long: `Sign a command (docs/FLEET.md, Command signing) with the fleet's SM2 private key,
publish it on <prefix>/<terminal>/cmd/<VERB> and print the terminal's reply as JSON.
NAME=VALUE pairs become the args object: "trigger device=front-scanner" sends
{"device": "front-scanner"}.

Verbs: ` + strings.Join(fleet.Verbs, ", ") + `.
The key is a PEM "PRIVATE KEY" (openssl genpkey -algorithm SM2) or 64 hex digits.
Exits 1 when the terminal refuses the command or it fails, 2 when no reply comes.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" || term == "" {
				return usageErrorf("--key and --terminal are required")
			}
			if err := fleet.CheckID(term); err != nil {
				return usageErrorf("--terminal: %v", err)
			}
			var cmdArgs map[string]string
			for _, a := range args[1:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return usageErrorf("argument %q is not NAME=VALUE", a)
				}
				if cmdArgs == nil {
					cmdArgs = map[string]string{}
				}
				cmdArgs[k] = v
			}
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return usageErrorf("--key: %v", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			op, err := f.dial(ctx, key)
			if err != nil {
				return err
			}
			defer op.Close()
			var a any
			if cmdArgs != nil {
				a = cmdArgs
			}
			r, err := op.Send(ctx, term, args[0], a)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			out, _ := json.MarshalIndent(r, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			if !r.OK {
				return errSomeInvalid
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "", "the fleet's SM2 private key file (required)")
	cmd.Flags().StringVar(&term, "terminal", "", "terminal id (required)")
	return cmd
}

func newSimFleetStatusCmd() *cobra.Command {
	var (
		f      fleetFlags
		quiet  time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "fleet-status --broker URL",
		Short: "List the retained status of every terminal under a prefix",
		Long: `Read <prefix>/+/status (retained) and print one row per terminal: state, since when,
devices not connected, outbox depth and oldest age, trust staleness, age of the
status. The list is complete once no status has come for --quiet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			op, err := f.dial(ctx, nil)
			if err != nil {
				return err
			}
			defer op.Close()
			all, err := op.Statuses(ctx, quiet)
			if err != nil {
				return err
			}
			if asJSON {
				out, _ := json.MarshalIndent(all, "", "  ")
				fmt.Fprintln(cmd.OutOrStdout(), string(out))
				return nil
			}
			printFleetTable(cmd, all, time.Now())
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&quiet, "quiet", 500*time.Millisecond, "the list is complete after this long without a new status")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the statuses as JSON")
	return cmd
}

func printFleetTable(cmd *cobra.Command, all []fleet.Status, now time.Time) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TERMINAL\tSTATE\tSINCE\tDEVICES\tOUTBOX\tTRUST\tSTATUS AGE")
	for _, s := range all {
		state := s.State
		if s.Reason != "" {
			state += " (" + s.Reason + ")"
		}
		since := "-"
		if !s.OnlineSince.IsZero() {
			since = s.OnlineSince.Local().Format("01-02 15:04:05")
		}
		devices, down := len(s.Devices), []string{}
		for n, d := range s.Devices {
			if d.State != "connected" {
				down = append(down, n)
			}
		}
		sort.Strings(down)
		dev := fmt.Sprintf("%d", devices)
		if s.Devices == nil {
			dev = "-"
		} else if len(down) > 0 {
			dev += " down: " + strings.Join(down, ",")
		}
		outbox, trust, age := "-", "-", "-"
		if o := s.Outbox; o != nil {
			outbox = fmt.Sprintf("%d", o.Depth)
			if o.Depth > 0 {
				outbox += fmt.Sprintf(" oldest %s", time.Duration(o.OldestAgeSeconds*float64(time.Second)).Round(time.Second))
			}
		}
		if t := s.Trust; t != nil {
			trust = fmt.Sprintf("v%d", t.KeySet)
			if t.Stale {
				trust += " stale"
			}
		}
		if !s.At.IsZero() {
			age = now.Sub(s.At).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.TerminalID, state, since, dev, outbox, trust, age)
	}
	tw.Flush()
}

func init() {
	simCmd.AddCommand(newSimFleetCmdCmd())
	simCmd.AddCommand(newSimFleetStatusCmd())
}
