package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/drivers/vcard"
)

// simCardOpts are the flags of `sim card`.
type simCardOpts struct {
	vpcd, profile string
	hold, gap     time.Duration
	cycles        int
}

func newSimCardCmd() *cobra.Command {
	var o simCardOpts
	cmd := &cobra.Command{
		Use:   "card --vpcd HOST:PORT --profile FILE [--hold 0] [--cycles 1] [--gap 1s]",
		Short: "Play a virtual smart card (health card, social security card, PSAM) to pcscd's vpcd",
		Long: `Insert a virtual card, described by a profile (YAML or JSON; configs/profiles has
examples), into the vpcd reader listening at --vpcd: pcscd then sees it in that
reader ("Virtual PCD 00 00" on port 35963, "Virtual PCD 00 01" on 35964 with Debian's
vsmartcard-vpcd). Profiles play a resident health card, a social security card, a
PSAM, a transit card or a blank card, with faults for tests (remove mid-read, garbage
answers, wrong status words, slow answers).

With --hold 0 (the default) the card stays until SIGINT or SIGTERM, and goes back in
whenever vpcd drops it (pcscd restarted) or a fault pulled it. With --hold D it is
removed after D and, --gap later, inserted again, --cycles times (0: until stopped).
Each insertion and removal is one line on standard output. Exit status 2 for a bad
profile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.profile == "" {
				return usageErrorf("--profile is required")
			}
			p, err := vcard.LoadProfile(o.profile)
			if err != nil {
				return usageErrorf("%v", err)
			}
			card, err := vcard.New(p)
			if err != nil {
				return usageErrorf("%s: %v", o.profile, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSimCard(ctx, cmd.OutOrStdout(), card, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.vpcd, "vpcd", vcard.DefaultVPCD, "host:port of the vpcd reader")
	fl.StringVar(&o.profile, "profile", "", "card profile, YAML or JSON")
	fl.DurationVar(&o.hold, "hold", 0, "remove the card after this long (0: keep it in until stopped)")
	fl.IntVar(&o.cycles, "cycles", 1, "with --hold: insertions in all (0: until stopped)")
	fl.DurationVar(&o.gap, "gap", time.Second, "pause between a removal and the next insertion")
	return cmd
}

func init() { simCmd.AddCommand(newSimCardCmd()) }

func runSimCard(ctx context.Context, out io.Writer, card *vcard.Card, o simCardOpts) error {
	for n := 1; o.cycles == 0 || o.hold == 0 || n <= o.cycles; n++ {
		in, err := insertRetrying(ctx, out, o.vpcd, card)
		if err != nil {
			return nil // stopped while waiting for vpcd
		}
		fmt.Fprintf(out, "inserted %s into %s (ATR % X)\n", card.Kind(), o.vpcd, card.ATR())
		var hold <-chan time.Time // nil: never
		if o.hold > 0 {
			hold = time.After(o.hold)
		}
		select {
		case <-ctx.Done():
			in.Remove()
			fmt.Fprintln(out, "removed: stopped")
			return nil
		case <-hold:
			in.Remove()
			fmt.Fprintf(out, "removed after %s (%d commands)\n", o.hold, in.Commands())
		case <-in.Done():
			why := "vpcd closed the connection (pcscd stopped?)"
			if errors.Is(in.Err(), vcard.ErrRemovedByFault) {
				why = "a fault of the profile pulled it"
			}
			fmt.Fprintf(out, "removed: %s (%d commands)\n", why, in.Commands())
		}
		t := time.NewTimer(o.gap)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// insertRetrying inserts the card, waiting for vpcd (pcscd not started yet, or
// restarting): the error is ctx's.
func insertRetrying(ctx context.Context, out io.Writer, addr string, card *vcard.Card) (*vcard.Inserted, error) {
	said := false
	for {
		in, err := vcard.Insert(ctx, addr, card)
		if err == nil {
			return in, nil
		}
		if !said {
			fmt.Fprintf(out, "waiting for vpcd at %s: %v\n", addr, err)
			said = true
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
