package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// Files LoadDir reads from a trust directory.
const (
	AnchorFile      = "anchor.pub"       // 130 hex digits (04‖X‖Y) or PEM "PUBLIC KEY"
	KeySetFile      = "keyset.json"      // key set envelope, required
	RevocationsFile = "revocations.json" // revocation envelope, optional
)

// FileError names the file of a trust directory that could not be used.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// LoadDir builds a memory-only Store from a trust directory: the anchor from
// AnchorFile, the key set from KeySetFile and, when present, the revocation list from
// RevocationsFile. Every error is a *FileError naming the file; for a document it
// wraps the *Error with its reason.
func LoadDir(dir string, opts Options) (*Store, error) {
	read := func(name string, optional bool) ([]byte, error) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, &FileError{p, err}
		}
		return b, nil
	}
	ab, err := read(AnchorFile, false)
	if err != nil {
		return nil, err
	}
	anchor, err := sm2sig.ParsePublicKeyText(ab)
	if err != nil {
		return nil, &FileError{filepath.Join(dir, AnchorFile), fmt.Errorf("not a trust anchor public key: %w", err)}
	}
	s, err := Open(nil, anchor, opts)
	if err != nil {
		return nil, err
	}
	ks, err := read(KeySetFile, false)
	if err != nil {
		return nil, err
	}
	if err := s.ApplyKeySet(ks); err != nil {
		return nil, &FileError{filepath.Join(dir, KeySetFile), err}
	}
	rv, err := read(RevocationsFile, true)
	if err != nil {
		return nil, err
	}
	if rv != nil {
		if err := s.ApplyRevocations(rv); err != nil {
			return nil, &FileError{filepath.Join(dir, RevocationsFile), err}
		}
	}
	return s, nil
}
