package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/fleet"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// fleetCmd groups the operators' tools of the fleet (docs/FLEET.md, Operator tools):
// they run on IT's workstation, not on a terminal, and are thin wrappers of
// fleet.Operator.
var fleetCmd = &cobra.Command{
	Use:   "fleet",
	Short: "See and steer terminals through the fleet's MQTT broker (for hospital IT)",
	Long: `Read every terminal's retained status from the fleet's MQTT broker, and send
terminals commands signed with the fleet key (docs/FLEET.md).

The connection comes from flags, or from the fleet section of an agent configuration
given with --config (broker, prefix, ca_file, client_cert, client_key); flags win.
The broker's ACL lets a terminal's certificate see only its own topics: operators
connect with an operator certificate (CN fleet-ops in the documented ACL).`,
}

// fleetConn is the operator's side of the broker connection, shared by the fleet tools.
type fleetConn struct {
	config, broker, prefix, caFile, clientCert, clientKey string
	timeout                                               time.Duration
	commandKey                                            string // fleet.command_key of --config, to check --key against
}

func (f *fleetConn) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "agent configuration whose fleet section gives the defaults")
	fl.StringVar(&f.broker, "broker", "", "broker URL: mqtts://host[:8883] (mqtt:// on loopback only)")
	fl.StringVar(&f.prefix, "prefix", config.DefaultFleetPrefix, "topic prefix, as the terminals' fleet.prefix")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM CA(s) of the broker's certificate (mqtts): the only ones trusted")
	fl.StringVar(&f.clientCert, "client-cert", "", "PEM operator client certificate (mqtts)")
	fl.StringVar(&f.clientKey, "client-key", "", "PEM key of the client certificate")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long, all included")
}

// resolve fills what no flag set from --config's fleet section.
func (f *fleetConn) resolve(cmd *cobra.Command) error {
	if f.config == "" {
		return nil
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		if es, ok := config.AsErrors(err); ok {
			for _, e := range es {
				cmd.PrintErrln("config:", e.Error())
			}
			return &exitError{code: 2, err: errConfig}
		}
		return usageErrorf("%v", err)
	}
	fc := cfg.Fleet
	for _, d := range []struct {
		flag string
		dst  *string
		v    string
	}{
		{"broker", &f.broker, fc.Broker}, {"prefix", &f.prefix, fc.Prefix}, {"ca-file", &f.caFile, fc.CAFile},
		{"client-cert", &f.clientCert, fc.ClientCert}, {"client-key", &f.clientKey, fc.ClientKey},
	} {
		if !cmd.Flags().Changed(d.flag) && d.v != "" {
			*d.dst = d.v
		}
	}
	f.commandKey = fc.CommandKey
	return nil
}

// dial connects as an operator; key is nil when nothing is signed.
func (f *fleetConn) dial(ctx context.Context, key *sm2.PrivateKey) (*fleet.Operator, error) {
	if f.broker == "" {
		return nil, usageErrorf("--broker is required (or --config with fleet.broker)")
	}
	u, err := fleet.ParseBroker(f.broker)
	if err != nil {
		return nil, usageErrorf("--broker: %v", err)
	}
	if err := fleet.CheckPrefix(f.prefix); err != nil {
		return nil, usageErrorf("--prefix: %v", err)
	}
	o := fleet.OperatorOptions{Broker: f.broker, Prefix: f.prefix, Key: key}
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
	op, err := fleet.DialOperator(ctx, o)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("broker: %w", err)}
	}
	return op, nil
}

