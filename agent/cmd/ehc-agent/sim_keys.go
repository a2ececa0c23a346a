package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

func newSimKeysCmd() *cobra.Command {
	var (
		out   string
		now   string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "keys --out DIR",
		Short: "Make a test trust chain: anchor, root, issuer and holder keys, signed trust documents",
		Long: `Write a fresh test trust chain into DIR (created if needed):
  anchor.pub, keyset.json, revocations.json  the trust directory (ehc-agent verify --trust-dir DIR)
  keys.json                                  issuer id, serials, EHC IDs, validity windows
  *.key                                      private keys, PKCS#8 PEM, mode 0600 — test keys only

Root 1 is valid from a day before --now for five years, root 2 is in the key set with a
window already over; the certificate is valid two years, the credential one year, and
the key set's next_update is 30 days after --now. revocations.json revokes certificate
serial 17, one EHC ID and one holder key, which "sim code --defect" uses.
An existing keys directory is not overwritten without --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("--out is required")
			}
			var o issuer.GenerateOptions
			if now != "" {
				t, err := time.Parse(time.RFC3339, now)
				if err != nil {
					return usageErrorf("--now %q is not an RFC 3339 time", now)
				}
				o.Now = t
			}
			if _, err := os.Stat(filepath.Join(out, issuer.ParamsFile)); err == nil && !force {
				return usageErrorf("%s already holds keys (%s); use --force to replace them", out, issuer.ParamsFile)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return usageErrorf("%v", err)
			}
			k, err := issuer.GenerateKeys(out, o)
			if err != nil {
				return usageErrorf("writing keys: %v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote a test trust chain to %s\nanchor: %s\nissuer: %d (certificate serial %d, revoked serial %d)\nehc_id: %s\n",
				out, sm2sig.Public(k.Anchor).Hex(), k.IssuerID, k.CertSerial, k.RevokedCertSerial, k.EHCID)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write (required)")
	cmd.Flags().StringVar(&now, "now", "", "time the validity windows start from, RFC 3339 (default: now)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the keys of an existing directory")
	return cmd
}

func init() { simCmd.AddCommand(newSimKeysCmd()) }
