package main

import (
	"bufio"
	"encoding/json"
	"io"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/offline/verify"
	"github.com/ehc-agent/ehc-agent/protocol/codes"
)

// verifyLine is one line of `ehc-agent verify` output. Identity fields are present only
// for a valid code; the masked form is the only form of a payment or insurance payload
// ever printed.
type verifyLine struct {
	Type        string  `json:"type"`
	Status      string  `json:"status"` // valid | invalid | pending
	Reason      string  `json:"reason"`
	TrustStale  *bool   `json:"trust_stale,omitempty"` // ehc_offline only
	EHCID       string  `json:"ehc_id,omitempty"`
	Category    *uint8  `json:"category,omitempty"`
	IssuerID    *uint32 `json:"issuer_id,omitempty"`
	CertSerial  *uint32 `json:"cert_serial,omitempty"`
	RootIndex   *uint8  `json:"root_index,omitempty"`
	GeneratedAt string  `json:"generated_at,omitempty"`
	ExpiresAt   string  `json:"expires_at,omitempty"`
	Sequence    *uint32 `json:"sequence,omitempty"`
	Extension   *string `json:"extension,omitempty"`
	Scheme      string  `json:"scheme,omitempty"`
	Masked      string  `json:"masked,omitempty"`
}

// Statuses and reasons the command adds to the verifier's.
const (
	statusPending        = "pending"
	reasonOnlineRequired = "online_required"
	reasonRouted         = "routed"
	cliDevice            = "cli"
)

func newVerifyCmd() *cobra.Command {
	var (
		trustDir  string
		atFlag    string
		skew      time.Duration
		stale     time.Duration
		allow     []uint
		insurance []string
	)
	cmd := &cobra.Command{
		Use:   "verify --trust-dir DIR [--at RFC3339] [--skew 30s] [CODE…|-]",
		Short: "Classify scanned payloads and verify EHC1 codes offline, one JSON line each",
		Long: `Classify each payload (CODES.md) and verify EHC1 offline codes against the trust
documents of --trust-dir: anchor.pub (130 hex digits 04‖X‖Y, or a PEM PUBLIC KEY),
keyset.json and, if present, revocations.json — both signed envelopes.

Payloads come from the arguments, one each; "-" or no argument reads standard input,
one payload a line. Each gives one JSON object on its own line of standard output:
  {"type", "status", "reason", …}
  ehc_offline  status valid or invalid with the verification reason; a valid code adds
               ehc_id, category, issuer_id, cert_serial, root_index, generated_at and
               expires_at (RFC 3339), sequence, extension (hex); every result carries
               trust_stale.
  ehc_online   status pending, reason online_required: only the platform can resolve it.
  payment,     status pending, reason routed: not verifiable offline, they go to their
  insurance    channel; only the masked payload is printed ("masked").
  unknown      status invalid with its reason (unrecognised, too_long, bad_bytes).

All payloads of one run share one replay cache with no double-read window: the same
code twice is "replayed" the second time.

Exit status: 0 if every payload is valid, 1 if any is not (pending included), 2 for bad
usage or an unusable trust directory (the message names the file and the problem).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			if atFlag != "" {
				t, err := time.Parse(time.RFC3339, atFlag)
				if err != nil {
					return usageErrorf("--at %q is not an RFC 3339 time", atFlag)
				}
				now = t
			}
			if trustDir == "" {
				return usageErrorf("--trust-dir is required")
			}
			if skew < 0 {
				return usageErrorf("--skew must not be negative")
			}
			opts := verify.Options{Skew: skew, DuplicateWindow: -1}
			if skew == 0 {
				opts.Skew = -1 // the flag's 0 is "none"; the Options' 0 is "default"
			}
			for _, id := range allow {
				if id > 1<<32-1 {
					return usageErrorf("--issuer-allow %d is not a 32-bit issuer id", id)
				}
				opts.IssuerAllow = append(opts.IssuerAllow, uint32(id))
			}
			var copts codes.Options
			for _, p := range insurance {
				re, err := regexp.Compile(p)
				if err != nil {
					return usageErrorf("--insurance %q: %v", p, err)
				}
				copts.Insurance = append(copts.Insurance, re)
			}
			ts, err := trust.LoadDir(trustDir, trust.Options{StalenessLimit: stale})
			if err != nil {
				return usageErrorf("trust directory: %v", err)
			}
			rc, err := replay.Open(nil, replay.Options{}, now) // memory only: one run
			if err != nil {
				return err
			}
			v := verify.New(ts, rc, opts)

			out := json.NewEncoder(cmd.OutOrStdout())
			out.SetEscapeHTML(false)
			allValid := true
			handle := func(payload []byte) error {
				line := verifyPayload(v, &copts, payload, now)
				if line.Status != verify.StatusValid {
					allValid = false
				}
				return out.Encode(line)
			}
			if len(args) == 0 {
				args = []string{"-"}
			}
			for _, a := range args {
				if a != "-" {
					if err := handle([]byte(a)); err != nil {
						return err
					}
					continue
				}
				if err := eachLine(cmd.InOrStdin(), handle); err != nil {
					return err
				}
			}
			if !allValid {
				return errSomeInvalid
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&trustDir, "trust-dir", "", "directory with anchor.pub, keyset.json and optionally revocations.json (required)")
	f.StringVar(&atFlag, "at", "", "verification time, RFC 3339 (default: now)")
	f.DurationVar(&skew, "skew", verify.DefaultSkew, "clock skew tolerated around a code's validity; 0s for none")
	f.DurationVar(&stale, "staleness", trust.DefaultStalenessLimit, "how far past its next_update the key set may be before results carry trust_stale")
	f.UintSliceVar(&allow, "issuer-allow", nil, "accept only these issuer ids (repeat or comma-separate); default: any")
	f.StringArrayVar(&insurance, "insurance", nil, "regular expression of an insurance e-voucher (repeatable)")
	return cmd
}

func init() { rootCmd.AddCommand(newVerifyCmd()) }

// eachLine calls fn with every non-empty line of r, its line ending removed. Lines may
// be long (up to 1 MiB) so that an over-long payload is classified as too_long rather
// than breaking the read.
func eachLine(r io.Reader, fn func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return usageErrorf("reading standard input: %v", err)
	}
	return nil
}

func verifyPayload(v *verify.Verifier, copts *codes.Options, payload []byte, now time.Time) verifyLine {
	c := codes.Classify(payload, copts)
	switch c.Type {
	case codes.TypeEHCOffline:
		return offlineLine(v.Verify(payload, cliDevice, now))
	case codes.TypeEHCOnline:
		return verifyLine{Type: c.Type, Status: statusPending, Reason: reasonOnlineRequired}
	case codes.TypePayment, codes.TypeInsurance:
		return verifyLine{Type: c.Type, Status: statusPending, Reason: reasonRouted, Scheme: c.Scheme, Masked: c.Masked}
	default:
		return verifyLine{Type: c.Type, Status: verify.StatusInvalid, Reason: c.Reason}
	}
}

func offlineLine(r verify.Result) verifyLine {
	l := verifyLine{Type: codes.TypeEHCOffline, Status: r.Status, Reason: r.Reason, TrustStale: &r.TrustStale}
	if r.Status == verify.StatusValid {
		l.EHCID, l.IssuerID, l.CertSerial = r.EHCID, &r.IssuerID, &r.CertSerial
		l.Category, l.RootIndex, l.Sequence, l.Extension = &r.Category, &r.RootIndex, &r.Sequence, &r.Extension
		l.GeneratedAt = r.GeneratedAt.UTC().Format(time.RFC3339)
		l.ExpiresAt = r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return l
}
