package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/daemon"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/pcsc"
	"github.com/ehc-agent/ehc-agent/protocol/event"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

// cardCmd groups the card reader commands.
var cardCmd = &cobra.Command{
	Use:   "card",
	Short: "PC/SC card readers: read a resident health card or social security card",
}

type cardReadOpts struct {
	reader, psamReader, psamPINFile, configPath, deviceName, photo string
	timeout                                                        time.Duration
	unmasked                                                       bool
}

func newCardReadCmd() *cobra.Command {
	var o cardReadOpts
	cmd := &cobra.Command{
		Use:   "read [--reader NAME] [--timeout 10s] [--psam-reader NAME --psam-pin-file FILE | --config FILE [--device NAME]]",
		Short: "Wait for a card, read it and print its identity event as JSON",
		Long: `Wait for a card in a PC/SC reader (one already in counts), read it as the agent
does (CARDS.md) and print the identity event the agent would emit, on one line of
standard output (seq 0: nothing is journaled or sent).

The reader is --reader (an exact name or a pattern such as "ACS*"; default any), with
the PSAM of --psam-reader and --psam-pin-file, or the first pcsc device of --config
(or the one named --device), PSAM included. Without a PSAM a resident health card
gives its EF05 data, identity_partial.

Personal data is masked (张*, 1101**********1234) and the photo left out unless
--unmasked; --photo FILE writes the photo (JPEG) to FILE.

Exit status: 0 when an identity was read (partial included), 1 when the card could
not be read (the reason on standard error; the event, with the ATR, still printed) or
no card came within --timeout, 2 for bad usage or configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, terminal, err := o.config()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCardRead(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), pc, terminal, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.reader, "reader", "*", "card reader: exact PC/SC name or pattern")
	fl.StringVar(&o.psamReader, "psam-reader", "", "the PSAM's reader")
	fl.StringVar(&o.psamPINFile, "psam-pin-file", "", "file holding the PSAM's PIN in hex (mode 0600)")
	fl.StringVar(&o.configPath, "config", "", "take the reader and PSAM from this agent configuration")
	fl.StringVar(&o.deviceName, "device", "", "with --config: the pcsc device to use (default: the first)")
	fl.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up when no card came within this")
	fl.BoolVar(&o.unmasked, "unmasked", false, "print personal data and the photo as they are")
	fl.StringVar(&o.photo, "photo", "", "write the photo (JPEG) to this file")
	return cmd
}

func init() {
	cardCmd.AddCommand(newCardReadCmd())
	rootCmd.AddCommand(cardCmd)
}

// config builds the driver configuration from the flags or from --config.
func (o cardReadOpts) config() (pcsc.Config, string, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.configPath == "" {
		if o.deviceName != "" {
			return pcsc.Config{}, "", usageErrorf("--device goes with --config")
		}
		c := config.PCSC{Reader: o.reader, PSAMReader: o.psamReader, PSAMPINFile: o.psamPINFile}
		if errs := c.Validate(); len(errs) > 0 {
			// In flag terms: the PIN comes from --psam-pin-file only.
			e := errs[0]
			flag := map[string]string{"psam_pin": "psam-pin-file"}[e.Key]
			if flag == "" {
				flag = strings.ReplaceAll(e.Key, "_", "-")
			}
			return pcsc.Config{}, "", usageErrorf("--%s: %s", flag, e.Problem)
		}
		pc, err := daemon.PCSCConfig(config.Device{Name: cliDevice, PCSC: c}, quiet)
		return pc, "", err
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return pcsc.Config{}, "", usageErrorf("%v", err)
	}
	for _, d := range cfg.Devices {
		if d.Driver == "pcsc" && (o.deviceName == "" || d.Name == o.deviceName) {
			pc, err := daemon.PCSCConfig(d, quiet)
			if err != nil {
				return pcsc.Config{}, "", usageErrorf("%v", err)
			}
			return pc, cfg.TerminalID, nil
		}
	}
	return pcsc.Config{}, "", usageErrorf("%s has no pcsc device %s", o.configPath, o.deviceName)
}

// firstRead is a device sink that keeps the first card read and shows why none comes.
type firstRead struct {
	reads  chan device.Read
	stderr io.Writer
	last   string
}

func (f *firstRead) Read(r device.Read) {
	select {
	case f.reads <- r:
	default: // a second card before we stopped: not ours
	}
}

func (f *firstRead) State(s device.State) {
	switch s.Reason {
	case pcsc.ReasonNoService, pcsc.ReasonNoReader, pcsc.ReasonPSAMAbsent, pcsc.ReasonPSAMPIN, pcsc.ReasonPSAMFailed:
		if line := s.Reason + ": " + s.Detail; line != f.last {
			f.last = line
			fmt.Fprintln(f.stderr, line)
		}
	}
}

func (f *firstRead) Drop(device.Drop) {}

// eventOf makes the identity event of r exactly as the agent does: through a pipeline
// whose journal keeps nothing.
type nullJournal struct{}

func (nullJournal) Append(*event.Event) error { return nil }

type eventOnce chan *event.Event

func (c eventOnce) Event(e *event.Event) { c <- e }

func eventOf(r device.Read, terminal string) *event.Event {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := pipeline.New(pipeline.Options{TerminalID: terminal, Logger: quiet}, nil, nullJournal{})
	got := make(eventOnce, 1)
	p.Subscribe(got)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	p.Submit(ctx, r)
	e := <-got
	cancel()
	<-done
	return e
}

func runCardRead(ctx context.Context, stdout, stderr io.Writer, pc pcsc.Config, terminal string, o cardReadOpts) error {
	pc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, err := pcsc.New(pc)
	if err != nil {
		return usageErrorf("%v", err)
	}
	sink := &firstRead{reads: make(chan device.Read, 1), stderr: stderr}
	rctx, cancel := context.WithTimeout(ctx, o.timeout)
	done := make(chan struct{})
	go func() { defer close(done); dev.Run(rctx, sink) }()
	var r device.Read
	select {
	case r = <-sink.reads:
	case <-rctx.Done():
	}
	cancel()
	<-done
	if r.Card == nil {
		return &exitError{code: 1, err: fmt.Errorf("card read: %s: no card within %s", pcsc.ReasonTimeout, o.timeout)}
	}
	e := eventOf(r, terminal)
	if o.photo != "" && e.Identity != nil && e.Identity.Photo != "" {
		jpeg, _ := base64.StdEncoding.DecodeString(e.Identity.Photo)
		if err := os.WriteFile(o.photo, jpeg, 0o600); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("card read: --photo: %v", err)}
		}
	}
	if !o.unmasked && e.Identity != nil {
		id := *e.Identity
		id.Name, id.IDNumber, id.CardNo = mask.Name(id.Name), mask.Number(id.IDNumber), mask.Number(id.CardNo)
		id.Photo = ""
		e.Identity = &id
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	if r.Card.Identity == nil {
		return &exitError{code: 1, err: fmt.Errorf("card read: %s", r.Card.Reason)}
	}
	return nil
}
