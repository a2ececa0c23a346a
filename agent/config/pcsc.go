package config

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// PCSC is a PC/SC card reader device (CARDS.md; drivers/pcsc).
type PCSC struct {
	// Reader is the card reader's PC/SC name, or a pattern (* and ? as in file names)
	// naming several: "ACS ACR1281U* 00 00", "*".
	Reader string `mapstructure:"reader"`
	// PSAMReader is the PSAM's reader (a reader's second slot is a reader of its own);
	// "" means none, and resident health cards are read partially (identity_partial).
	PSAMReader string `mapstructure:"psam_reader"`
	// PSAMPIN (hex digits: 123456 is sent as 12 34 56) or PSAMPINFile (holding them,
	// readable by its owner only): one of them with psam_reader.
	PSAMPIN     string `mapstructure:"psam_pin"`
	PSAMPINFile string `mapstructure:"psam_pin_file"`
	// ReadTimeout bounds one card read; 0 means the driver's default (1.9s).
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// Photo reads the resident health card's photo (local API only); default true.
	Photo *bool `mapstructure:"photo"`

	// pin is the PIN as validate read it: the file is read once, and a reload whose
	// PIN file changed re-creates the device (its configuration differs).
	pin secret
}

// secret is bytes that never print.
type secret []byte

func (secret) String() string   { return "[redacted]" }
func (secret) GoString() string { return "[redacted]" }

// Bounds of pcsc.read_timeout.
const (
	MinPCSCReadTimeout = 200 * time.Millisecond
	MaxPCSCReadTimeout = 30 * time.Second
)

// validate checks the section. Problems with the PIN never quote it.
func (p *PCSC) validate(key string, bad func(key, format string, args ...any)) {
	if p.Reader == "" {
		bad(key+".reader", "missing: the card reader's name or a pattern")
	}
	switch {
	case p.PSAMReader == "" && (p.PSAMPIN != "" || p.PSAMPINFile != ""):
		bad(key+".psam_reader", "missing: psam_pin and psam_pin_file go with a psam_reader")
	case p.PSAMReader != "" && p.PSAMPIN == "" && p.PSAMPINFile == "":
		bad(key+".psam_pin", "missing: a psam_reader needs psam_pin or psam_pin_file")
	case p.PSAMPIN != "" && p.PSAMPINFile != "":
		bad(key+".psam_pin", "give psam_pin or psam_pin_file, not both")
	case p.PSAMPIN != "":
		pin, err := parsePIN(p.PSAMPIN)
		if err != nil {
			bad(key+".psam_pin", "%v", err)
		}
		p.pin = pin
	case p.PSAMPINFile != "":
		pin, err := p.readPINFile()
		if err != nil {
			bad(key+".psam_pin_file", "%v", err)
		}
		p.pin = pin
	}
	if p.PSAMReader != "" && p.PSAMReader == p.Reader {
		bad(key+".psam_reader", "is the card reader too; a PSAM has a reader (or slot) of its own")
	}
	if p.ReadTimeout != 0 && (p.ReadTimeout < MinPCSCReadTimeout || p.ReadTimeout > MaxPCSCReadTimeout) {
		bad(key+".read_timeout", "%s is outside %s..%s", p.ReadTimeout, MinPCSCReadTimeout, MaxPCSCReadTimeout)
	}
}

// Validate checks the section alone (for commands that take it from flags); keys are
// relative to it ("reader", "psam_pin_file").
func (p *PCSC) Validate() Errors {
	var errs Errors
	p.validate("", func(key, format string, args ...any) {
		errs = append(errs, Errorf(strings.TrimPrefix(key, "."), format, args...))
	})
	return errs
}

// PIN returns the PSAM's VERIFY data as validation read it, from psam_pin or
// psam_pin_file; nil without a PSAM. Unvalidated, it reads them now.
func (p *PCSC) PIN() ([]byte, error) {
	switch {
	case p.pin != nil:
		return bytes.Clone(p.pin), nil
	case p.PSAMPIN != "":
		return parsePIN(p.PSAMPIN)
	case p.PSAMPINFile != "":
		return p.readPINFile()
	}
	return nil, nil
}

// parsePIN decodes hex digits; its errors say what is wrong, never what was there.
func parsePIN(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || len(s) > 16 || len(s)%2 != 0 {
		return nil, fmt.Errorf("must be an even number (2 to 16) of hex digits")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("must be hex digits")
	}
	return b, nil
}

func (p *PCSC) readPINFile() ([]byte, error) {
	fi, err := os.Stat(p.PSAMPINFile)
	if err != nil {
		return nil, err
	}
	// Like a key file: the PIN unlocks the PSAM, whoever reads it.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %04o); chmod 600 it", p.PSAMPINFile, fi.Mode().Perm())
	}
	b, err := os.ReadFile(p.PSAMPINFile)
	if err != nil {
		return nil, err
	}
	pin, err := parsePIN(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p.PSAMPINFile, err)
	}
	return pin, nil
}
