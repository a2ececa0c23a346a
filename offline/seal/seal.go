// Package seal encrypts personal data at rest with SM4-GCM (PLATFORM.md: "Personal data
// … is encrypted at rest in the outbox (SM4-GCM)").
//
// Keys live in files of 32 hex digits created 0600 on first use. Each sealed record
// names the key that sealed it (its key id), so a key can be rotated: a new key seals
// from then on, older keys stay in the key ring to open what they sealed.
package seal

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ehc-agent/ehc-agent/offline/keyfile"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

// KeyIDLen is the length of a key id: the first 4 bytes of SM3(key).
const KeyIDLen = 4

const nonceLen = 12

// ErrOpen is returned for a record that does not open: wrong key, or tampered.
var ErrOpen = errors.New("seal: record does not open (tampered, or sealed with another key)")

// Ring holds the sealing key and the keys that can still open older records.
type Ring struct {
	current [KeyIDLen]byte
	aeads   map[[KeyIDLen]byte]cipher.AEAD
}

// LoadOrCreate opens the key file at path, creating it (0600, random key) if it does not
// exist, and returns a ring that seals with it. More key files (older keys) may be added
// with Add.
func LoadOrCreate(path string) (*Ring, error) {
	key, err := readKey(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 16)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("seal: create key %s: %w", path, err)
		}
		_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
		serr := f.Sync()
		if err := errors.Join(werr, serr, f.Close()); err != nil {
			return nil, fmt.Errorf("seal: write key %s: %w", path, err)
		}
	} else if err != nil {
		return nil, err
	}
	r := &Ring{aeads: map[[KeyIDLen]byte]cipher.AEAD{}}
	id, err := r.add(key)
	if err != nil {
		return nil, err
	}
	r.current = id
	return r, nil
}

// NewRing returns a ring that seals with key (16 bytes); for tests and rotation tools.
func NewRing(key []byte) (*Ring, error) {
	r := &Ring{aeads: map[[KeyIDLen]byte]cipher.AEAD{}}
	id, err := r.add(key)
	if err != nil {
		return nil, err
	}
	r.current = id
	return r, nil
}

// Add lets the ring open records sealed with the key in the file at path.
func (r *Ring) Add(path string) error {
	key, err := readKey(path)
	if err != nil {
		return err
	}
	_, err = r.add(key)
	return err
}

func readKey(path string) ([]byte, error) {
	b, err := keyfile.Read(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 16 {
		return nil, fmt.Errorf("seal: %s: not a key of 32 hex digits", path)
	}
	return key, nil
}

func (r *Ring) add(key []byte) ([KeyIDLen]byte, error) {
	var id [KeyIDLen]byte
	b, err := sm4.NewCipher(key)
	if err != nil {
		return id, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return id, err
	}
	h := sm3.Sum(key)
	copy(id[:], h[:])
	r.aeads[id] = a
	return id, nil
}

// KeyID is the id of the sealing key, as hex.
func (r *Ring) KeyID() string { return hex.EncodeToString(r.current[:]) }

// Seal appends to dst the record key id ‖ nonce ‖ SM4-GCM(plain), binding aad
// (which must be presented again to Open).
func (r *Ring) Seal(dst, plain, aad []byte) ([]byte, error) {
	a := r.aeads[r.current]
	dst = append(dst, r.current[:]...)
	n := len(dst)
	dst = append(dst, make([]byte, nonceLen)...)
	if _, err := rand.Read(dst[n:]); err != nil {
		return nil, err
	}
	return a.Seal(dst, dst[n:n+nonceLen], plain, aad), nil
}

// Open returns the plaintext of a record made by Seal.
func (r *Ring) Open(dst, rec, aad []byte) ([]byte, error) {
	if len(rec) < KeyIDLen+nonceLen+16 {
		return nil, ErrOpen
	}
	var id [KeyIDLen]byte
	copy(id[:], rec)
	a, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("seal: record sealed with key %x, which this ring does not hold", id)
	}
	out, err := a.Open(dst, rec[KeyIDLen:KeyIDLen+nonceLen], rec[KeyIDLen+nonceLen:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
