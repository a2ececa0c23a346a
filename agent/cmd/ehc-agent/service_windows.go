package main

// `ehc-agent run` started by the Windows service control manager (installed with
// `sc.exe create ehc-agent binPath= "…\ehc-agent.exe run" start= delayed-auto`,
// docs/INSTALL.md) runs under svc.Run: Stop and Shutdown end the agent exactly as
// SIGTERM does on Linux; the configuration defaults to %ProgramData%\ehc-agent\agent.yaml;
// logs go to %ProgramData%\ehc-agent\logs\agent.log, and start, stop and failure to the
// Application event log.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

func init() {
	// After every init (the run command registers itself in one) and flag parsing,
	// before the command runs.
	cobra.OnInitialize(func() {
		isService, err := svc.IsWindowsService()
		if err != nil || !isService {
			return
		}
		run, _, err := rootCmd.Find([]string{"run"})
		if err != nil || run == nil || run.RunE == nil {
			return
		}
		dir := programData()
		runUnderService(run, &windowsService{}, filepath.Join(dir, "agent.yaml"), func() (io.WriteCloser, error) {
			return openRotatingLog(filepath.Join(dir, "logs", "agent.log"), serviceLogMax)
		})
	})
}

// programData is %ProgramData%\ehc-agent: the known folder, as the environment of a
// service may lack the variable.
func programData() string {
	base, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || base == "" {
		base = os.Getenv("ProgramData")
	}
	if base == "" {
		base = `C:\ProgramData`
	}
	return filepath.Join(base, "ehc-agent")
}

// windowsService is the SCM side of serviceManager.
type windowsService struct {
	run func(ctx context.Context) error
	err error
}

func (w *windowsService) Run(run func(ctx context.Context) error) error {
	w.run = run
	// The event log works without a registered source (Windows then prefixes each
	// message with a note about the missing description); INSTALL.md registers it.
	elog, err := eventlog.Open(serviceName)
	if err == nil {
		defer elog.Close()
	}
	info := func(msg string) {
		if elog != nil {
			_ = elog.Info(1, msg)
		}
	}
	info("ehc-agent starting")
	if err := svc.Run(serviceName, w); err != nil {
		return fmt.Errorf("windows service: %w", err)
	}
	if w.err != nil {
		if elog != nil {
			_ = elog.Error(3, "ehc-agent stopped with an error: "+w.err.Error())
		}
		return w.err
	}
	info("ehc-agent stopped")
	return nil
}

// stopWaitHint is how long the SCM is told a stop may take: the agent stops within
// daemon.StopTimeout (4.5 s) plus the local API's shutdown.
const stopWaitHint = 10_000 // ms

// Execute is svc.Handler: the agent runs in a goroutine owned by Execute, which returns
// only after that goroutine has.
func (w *windowsService) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			w.err = err
			if err != nil {
				// A service-specific exit code: with `sc.exe failureflag ehc-agent 1` the
				// SCM applies its recovery actions (restart) to this as to a crash.
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: stopWaitHint}
				cancel()
			}
		}
	}
}
