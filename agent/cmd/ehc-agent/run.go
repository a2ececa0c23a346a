package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/agent/daemon"
	"github.com/ehc-agent/ehc-agent/agent/hints"
)

func init() {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent: devices, offline verification, local delivery and the outbox",
		Long: `Run the agent until SIGTERM or SIGINT (a clean stop within 5 s).
SIGHUP re-reads the configuration: changed devices are re-created; an invalid
configuration is refused with a log line and the running one stays.

Configuration: the YAML file given with --config, over built-in defaults; any scalar
key can be overridden by the environment as EHC_AGENT_<KEY> (log.level is
EHC_AGENT_LOG_LEVEL). A bad configuration exits with status 2, naming each bad key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			var d *daemon.Daemon
			if err == nil {
				d, err = daemon.New(path, cfg, cmd.OutOrStdout())
			}
			if es, ok := config.AsErrors(err); ok {
				for _, e := range es {
					cmd.PrintErrln("config:", e.Error())
				}
				return &exitError{code: 2, err: errConfig}
			}
			if err != nil {
				return usageErrorf("%v", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					default: // a reload is already pending
					}
				}
			}()
			err = d.Run(ctx, reload)
			var taken *api.PortTakenError
			if errors.As(err, &taken) {
				return fmt.Errorf("%w — fix: %s", err, hints.For(hints.APIPortTaken))
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file (YAML); none: built-in defaults and environment")
	rootCmd.AddCommand(cmd)
}
