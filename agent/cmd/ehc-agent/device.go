package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/agent/api"
	"github.com/ehc-agent/ehc-agent/agent/config"
	"github.com/ehc-agent/ehc-agent/drivers/device"
)

// `ehc-agent device lend|reclaim` ask the running agent, through its local API (the
// configuration's api.listen and token file), to lend a device to another program or
// to take it back. The agent does the work; these only ask and print the answer.

func newDeviceCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Lend a device of the running agent to another program, or take it back",
		Long: `Ask the running agent, through its local API (api.listen of the configuration given
with --config, default /etc/ehc-agent/agent.yaml when it exists, and its token file), to
lend a device or reclaim it.

A lent device's port (or USB interface) is closed so that another program, such as the
national medical-insurance SDK, can open it; the agent opens it again when the lend
ends or is reclaimed.`,
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "", "the running agent's configuration file (YAML)")

	var dur time.Duration
	lend := &cobra.Command{
		Use:   "lend NAME --for 60s",
		Short: "Close device NAME's port for another program, for 1s to 600s",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dur < device.MinLend || dur > device.MaxLend || dur%time.Second != 0 {
				return usageErrorf("--for %s: give whole seconds from 1s to 600s", dur)
			}
			var out api.LendResponse
			body := fmt.Sprintf(`{"seconds": %d}`, dur/time.Second)
			if err := callAgent(cmd.Context(), path, "/v1/devices/"+url.PathEscape(args[0])+"/lend", body, &out); err != nil {
				return err
			}
			until := "?"
			if out.Until != nil {
				until = out.Until.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s lent until %s\n", out.Device, until)
			return nil
		},
	}
	lend.Flags().DurationVar(&dur, "for", 0, "how long to lend the device (1s to 600s, whole seconds)")
	lend.MarkFlagRequired("for")

	reclaim := &cobra.Command{
		Use:   "reclaim NAME",
		Short: "End the lend of device NAME: the agent opens it again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.LendResponse
			if err := callAgent(cmd.Context(), path, "/v1/devices/"+url.PathEscape(args[0])+"/reclaim", "", &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s reclaimed: the agent is opening it again\n", out.Device)
			return nil
		},
	}
	cmd.AddCommand(lend, reclaim)
	return cmd
}

func init() { rootCmd.AddCommand(newDeviceCmd()) }

// callAgent POSTs body to the running agent's local API at path and decodes its JSON
// answer into out. A refusal is exit status 1 with the API's reason code; an agent that
// cannot be reached or a configuration that cannot be read is exit status 2.
func callAgent(ctx context.Context, cfgPath, path, body string, out any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfgPath = installedConfig(cfgPath)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return usageErrorf("configuration %s: %v", cfgPath, err)
	}
	l, err := newLocalAPI(cfg, 15*time.Second)
	if err != nil {
		return err
	}
	token, err := l.token()
	if err != nil {
		return usageErrorf("cannot read the API token (%v): run as root or as the ehc-agent user", err)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp, err := l.do(ctx, http.MethodPost, path, token, rd)
	if err != nil {
		return usageErrorf("the agent at %s did not answer (is it running?): %v", cfg.API.Listen, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return usageErrorf("reading the agent's answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return &exitError{code: 1, err: fmt.Errorf("the agent answered %s: %s", resp.Status, bytes.TrimSpace(b))}
		}
		msg := e.Error
		if e.Message != "" && e.Message != e.Error && !strings.HasPrefix(e.Message, e.Error) {
			msg += ": " + e.Message
		} else if e.Message != "" {
			msg = e.Message
		}
		return &exitError{code: 1, err: errors.New(msg)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("the agent's answer is not understood: %v", err)}
	}
	return nil
}
