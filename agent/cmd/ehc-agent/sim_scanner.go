package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
	"github.com/ehc-agent/ehc-agent/protocol/framing"
	"github.com/ehc-agent/ehc-agent/protocol/trigger"
)

// simScannerOpts are the flags of `sim scanner`.
type simScannerOpts struct {
	link, framing, suffix, prefix, aim, codes, trigger string
	baud                                               int
	interval, gap                                      time.Duration
	repeat                                             bool
}

func newSimScannerCmd() *cobra.Command {
	var o simScannerOpts
	cmd := &cobra.Command{
		Use:   "scanner [--link PATH] [--framing line|idle|ssi] [--codes FILE|-]",
		Short: "Run a virtual serial scanner on a pty and scan each line of a file",
		Long: `Create a pty that behaves like a serial QR scanner (SCANNERS.md, Serial), print
"pty /dev/pts/N" (and "link PATH" when --link is given) on one line of standard output,
then send every line of --codes (a file, or - for standard input) as one scan, paced at
--baud, --interval apart. At the end of the codes it starts again with --repeat, or else
stays until SIGINT or SIGTERM; the link is removed on exit.

Point a serial device of the agent at the pty or, better, at --link, which survives
restarts of this command. What the agent writes (trigger commands, SSI ACK/NAK) is shown
on standard error; with --trigger the scanner answers trigger commands as that scanner
family does.

A line of --codes that starts with "!" is a command, not a code (no code type starts
with "!", so no real code is lost this way); --repeat repeats the commands too:
  !pull         pull the cable: the pty is closed and the link removed
  !plug         plug it back: a new pty behind the same link; its "pty ... link ..." line
                is printed on standard output again
  !noise N      N random bytes (1 to 65536), no terminator: in line framing none of the
                --suffix bytes, so the noise ends no scan
  !raw HEX      these bytes as they are, e.g. "!raw 41 42 0d" (a partial or hand-made scan)
  !wait D       pause for a duration such as 500ms (at most 1h)
Bytes are paced at --baud like scans; --interval is kept between scans only. A command
that fails, or an unknown one, is reported on standard error and the scanner goes on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The pty reader and the sender both report here.
			stderr := &simScannerLog{w: cmd.ErrOrStderr()}
			cfg, err := o.config(stderr)
			if err != nil {
				return err
			}
			in, closeIn, err := o.input(cmd.InOrStdin())
			if err != nil {
				return err
			}
			defer closeIn()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSimScanner(ctx, cmd.OutOrStdout(), stderr, cfg, in, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.link, "link", "", "keep a symlink at PATH pointing at the pty (removed on exit)")
	fl.StringVar(&o.framing, "framing", "line", "line, idle or ssi")
	fl.StringVar(&o.suffix, "suffix", "cr", "line: cr, lf, crlf, none, or hex bytes such as 0d0a")
	fl.StringVar(&o.prefix, "prefix", "", "hex bytes sent before each scan (line, idle)")
	fl.StringVar(&o.aim, "aim", "", "AIM identifier sent before each scan, e.g. ]Q1 (line, idle)")
	fl.IntVar(&o.baud, "baud", 9600, "pace output as a serial line at this rate (0: unpaced)")
	fl.DurationVar(&o.interval, "interval", time.Second, "pause between scans")
	fl.DurationVar(&o.gap, "gap", 100*time.Millisecond, "idle: silence after each scan")
	fl.StringVar(&o.codes, "codes", "-", "file of codes, one scan per line, or - for standard input")
	fl.BoolVar(&o.repeat, "repeat", false, "start the codes again at their end")
	fl.StringVar(&o.trigger, "trigger", "", "answer trigger commands like this scanner family: "+strings.Join(trigger.Names(), ", "))
	return cmd
}

func init() { simCmd.AddCommand(newSimScannerCmd()) }

// simScannerLog serialises writes from the pty reader and the sender.
type simScannerLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *simScannerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// config turns the flags into a scanner configuration; errors are usage errors.
func (o simScannerOpts) config(stderr io.Writer) (vscanner.Config, error) {
	c := vscanner.Config{Link: o.link, Framing: o.framing, Baud: o.baud, Gap: o.gap, AIM: o.aim}
	switch o.framing {
	case vscanner.Line:
		if strings.EqualFold(o.suffix, "none") {
			c.Suffix = []byte{}
		} else {
			s, err := framing.ParseSuffix(o.suffix)
			if err != nil {
				return c, usageErrorf("--suffix: %v", err)
			}
			c.Suffix = s
		}
	case vscanner.Idle, vscanner.SSI:
	default:
		return c, usageErrorf("--framing %q is not line, idle or ssi", o.framing)
	}
	if o.prefix != "" {
		p, err := hex.DecodeString(strings.Join(strings.Fields(o.prefix), ""))
		if err != nil {
			return c, usageErrorf("--prefix %q is not hex bytes such as \"02\"", o.prefix)
		}
		c.Prefix = p
	}
	if o.aim != "" && (len(o.aim) != 3 || o.aim[0] != ']') {
		return c, usageErrorf("--aim %q is not an AIM identifier such as ]Q1", o.aim)
	}
	if o.baud < 0 || o.interval < 0 || o.gap < 0 {
		return c, usageErrorf("--baud, --interval and --gap must not be negative")
	}
	if o.trigger != "" {
		t, err := trigger.Lookup(o.trigger)
		if err != nil {
			return c, usageErrorf("--trigger: %v", err)
		}
		for _, r := range t.Replies {
			c.Responses = append(c.Responses, vscanner.Response{When: t.Start, Reply: r})
			if len(t.Stop) > 0 {
				c.Responses = append(c.Responses, vscanner.Response{When: t.Stop, Reply: r})
			}
		}
	}
	c.OnHost = func(p []byte) { fmt.Fprintf(stderr, "host wrote % X\n", p) }
	return c, nil
}

// input opens --codes.
func (o simScannerOpts) input(stdin io.Reader) (io.Reader, func(), error) {
	if o.codes == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(o.codes)
	if err != nil {
		return nil, nil, usageErrorf("--codes: %v", err)
	}
	return f, func() { f.Close() }, nil
}

// runSimScanner plugs the scanner, prints where it is, sends the codes and waits for
// ctx. The sender runs in its own goroutine so that a signal ends the command even
// while it waits for a line on a terminal; that goroutine is waited for unless it is
// blocked reading standard input, which only the process exit can end.
func runSimScanner(ctx context.Context, stdout, stderr io.Writer, cfg vscanner.Config, in io.Reader, o simScannerOpts) error {
	vs, err := vscanner.New(cfg)
	if err != nil {
		return usageErrorf("%v", err)
	}
	defer vs.Close()
	simScannerAnnounce(stdout, vs)

	done := make(chan error, 1)
	go func() { done <- simScannerSend(ctx, stdout, stderr, vs, cfg, in, o) }()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "all codes sent; waiting for SIGINT or SIGTERM")
		<-ctx.Done()
	case <-ctx.Done():
		vs.Close() // ends a send in progress
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
	return nil
}

// simScannerAnnounce prints where the scanner is: the first line of standard output,
// and again after each !plug.
func simScannerAnnounce(stdout io.Writer, vs *vscanner.Scanner) {
	line := "pty " + vs.Path()
	if vs.Link() != "" {
		line += " link " + vs.Link()
	}
	fmt.Fprintln(stdout, line)
}

// Bounds of the control commands: 64 KiB is the junk run of SCANNERS.md's tests, and a
// pause beyond an hour is a typo.
const (
	simMaxNoise = 64 << 10
	simMaxWait  = time.Hour
)

// simScannerCommand runs one "!" line. Its failures are reported, not returned: a pull
// of an unplugged scanner or a typo must not end a session someone is driving by hand.
// Only the end of ctx is returned.
func simScannerCommand(ctx context.Context, stdout, stderr io.Writer, vs *vscanner.Scanner, cfg vscanner.Config, line string) error {
	name, arg, _ := strings.Cut(strings.TrimSpace(line[1:]), " ")
	arg = strings.TrimSpace(arg)
	var err error
	switch {
	case name == "pull" && arg == "":
		if err = vs.Pull(); err == nil {
			fmt.Fprintln(stderr, "cable pulled")
		}
	case name == "plug" && arg == "":
		if err = vs.Plug(); err == nil {
			fmt.Fprintf(stderr, "plugged in at %s\n", vs.Path())
			simScannerAnnounce(stdout, vs)
		}
	case name == "noise":
		n, perr := strconv.Atoi(arg)
		if perr != nil || n < 1 || n > simMaxNoise {
			err = fmt.Errorf("wants a byte count from 1 to %d", simMaxNoise)
			break
		}
		var exclude []byte
		if cfg.Framing == vscanner.Line {
			exclude = cfg.Suffix
		}
		if err = vs.SendRaw(ctx, vscanner.Noise(n, rand.Uint64(), exclude...)); err == nil {
			fmt.Fprintf(stderr, "noise sent (%d bytes)\n", n)
		}
	case name == "raw":
		b, herr := hex.DecodeString(strings.Join(strings.Fields(arg), ""))
		if herr != nil || len(b) == 0 {
			err = errors.New("wants hex bytes such as 41 42 0d")
			break
		}
		if err = vs.SendRaw(ctx, b); err == nil {
			fmt.Fprintf(stderr, "raw bytes sent (%d bytes)\n", len(b))
		}
	case name == "wait":
		d, derr := time.ParseDuration(arg)
		if derr != nil || d < 0 || d > simMaxWait {
			err = errors.New("wants a duration such as 500ms, at most 1h")
			break
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	default:
		err = errors.New("unknown command; the commands are !pull, !plug, !noise N, !raw HEX, !wait D")
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		if errors.Is(err, vscanner.ErrUnplugged) {
			err = errors.New("the cable is pulled (!plug first)")
		}
		fmt.Fprintf(stderr, "!%s: %v\n", name, err)
	}
	return nil
}

// simScannerSend sends each line of in as a scan, or runs it as a command if it starts
// with "!", again and again with --repeat. Codes are not echoed: they may be real. Only
// their count and size are.
func simScannerSend(ctx context.Context, stdout, stderr io.Writer, vs *vscanner.Scanner, cfg vscanner.Config, in io.Reader, o simScannerOpts) error {
	var kept [][]byte // the lines, kept for --repeat
	codes := 0        // how many of kept are codes
	n := 0
	send := func(code []byte) error {
		if n > 0 {
			t := time.NewTimer(o.interval)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
		n++
		if err := vs.Send(ctx, code); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, vscanner.ErrUnplugged) {
				// Pulled by a command: a real scanner's scan would be lost too.
				fmt.Fprintf(stderr, "scan %d (%d bytes) not sent: the cable is pulled\n", n, len(code))
				return nil
			}
			if !errors.Is(err, vscanner.ErrNoAck) {
				return err
			}
			// SSI without a host to ACK: report and go on, as a scanner would.
			fmt.Fprintf(stderr, "scan %d (%d bytes) not acknowledged by the host\n", n, len(code))
			return nil
		}
		fmt.Fprintf(stderr, "scan %d sent (%d bytes)\n", n, len(code))
		return nil
	}
	stopped := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	do := func(line []byte) error {
		if line[0] == '!' {
			return simScannerCommand(ctx, stdout, stderr, vs, cfg, string(line))
		}
		return send(line)
	}
	err := eachLine(in, func(line []byte) error {
		line = bytes.Clone(line) // eachLine reuses its buffer
		if o.repeat {
			kept = append(kept, line)
			if line[0] != '!' {
				codes++
			}
		}
		return do(line)
	})
	if err != nil {
		return stopped(err)
	}
	// Commands alone would repeat without any pause.
	if o.repeat && codes == 0 {
		return usageErrorf("--repeat: no codes to repeat")
	}
	for o.repeat {
		for _, line := range kept {
			if err := do(line); err != nil {
				return stopped(err)
			}
		}
	}
	return nil
}
