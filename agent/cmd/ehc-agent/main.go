// Command ehc-agent is the terminal agent for hospital kiosks and registration windows.
//
// This file only builds the command tree; each subcommand lives in its own file and
// registers itself in an init function, so that work on one command never touches another.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit status out of a command: 1 for "some input was not valid",
// 2 for bad usage or bad configuration.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports bad usage or bad configuration: exit status 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// errSomeInvalid means the command ran, but not every input was valid: exit status 1.
var errSomeInvalid = &exitError{code: 1, err: errors.New("not every input was valid")}

// errConfig means the configuration was refused; its problems were already printed.
var errConfig = errors.New("configuration refused")

var rootCmd = &cobra.Command{
	Use:           "ehc-agent",
	Short:         "Terminal agent for electronic health card codes, QR scanners and card readers",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// simCmd groups the virtual devices, issuer tools and emulators used by tests and the demo.
var simCmd = &cobra.Command{
	Use:   "sim",
	Short: "Virtual devices, test keys and codes, and emulators for tests and the demo",
}

func init() {
	rootCmd.AddCommand(simCmd)
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: 2, err: err}
	})
}

func main() {
	err := rootCmd.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee != errSomeInvalid && ee.err != errConfig {
			fmt.Fprintln(os.Stderr, "ehc-agent:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "ehc-agent:", err)
	os.Exit(2) // cobra's own errors are usage errors (unknown command, bad flag)
}