func newFleetStatusCmd() *cobra.Command {
	var (
		f        fleetConn
		terminal string
		quiet    time.Duration
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "status [--config FILE | --broker URL …] [--terminal ID|PATTERN] [--json]",
		Short: "List the retained status of every terminal under the prefix",
		Long: `Read <prefix>/+/status (retained: every terminal's last word, online or its last will)
and print one row per terminal: online or offline and why, device states (those not
connected are named), trust key set version and staleness, outbox depth and its oldest
event's age, and how long ago the status was made. --terminal keeps one terminal, or
those matching a shell pattern ("K-00*"). --json prints the statuses as a JSON array.

The list is complete once no status has come for --quiet. Exit status: 0 listed,
2 bad usage or no broker connection.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := fleet.CheckPattern(terminal); terminal != "" && err != nil {
				return usageErrorf("--terminal: %v", err)
			}
			if err := f.resolve(cmd); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			op, err := f.dial(ctx, nil)
			if err != nil {
				return err
			}
			defer op.Close()
			all, err := op.Statuses(ctx, quiet)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			all = matching(all, terminal)
			if asJSON {
				if all == nil {
					all = []fleet.Status{}
				}
				out, _ := json.MarshalIndent(all, "", "  ")
				fmt.Fprintln(cmd.OutOrStdout(), string(out))
				return nil
			}
			return fleet.WriteTable(cmd.OutOrStdout(), all, time.Now())
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&terminal, "terminal", "", "only this terminal id, or the ids matching a shell pattern")
	cmd.Flags().DurationVar(&quiet, "quiet", 500*time.Millisecond, "the list is complete after this long without a new status")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the statuses as a JSON array")
	return cmd
}

func matching(all []fleet.Status, pattern string) []fleet.Status {
	var out []fleet.Status
	for _, s := range all {
		if fleet.MatchTerminal(pattern, s.TerminalID) {
			out = append(out, s)
		}
	}
	return out
}

// sendParallel bounds the commands in flight when a pattern names many terminals.
const sendParallel = 16

// sendResult is one terminal's outcome, as --json prints it.
type sendResult struct {
	TerminalID string       `json:"terminal_id"`
	Reply      *fleet.Reply `json:"reply,omitempty"`
	Error      string       `json:"error,omitempty"`   // no reply: why
	Skipped    string       `json:"skipped,omitempty"` // not sent: why
}

func newFleetSendCmd() *cobra.Command {
	var (
		f        fleetConn
		keyFile  string
		terminal string
		argsJSON string
		quiet    time.Duration
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "send --key FLEET_KEY --terminal ID|PATTERN [--config FILE | --broker URL …] VERB [NAME=VALUE ...]",
		Short: "Sign a command with the fleet key, send it to terminals, print their replies",
		Long: `Sign a command (docs/FLEET.md, Signing) with the fleet's SM2 private key for each
terminal, publish it on <prefix>/<terminal>/cmd/<VERB> and print the replies.
NAME=VALUE pairs become the args object ("trigger device=front-scanner" sends
{"device": "front-scanner"}); --args gives it as JSON instead.

--terminal is one id, or a shell pattern ("K-00*", "*"): then the terminals are those
whose retained status matches, and the offline ones are skipped (a command that waits
for them arrives stale). Up to 16 commands are in flight at once.

Verbs: ` + strings.Join(fleet.Verbs, ", ") + `.
The key is a PEM "PRIVATE KEY" (openssl genpkey -algorithm SM2) or 64 hex digits. With
--config, a key that is not the pair of fleet.command_key is refused before sending.
--json prints one JSON object per terminal and line: {"terminal_id", "reply"} or
{"terminal_id", "error"} or {"terminal_id", "skipped"}.

Exit status: 0 every terminal ran it; 1 some refused it, failed or were skipped
offline; 2 some gave no reply within --timeout, or bad usage, or no broker connection.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			verb := args[0]
			if keyFile == "" || terminal == "" {
				return usageErrorf("--key and --terminal are required")
			}
			if err := fleet.CheckPattern(terminal); err != nil {
				return usageErrorf("--terminal: %v", err)
			}
			if verb == "" || strings.ContainsAny(verb, "/+#") {
				return usageErrorf("verb %q is not one topic level", verb)
			}
			cmdArgs, err := commandArgs(argsJSON, args[1:])
			if err != nil {
				return err
			}
			if err := f.resolve(cmd); err != nil {
				return err
			}
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return usageErrorf("--key: %v", err)
			}
			key, err := sm2sig.ParsePrivateKey(b)
			if err != nil {
				return usageErrorf("--key: %v", err)
			}
			if f.commandKey != "" {
				pub, err := fleet.ParseCommandKey(f.commandKey)
				if err == nil && !pub.Equal(sm2sig.Public(key)) {
					return usageErrorf("--key is not the private key of fleet.command_key in %s: terminals would answer bad_signature", f.config)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			op, err := f.dial(ctx, key)
			if err != nil {
				return err
			}
			defer op.Close()

			var results []sendResult
			targets := []string{terminal}
			if fleet.IsPattern(terminal) {
				all, err := op.Statuses(ctx, quiet)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				targets = nil
				for _, s := range matching(all, terminal) {
					if s.State != fleet.StateOnline {
						results = append(results, sendResult{TerminalID: s.TerminalID, Skipped: "offline"})
						continue
					}
					targets = append(targets, s.TerminalID)
				}
				if len(targets) == 0 && len(results) == 0 {
					return usageErrorf("no terminal under %s matches %q", f.prefix, terminal)
				}
			}
			results = append(results, sendAll(ctx, op, targets, verb, cmdArgs)...)
			return printSent(cmd.OutOrStdout(), results, asJSON)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "", "the fleet's SM2 private key file (required)")
	cmd.Flags().StringVar(&terminal, "terminal", "", "terminal id, or a shell pattern of ids (required)")
	cmd.Flags().StringVar(&argsJSON, "args", "", `the args as a JSON object, e.g. '{"device":"front-scanner"}'`)
	cmd.Flags().DurationVar(&quiet, "quiet", 500*time.Millisecond, "with a pattern: the list of terminals is complete after this long without a new status")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per terminal and line")
	return cmd
}

// commandArgs is the args object from --args or NAME=VALUE pairs; nil for none.
func commandArgs(raw string, pairs []string) (any, error) {
	if raw != "" {
		if len(pairs) > 0 {
			return nil, usageErrorf("give the args either with --args or as NAME=VALUE, not both")
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
			return nil, usageErrorf("--args must be a JSON object")
		}
		return json.RawMessage(raw), nil
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, a := range pairs {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageErrorf("argument %q is not NAME=VALUE", a)
		}
		m[k] = v
	}
	return m, nil
}

// sendAll sends the command to each terminal, sendParallel at a time, and returns the
// outcomes in the order of terminals.
func sendAll(ctx context.Context, op *fleet.Operator, terminals []string, verb string, args any) []sendResult {
	out := make([]sendResult, len(terminals))
	sem := make(chan struct{}, sendParallel)
	var wg sync.WaitGroup
	for i, t := range terminals {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i].TerminalID = t
			r, err := op.Send(ctx, t, verb, args)
			if err != nil {
				out[i].Error = err.Error()
				if errors.Is(err, context.DeadlineExceeded) {
					out[i].Error = "no reply: " + err.Error()
				}
				return
			}
			out[i].Reply = r
		}()
	}
	wg.Wait()
	return out
}

