package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

// simPrinterOpts are the flags of `sim printer`.
type simPrinterOpts struct {
	link, listen, save string
	font               string
	paperOut, nearEnd  bool
	width              int
}

func newSimPrinterCmd() *cobra.Command {
	var o simPrinterOpts
	cmd := &cobra.Command{
		Use:   "printer --link PATH | --listen 127.0.0.1:9100 [--paper-out]",
		Short: "Run a virtual ESC/POS receipt printer on a pty or a TCP port",
		Long: `Run a receipt printer (PRINTERS.md) that records what it is sent, answers the
paper status requests, and can run out of paper. With --link it sits behind a pty (print
"pty /dev/pts/N link PATH"); point the agent's printer at PATH with transport serial, or
at the pty with transport usblp. With --listen it is a network printer on that address
(print "listen ADDR"); transport tcp.

Each receipt is reported on standard error with its size and its QR code masked; with
--save DIR it is kept as receipt-N.bin (the bytes) and receipt-N.png (the receipt drawn
as printed, --width dots wide, Chinese characters drawn with --font, GNU Unifont's .hex
from Debian's unifont package, or as boxes without it).

Lines on standard input change the printer: paper-out, paper-in, near-end, paper-ok,
cover-open, cover-closed, mute, unmute. It runs until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (o.link == "") == (o.listen == "") {
				return usageErrorf("give --link PATH or --listen ADDR")
			}
			if o.width < 64 || o.width > 2048 {
				return usageErrorf("--width %d is outside 64..2048 dots", o.width)
			}
			if o.save != "" {
				if err := os.MkdirAll(o.save, 0o755); err != nil {
					return usageErrorf("--save: %v", err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSimPrinter(ctx, cmd.OutOrStdout(), &simScannerLog{w: cmd.ErrOrStderr()}, cmd.InOrStdin(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.link, "link", "", "a pty printer, with a symlink at PATH pointing at it (removed on exit)")
	fl.StringVar(&o.listen, "listen", "", "a network printer listening on this address, e.g. 127.0.0.1:9100")
	fl.BoolVar(&o.paperOut, "paper-out", false, "start without paper")
	fl.BoolVar(&o.nearEnd, "near-end", false, "start with the paper near-end sensor on")
	fl.StringVar(&o.save, "save", "", "keep each receipt in this directory as .bin and .png")
	fl.IntVar(&o.width, "width", escpos.Dots58mm, "printable dots per line for --save's drawings (384: 58 mm, 576: 80 mm)")
	fl.StringVar(&o.font, "font", escpos.UnifontPath, "a .hex font for --save's drawings of Chinese text (none there: boxes)")
	return cmd
}

func init() { simCmd.AddCommand(newSimPrinterCmd()) }

// runSimPrinter runs the printer until ctx ends. Commands are read from in by a
// goroutine that ends at in's end; one blocked reading a terminal is left to the
// process exit, as nothing else can end it.
func runSimPrinter(ctx context.Context, stdout, stderr io.Writer, in io.Reader, o simPrinterOpts) error {
	var mu sync.Mutex // orders the job reports
	n := 0
	cfg := vprinter.Config{Link: o.link, PaperOut: o.paperOut, NearEnd: o.nearEnd, OnJob: func(j vprinter.Job) {
		mu.Lock()
		defer mu.Unlock()
		n++
		simPrinterReport(stderr, n, j, o)
	}}
	var vp *vprinter.Printer
	var err error
	if o.link != "" {
		vp, err = vprinter.NewPTY(cfg)
	} else {
		vp, err = vprinter.ListenTCP(o.listen, cfg)
	}
	if err != nil {
		return usageErrorf("%v", err)
	}
	defer vp.Close()
	if o.link != "" {
		fmt.Fprintf(stdout, "pty %s link %s\n", vp.Path(), o.link)
	} else {
		fmt.Fprintf(stdout, "listen %s\n", vp.Addr())
	}
	if in != nil {
		go simPrinterCommands(ctx, stderr, vp, in)
	}
	<-ctx.Done()
	return nil
}

// simPrinterReport tells of one job. The code is masked: it may be a real card's.
func simPrinterReport(w io.Writer, n int, j vprinter.Job, o simPrinterOpts) {
	line := fmt.Sprintf("receipt %d: %d bytes", n, len(j.Bytes))
	if j.Err != nil {
		line += fmt.Sprintf(", not a clean job: %v", j.Err)
	} else {
		for _, q := range j.Doc.QRs() {
			line += fmt.Sprintf(", QR %s (%d dots a module, level %v)", mask.Token(string(q.Payload)), q.ModuleSize, q.Level)
		}
		line += fmt.Sprintf(", %d text lines, %d cuts", len(j.Doc.Texts()), j.Doc.Cuts())
	}
	if o.save != "" {
		base := filepath.Join(o.save, fmt.Sprintf("receipt-%d", n))
		if err := os.WriteFile(base+".bin", j.Bytes, 0o600); err != nil {
			line += fmt.Sprintf("; not saved: %v", err)
		} else if j.Err == nil {
			if png, err := escpos.RenderPNG(j.Doc, o.width, simPrinterFont(o.font, j.Doc)); err != nil {
				line += fmt.Sprintf("; not drawn: %v", err)
			} else if err := os.WriteFile(base+".png", png, 0o600); err != nil {
				line += fmt.Sprintf("; not saved: %v", err)
			} else {
				line += "; saved " + base + ".png"
			}
		}
	}
	fmt.Fprintln(w, line)
}

func simPrinterCommands(ctx context.Context, w io.Writer, vp *vprinter.Printer, in io.Reader) {
	eachLine(in, func(b []byte) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cmd := strings.TrimSpace(string(b))
		switch cmd {
		case "paper-out":
			vp.SetPaperOut(true)
		case "paper-in":
			vp.SetPaperOut(false)
		case "near-end":
			vp.SetNearEnd(true)
		case "paper-ok":
			vp.SetNearEnd(false)
		case "cover-open":
			vp.SetOffline(true)
		case "cover-closed":
			vp.SetOffline(false)
		case "mute":
			vp.SetMute(true)
		case "unmute":
			vp.SetMute(false)
		default:
			fmt.Fprintf(w, "unknown command %q (paper-out, paper-in, near-end, paper-ok, cover-open, cover-closed, mute, unmute)\n", cmd)
			return nil
		}
		fmt.Fprintln(w, "printer:", cmd)
		return nil
	})
}

// simPrinterFont reads the glyphs doc needs from the .hex font at path; without one
// (the unifont package is not installed), Chinese text is drawn as boxes.
func simPrinterFont(path string, doc *escpos.Document) escpos.Font {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	runes := doc.Runes()
	f, err := escpos.ParseHexFont(data, func(r rune) bool { return runes[r] })
	if err != nil {
		return nil
	}
	return f
}
