package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/printer"
	"github.com/ehc-agent/ehc-agent/internal/logtest"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
	}
}

// The sim printer, on a pty behind a link and on TCP, prints what the real driver
// sends, reports it masked, saves it, and runs out of paper when told.
func TestSimPrinter(t *testing.T) {
	modes := []string{"tcp"}
	if runtime.GOOS == "linux" {
		modes = append(modes, "pty")
	}
	code := "4F1C7A0E9B3D52A6C8E1F0B7D4A29C3E5F7081A2B3C4D5E6F708192A3B4C5D6E:1"
	r := escpos.Receipt{Code: code, Name: "王五", IDNumber: "110101198001011234", IssuedAt: time.Now(), TerminalID: "K-0001"}
	receipt, err := r.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			o := simPrinterOpts{save: filepath.Join(dir, "saved"), width: escpos.Dots58mm}
			if mode == "tcp" {
				o.listen = "127.0.0.1:0"
			} else {
				o.link = filepath.Join(dir, "printer")
			}
			if err := os.MkdirAll(o.save, 0o755); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			outR, outW := io.Pipe()
			cmdR, cmdW := io.Pipe()
			stderr := &logtest.Buffer{}
			done := make(chan error, 1)
			go func() { done <- runSimPrinter(ctx, outW, stderr, cmdR, o) }()
			first, err := bufio.NewReader(outR).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(first)
			cfg := printer.Config{Transport: printer.TCP}
			switch {
			case mode == "tcp" && len(f) == 2 && f[0] == "listen":
				cfg.Address = f[1]
			case mode == "pty" && len(f) == 4 && f[0] == "pty" && f[2] == "link" && f[3] == o.link:
				cfg = printer.Config{Transport: printer.Serial, Path: o.link}
			default:
				t.Fatalf("first line %q", first)
			}
			p, err := printer.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer pcancel()
			if err := p.Print(pctx, receipt); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "report", func() bool { return strings.Contains(stderr.String(), "receipt 1:") })
			report := stderr.String()
			if strings.Contains(report, code) || !strings.Contains(report, mask.Token(code)) || !strings.Contains(report, "1 cuts") {
				t.Fatalf("report %q", report)
			}
			saved, err := os.ReadFile(filepath.Join(o.save, "receipt-1.bin"))
			if err != nil || string(saved) != string(receipt) {
				t.Fatalf("saved %d bytes, %v", len(saved), err)
			}
			if _, err := os.Stat(filepath.Join(o.save, "receipt-1.png")); err != nil {
				t.Fatal(err)
			}

			io.WriteString(cmdW, "paper-out\n")
			waitFor(t, "command", func() bool { return strings.Contains(stderr.String(), "printer: paper-out") })
			if err := p.Print(pctx, receipt); !errors.Is(err, printer.ErrPaperOut) {
				t.Fatalf("after paper-out: %v", err)
			}
			io.WriteString(cmdW, "paper-in\n")
			waitFor(t, "command", func() bool { return strings.Contains(stderr.String(), "printer: paper-in") })
			if err := p.Print(pctx, receipt); err != nil {
				t.Fatalf("after paper-in: %v", err)
			}
			waitFor(t, "second report", func() bool { return strings.Contains(stderr.String(), "receipt 2:") })

			cancel()
			cmdW.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if o.link != "" {
				if _, err := os.Lstat(o.link); !os.IsNotExist(err) {
					t.Fatalf("link left behind: %v", err)
				}
			}
		})
	}
}