// printSent prints the outcomes and returns the exit status they make.
func printSent(w io.Writer, results []sendResult, asJSON bool) error {
	code := 0
	for _, r := range results {
		switch {
		case r.Error != "":
			code = 2
		case r.Skipped != "" || !r.Reply.OK:
			code = max(code, 1)
		}
		if asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(w, string(b))
			continue
		}
		switch {
		case r.Skipped != "":
			fmt.Fprintf(w, "%s  skipped: %s\n", r.TerminalID, r.Skipped)
		case r.Error != "":
			fmt.Fprintf(w, "%s  %s\n", r.TerminalID, r.Error)
		case r.Reply.OK:
			fmt.Fprintf(w, "%s  ok\n", r.TerminalID)
			if len(r.Reply.Result) > 0 && string(r.Reply.Result) != "null" {
				var v any
				if json.Unmarshal(r.Reply.Result, &v) == nil {
					b, _ := json.MarshalIndent(v, "  ", "  ")
					fmt.Fprintf(w, "  %s\n", b)
				}
			}
		default:
			what := "refused"
			if r.Reply.Reason == fleet.ReasonFailed || r.Reply.Reason == fleet.ReasonTimeout {
				what = "failed"
			}
			fmt.Fprintf(w, "%s  %s: %s", r.TerminalID, what, r.Reply.Reason)
			if r.Reply.Detail != "" {
				fmt.Fprintf(w, " (%s)", r.Reply.Detail)
			}
			fmt.Fprintln(w)
		}
	}
	switch code {
	case 1:
		return errSomeInvalid
	case 2:
		return &exitError{code: 2, err: errors.New("some terminals gave no reply")}
	}
	return nil
}

func init() {
	fleetCmd.AddCommand(newFleetStatusCmd(), newFleetSendCmd())
	rootCmd.AddCommand(fleetCmd)
}
