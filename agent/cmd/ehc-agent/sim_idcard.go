package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/drivers/idcard/vreader"
)

// simIDCardOpts are the flags of `sim idcard`.
type simIDCardOpts struct {
	link, faults string
	profiles     []string
	baud         int
	halt, empty  bool
	cycle        time.Duration
}

func newSimIDCardCmd() *cobra.Command {
	var o simIDCardOpts
	cmd := &cobra.Command{
		Use:   "idcard --link PATH --profile FILE [--profile FILE…] [--faults LIST]",
		Short: "Run a virtual GA 467 resident ID card reader on a pty",
		Long: `Create a pty that behaves like a GA 467 resident ID card reader (CARDS.md,
"Resident ID card reader"), print "pty /dev/pts/N link PATH" on one line of standard
output, and answer the agent's find, select and read commands for the card on it. Point
an idcard device of the agent at --link, which survives restarts of this command.

Each --profile is a card (configs/profiles/idcard-*.yaml). The first is on the reader
from the start, unless --empty; with --cycle D the profiles are placed in turn, each for D
and then lifted for D. Lines on standard input move cards and cables:
  place [N]      put profile N (from 1; default: the next one) on the reader
  remove         lift the card
  pull, plug     unplug and plug the reader's cable
  faults LIST    change the faults (as --faults; "none" for none)

--faults is a comma-separated list of: split (answers in pieces, pauses between), junk
(garbage before every answer), bad_chk[=N] (the first N read answers of each card, 1 by
default, with a wrong checksum), read_fail (every read fails), silent (no answers).
Card data is never printed; the commands the agent sends and the statuses answered are,
on standard error. It runs until SIGINT or SIGTERM; the link is removed on exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.profiles) == 0 {
				return usageErrorf("give at least one --profile FILE")
			}
			ps := make([]vreader.Profile, len(o.profiles))
			for i, f := range o.profiles {
				p, err := vreader.LoadProfile(f)
				if err != nil {
					return usageErrorf("--profile: %v", err)
				}
				ps[i] = p
			}
			faults, err := parseIDCardFaults(o.faults)
			if err != nil {
				return usageErrorf("--faults: %v", err)
			}
			if o.baud < 0 || o.cycle < 0 {
				return usageErrorf("--baud and --cycle must not be negative")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSimIDCard(ctx, cmd.OutOrStdout(), &simScannerLog{w: cmd.ErrOrStderr()}, cmd.InOrStdin(), o, ps, faults)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.link, "link", "", "keep a symlink at PATH pointing at the pty (removed on exit)")
	fl.StringArrayVar(&o.profiles, "profile", nil, "a card profile (YAML); repeat for several cards")
	fl.StringVar(&o.faults, "faults", "", "split, junk, bad_chk[=N], read_fail, silent (comma-separated)")
	fl.IntVar(&o.baud, "baud", 115200, "pace answers as a serial line at this rate (0: unpaced)")
	fl.BoolVar(&o.halt, "halt", false, "a card read once answers no more finds until placed again, as on many real readers")
	fl.BoolVar(&o.empty, "empty", false, "start with no card on the reader")
	fl.DurationVar(&o.cycle, "cycle", 0, "place the profiles in turn, each for this long, lifted for as long between (0: off)")
	return cmd
}

func init() { simCmd.AddCommand(newSimIDCardCmd()) }

// parseIDCardFaults reads a --faults list.
func parseIDCardFaults(s string) (vreader.Faults, error) {
	var f vreader.Faults
	for _, item := range strings.Split(s, ",") {
		name, arg, hasArg := strings.Cut(strings.TrimSpace(item), "=")
		switch {
		case name == "" || name == "none":
		case name == "split" && !hasArg:
			f.Split = true
		case name == "junk" && !hasArg:
			f.Junk = true
		case name == "read_fail" && !hasArg:
			f.ReadFail = true
		case name == "silent" && !hasArg:
			f.Silent = true
		case name == "bad_chk":
			f.BadCHK = 1
			if hasArg {
				n, err := strconv.Atoi(arg)
				if err != nil || n < 0 {
					return f, fmt.Errorf("bad_chk=%q is not a count", arg)
				}
				f.BadCHK = n
			}
		default:
			return f, fmt.Errorf("%q is not split, junk, bad_chk[=N], read_fail or silent", item)
		}
	}
	return f, nil
}

// simIDCard is the running simulator: the reader and which profile goes on next.
type simIDCard struct {
	vr    *vreader.Reader
	ps    []vreader.Profile
	names []string
	log   io.Writer

	mu   sync.Mutex // the cycle and the commands from standard input both place cards
	next int

	lastFind int // status of the last find reported, -1 after another command: the reader's goroutine only
}

// runSimIDCard runs the reader until ctx ends. Commands are read from in by a goroutine
// that ends at in's end; one blocked reading a terminal is left to the process exit, as
// nothing else can end it. The cycle, if any, runs in this goroutine.
func runSimIDCard(ctx context.Context, stdout, stderr io.Writer, in io.Reader, o simIDCardOpts, ps []vreader.Profile, f vreader.Faults) error {
	s := &simIDCard{ps: ps, log: stderr, lastFind: -1}
	for _, p := range o.profiles {
		s.names = append(s.names, filepath.Base(p))
	}
	vr, err := vreader.New(vreader.Config{
		Link: o.link, Baud: o.baud, Halt: o.halt, Faults: f,
		Seed:      uint64(time.Now().UnixNano()),
		OnCommand: s.onCommand,
	})
	if err != nil {
		return usageErrorf("%v", err)
	}
	defer vr.Close()
	s.vr = vr
	line := "pty " + vr.Path()
	if o.link != "" {
		line += " link " + o.link
	}
	// The card goes on before the path is announced: whoever reads the path may send a
	// find at once and must find the card that the command line promised.
	if !o.empty && o.cycle == 0 {
		s.place(0)
	}
	fmt.Fprintln(stdout, line)
	if in != nil {
		go s.commandsFrom(ctx, in)
	}
	if o.cycle == 0 {
		<-ctx.Done()
		return nil
	}
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(o.cycle):
			return true
		}
	}
	for i := 0; ; i++ {
		s.place(i % len(ps))
		if !wait() {
			return nil
		}
		s.remove()
		if !wait() {
			return nil
		}
	}
}

// onCommand reports what the host asks, but for the polls of an idle host: finds are
// reported only when the answer changes.
func (s *simIDCard) onCommand(cmd string, status byte) {
	if cmd == "find" {
		if s.lastFind == int(status) {
			return
		}
		s.lastFind = int(status)
	} else {
		s.lastFind = -1
	}
	if status == 0 {
		fmt.Fprintf(s.log, "host: %s, not answered\n", cmd)
		return
	}
	fmt.Fprintf(s.log, "host: %s, answered %02X\n", cmd, status)
}

// place puts profile i on the reader; -1 means the next one.
func (s *simIDCard) place(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 {
		i = s.next
	}
	if err := s.ps[i].Place(s.vr); err != nil {
		fmt.Fprintf(s.log, "card %d not placed: %v\n", i+1, err)
		return
	}
	s.next = (i + 1) % len(s.ps)
	fmt.Fprintf(s.log, "card placed: %d (%s)\n", i+1, s.names[i])
}

func (s *simIDCard) remove() {
	s.vr.Remove()
	fmt.Fprintln(s.log, "card removed")
}

func (s *simIDCard) commandsFrom(ctx context.Context, in io.Reader) {
	eachLine(in, func(b []byte) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		arg = strings.TrimSpace(arg)
		switch verb {
		case "place":
			i := -1
			if arg != "" {
				n, err := strconv.Atoi(arg)
				if err != nil || n < 1 || n > len(s.ps) {
					fmt.Fprintf(s.log, "place %q: give a profile number from 1 to %d\n", arg, len(s.ps))
					return nil
				}
				i = n - 1
			}
			s.place(i)
		case "remove":
			s.remove()
		case "pull":
			if err := s.vr.Pull(); err != nil {
				fmt.Fprintf(s.log, "pull: %v\n", err)
				return nil
			}
			fmt.Fprintln(s.log, "reader unplugged")
		case "plug":
			if err := s.vr.Plug(); err != nil {
				fmt.Fprintf(s.log, "plug: %v\n", err)
				return nil
			}
			fmt.Fprintln(s.log, "reader plugged:", s.vr.Path())
		case "faults":
			f, err := parseIDCardFaults(arg)
			if err != nil {
				fmt.Fprintf(s.log, "faults: %v\n", err)
				return nil
			}
			s.vr.SetFaults(f)
			fmt.Fprintf(s.log, "faults: %+v\n", f)
		default:
			fmt.Fprintf(s.log, "unknown command %q (place [N], remove, pull, plug, faults LIST)\n", verb)
		}
		return nil
	})
}
