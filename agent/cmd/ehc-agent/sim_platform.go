package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

func newSimPlatformCmd() *cobra.Command {
	var (
		listen, data, trustDir    string
		terminals                 []string
		f                         platformsim.Faults
		downFor                   time.Duration
		tlsCert, tlsKey, clientCA string
		seed                      uint64
		verbose                   bool
	)
	cmd := &cobra.Command{
		Use:   "platform --listen 127.0.0.1:PORT --data DIR",
		Short: "Run the platform emulator (spec/PLATFORM.md) on loopback, with fault injection",
		Long: `Run the platform emulator on a loopback address until SIGINT or SIGTERM.

DIR holds:
  terminals/<terminal_id>.pub  each terminal's SM2 public key (130 hex digits or PEM), as the
                               agent writes it beside its terminal_key; read when first needed
  trust/                       the trust documents served (keyset.json, revocations.json):
                               a "sim keys" directory, or give one with --trust
  codes.json                   online codes to resolve: {"<code>": {"ehc_id", "id_type",
                               "id_number", "name", …, "expires_at": "<RFC 3339>"}}
  events.jsonl                 every accepted event, one per line (written, and read at start
                               so that duplicates are recognised across restarts)

Faults: --latency delays every request; --reset-rate, --error-rate (503) and
--throttle-rate (429 with --retry-after) act before a request is processed;
--drop-rate processes it (events are stored) and then resets the connection, so the
answer is lost; --down-for resets every connection for that long after start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" {
				return usageErrorf("--data is required")
			}
			for _, r := range []float64{f.ResetRate, f.ErrorRate, f.ThrottleRate, f.DropRate} {
				if r < 0 || r > 1 {
					return usageErrorf("fault rates are probabilities in 0..1")
				}
			}
			if f.ResetRate+f.ErrorRate+f.ThrottleRate > 1 {
				return usageErrorf("--reset-rate + --error-rate + --throttle-rate exceed 1")
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			o := platformsim.Options{DataDir: data, TrustDir: trustDir, Seed: seed,
				Terminals: map[string]*sm2sig.PublicKey{},
				Logger:    slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))}
			for _, t := range terminals {
				id, file, ok := strings.Cut(t, "=")
				if !ok {
					return usageErrorf("--terminal %q: want ID=PUBLIC_KEY_FILE", t)
				}
				b, err := os.ReadFile(file)
				if err != nil {
					return usageErrorf("--terminal %s: %v", id, err)
				}
				k, err := sm2sig.ParsePublicKeyText(b)
				if err != nil {
					return usageErrorf("--terminal %s: %s: %v", id, file, err)
				}
				o.Terminals[id] = k
			}
			if tlsCert != "" || tlsKey != "" {
				c, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
				if err != nil {
					return usageErrorf("--tls-cert/--tls-key: %v", err)
				}
				o.TLS = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
				if clientCA != "" {
					b, err := os.ReadFile(clientCA)
					if err != nil {
						return usageErrorf("--client-ca: %v", err)
					}
					pool := x509.NewCertPool()
					if !pool.AppendCertsFromPEM(b) {
						return usageErrorf("--client-ca %s: no PEM certificate", clientCA)
					}
					o.TLS.ClientCAs, o.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
				}
			} else if clientCA != "" {
				return usageErrorf("--client-ca needs --tls-cert and --tls-key")
			}
			s, err := platformsim.New(o)
			if err != nil {
				return usageErrorf("%v", err)
			}
			s.SetFaults(f)
			if downFor > 0 {
				s.Down(downFor)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := s.Start(listen); err != nil {
				return usageErrorf("%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "platform emulator listening on %s\n", s.URL())
			<-ctx.Done()
			err = s.Close()
			st := s.Stats()
			fmt.Fprintf(cmd.ErrOrStderr(), "requests %d, events accepted %d, duplicates %d, rejected %v, 401 %v, injected: resets %d, 503 %d, 429 %d, drops %d, down resets %d\n",
				st.Requests, st.Accepted, st.Duplicates, st.Rejected, st.Unauthorized, st.Resets, st.Errors, st.Throttled, st.Drops, st.DownResets)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8443", "loopback address to listen on (port 0: any free port)")
	fl.StringVar(&data, "data", "", "data directory (required)")
	fl.StringVar(&trustDir, "trust", "", "directory of the trust documents to serve (default DATA/trust)")
	fl.StringArrayVar(&terminals, "terminal", nil, "known terminal, ID=PUBLIC_KEY_FILE (repeatable; beside DATA/terminals)")
	fl.DurationVar(&f.Latency, "latency", 0, "delay before every answer")
	fl.Float64Var(&f.ResetRate, "reset-rate", 0, "share of requests answered with a connection reset")
	fl.Float64Var(&f.ErrorRate, "error-rate", 0, "share of requests answered 503")
	fl.Float64Var(&f.ThrottleRate, "throttle-rate", 0, "share of requests answered 429")
	fl.DurationVar(&f.RetryAfter, "retry-after", time.Second, "Retry-After of a 429 (whole seconds)")
	fl.Float64Var(&f.DropRate, "drop-rate", 0, "share of requests whose answer is dropped after processing")
	fl.DurationVar(&downFor, "down-for", 0, "reset every connection for this long after start")
	fl.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fl.StringVar(&tlsKey, "tls-key", "", "… and this key (PEM)")
	fl.StringVar(&clientCA, "client-ca", "", "require client certificates issued by this CA (PEM); their CN must be the terminal id")
	fl.Uint64Var(&seed, "seed", 0, "seed of the fault dice (0: random)")
	fl.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

func init() { simCmd.AddCommand(newSimPlatformCmd()) }
