package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// openOutbox opens the outbox of the configured state_dir for a queue command. bbolt
// lets one process hold the file, so with the agent running this fails, saying so.
func openOutbox(cmd *cobra.Command, path string) (*outbox.Outbox, func(), error) {
	cfg, err := config.Load(path)
	if err != nil {
		if es, ok := config.AsErrors(err); ok {
			for _, e := range es {
				cmd.PrintErrln("config:", e.Error())
			}
			return nil, nil, &exitError{code: 2, err: errConfig}
		}
		return nil, nil, usageErrorf("%v", err)
	}
	dbPath := filepath.Join(cfg.StateDir, "agent.db")
	keyPath := filepath.Join(cfg.StateDir, "outbox.key")
	for _, p := range []string{dbPath, keyPath} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, usageErrorf("%s does not exist: no agent has run with state_dir %s", p, cfg.StateDir)
		}
	}
	db, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{Timeout: time.Second})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, nil, usageErrorf("%s is in use by a running ehc-agent (only one process can open it at a time): stop the agent to use queue commands, or read the queue from the agent's status API", dbPath)
	}
	if err != nil {
		return nil, nil, usageErrorf("%s: %v", dbPath, err)
	}
	ring, err := seal.LoadOrCreate(keyPath)
	if err != nil {
		db.Close()
		return nil, nil, usageErrorf("%v", err)
	}
	// The agent's own cap and retention, so that "full" means what it means to the agent.
	ob, err := outbox.Open(db, ring, outbox.Options{MaxPending: cfg.Outbox.MaxPending, Retention: cfg.Outbox.Retention})
	if err != nil {
		db.Close()
		return nil, nil, usageErrorf("%v", err)
	}
	return ob, func() { db.Close() }, nil
}

func newQueueCmd() *cobra.Command {
	var path string
	queue := &cobra.Command{
		Use:   "queue",
		Short: "Inspect the outbox: depth, dead letters; send dead letters again",
		Long: `Inspect the outbox in state_dir/agent.db of the configuration given with --config.

The database can be open in one process at a time: stop the agent first (a running
agent's queue is in its status API).`,
	}
	queue.PersistentFlags().StringVarP(&path, "config", "c", "", "configuration file (YAML) naming state_dir")

	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Depth of the queue, its oldest event, and the number of dead letters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ob, done, err := openOutbox(cmd, path)
			if err != nil {
				return err
			}
			defer done()
			s := ob.Stats()
			w := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(w).Encode(s)
			}
			fmt.Fprintf(w, "last seq: %d\npending:  %d\n", s.LastSeq, s.Pending)
			if s.Pending > 0 {
				fmt.Fprintf(w, "oldest:   seq %d, occurred %s (%s ago)\n", s.OldestSeq,
					s.Oldest.UTC().Format(time.RFC3339), time.Since(s.Oldest).Round(time.Second))
			}
			fmt.Fprintf(w, "dead:     %d\n", s.Dead)
			if s.Full {
				fmt.Fprintln(w, "state:    outbox_full")
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the statistics as JSON")

	var limit int
	dead := &cobra.Command{
		Use:   "dead",
		Short: "List dead letters with the platform's reason (personal data masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ob, done, err := openOutbox(cmd, path)
			if err != nil {
				return err
			}
			defer done()
			ds, err := ob.DeadLetters(limit)
			if err != nil {
				return usageErrorf("%v", err)
			}
			w := cmd.OutOrStdout()
			for _, d := range ds {
				// Summary is the one masked rendering of an event; the JSON itself
				// holds names and ID numbers and is never printed.
				var e event.Event
				summary := "(event does not parse)"
				if json.Unmarshal(d.JSON, &e) == nil {
					summary = e.Summary()
				}
				fmt.Fprintf(w, "seq %d\t%s\t%s\t%s\n", d.Seq, d.Reason, d.EventID, summary)
			}
			if len(ds) == 0 {
				fmt.Fprintln(w, "no dead letters")
			}
			return nil
		},
	}
	dead.Flags().IntVar(&limit, "limit", 0, "list at most this many (0: all)")

	var seqFlags []uint
	retry := &cobra.Command{
		Use:   "retry [--seq N]...",
		Short: "Move dead letters back to the queue (all, or the given seqs), to be sent again",
		Long: `Move dead letters back to the pending queue with their seq, so the agent sends them
again at its next start — after the cause was fixed at the platform.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ob, done, err := openOutbox(cmd, path)
			if err != nil {
				return err
			}
			defer done()
			var seqs []uint64 // nil: all
			for _, s := range seqFlags {
				seqs = append(seqs, uint64(s))
			}
			n, err := ob.Retry(seqs)
			if err != nil {
				return usageErrorf("%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d dead letter(s) back in the queue; %d pending\n", n, ob.Stats().Pending)
			if seqs != nil && n < len(seqs) {
				return errSomeInvalid
			}
			return nil
		},
	}
	retry.Flags().UintSliceVar(&seqFlags, "seq", nil, "seq of a dead letter to retry (repeatable; default: all)")

	queue.AddCommand(status, dead, retry)
	return queue
}

func init() { rootCmd.AddCommand(newQueueCmd()) }
