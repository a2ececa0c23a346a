package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

func newSimCodeCmd() *cobra.Command {
	var (
		keysDir  string
		defect   string
		at       string
		genAt    string
		seq      uint32
		count    int
		validity uint16
		ext      string
	)
	cmd := &cobra.Command{
		Use:   "code --keys DIR [--defect NAME] [--at RFC3339] [--seq N] [--count N]",
		Short: "Print EHC1 codes signed by a test trust chain, valid or with a chosen defect",
		Long: `Print --count EHC1 codes, one a line, signed by the keys of "sim keys --out DIR".

--at is when the codes are to be verified (default: now); a code without defect is
generated then. --seq is the first sequence number, the next codes count up; without it
a random start is taken, so that codes of separate runs do not replay each other.

Defects (the reason "ehc-agent verify" reports):
` + defectHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keysDir == "" {
				return usageErrorf("--keys is required")
			}
			if _, ok := issuer.Defects[defect]; defect != "" && !ok {
				return usageErrorf("unknown --defect %q; known: %s", defect, strings.Join(issuer.DefectNames(), ", "))
			}
			if count < 1 {
				return usageErrorf("--count must be at least 1")
			}
			o := issuer.CodeOptions{Defect: defect, Validity: validity}
			var err error
			if o.At, err = parseTimeFlag("--at", at, time.Now()); err != nil {
				return err
			}
			if o.GeneratedAt, err = parseTimeFlag("--generated-at", genAt, time.Time{}); err != nil {
				return err
			}
			if validity > 3600 {
				return usageErrorf("--validity must be 1..3600 (use --defect bad-validity for a malformed one)")
			}
			if ext != "" {
				if o.Extension, err = hex.DecodeString(ext); err != nil || len(o.Extension) > 32 {
					return usageErrorf("--extension must be at most 32 bytes of hex")
				}
			}
			if !cmd.Flags().Changed("seq") {
				var b [4]byte
				if _, err := rand.Read(b[:]); err != nil {
					return err
				}
				seq = binary.BigEndian.Uint32(b[:]) >> 8 // leaves room to count up
			}
			k, err := issuer.LoadKeys(keysDir)
			if err != nil {
				return usageErrorf("keys: %v", err)
			}
			for i := range count {
				o.Sequence = seq + uint32(i)
				c, err := k.NewCode(o)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), c)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keysDir, "keys", "", `keys directory written by "sim keys" (required)`)
	f.StringVar(&defect, "defect", "", "make codes with this defect (see above)")
	f.StringVar(&at, "at", "", "verification time the codes are made for, RFC 3339 (default: now)")
	f.StringVar(&genAt, "generated-at", "", "generated-at, RFC 3339 (default: from --at and the defect)")
	f.Uint32Var(&seq, "seq", 0, "sequence number of the first code (default: random)")
	f.IntVar(&count, "count", 1, "number of codes")
	f.Uint16Var(&validity, "validity", 0, "code validity in seconds, 1..3600 (default: the keys' 60)")
	f.StringVar(&ext, "extension", "", "extension bytes, hex (at most 32 bytes)")
	return cmd
}

func parseTimeFlag(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageErrorf("%s %q is not an RFC 3339 time", name, v)
	}
	return t, nil
}

func defectHelp() string {
	var b strings.Builder
	for _, n := range issuer.DefectNames() {
		d := issuer.Defects[n]
		fmt.Fprintf(&b, "  %-27s %-25s %s\n", n, d.Reason, d.What)
	}
	return b.String()
}

func init() { simCmd.AddCommand(newSimCodeCmd()) }
