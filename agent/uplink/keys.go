package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/emmansun/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/offline/keyfile"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// PublicKeySuffix names the file beside the terminal key that holds its public key
// (130 hex digits, 04‖X‖Y), the form the platform — and the emulator's
// terminals/<id>.pub — registers a terminal by.
const PublicKeySuffix = ".pub"

// LoadOrCreateKey reads the terminal's SM2 private key from path (PEM PKCS#8 or SEC1,
// or 64 hex digits). When the file does not exist it creates a new key there, 0600,
// synced, never overwriting a file that appeared meanwhile. Either way it makes sure
// path+".pub" holds the public key. created says whether the key is new, that is,
// still to be registered at the platform.
func LoadOrCreateKey(path string) (key *sm2.PrivateKey, created bool, err error) {
	b, err := keyfile.Read(path)
	switch {
	case err == nil:
		if key, err = sm2sig.ParsePrivateKey(b); err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if key, err = sm2sig.GenerateKey(); err != nil {
			return nil, false, err
		}
		pemKey, err := sm2sig.MarshalPrivateKeyPEM(key)
		if err != nil {
			return nil, false, err
		}
		if err := writeNew(path, pemKey, 0o600); err != nil {
			return nil, false, err
		}
		created = true
	default:
		return nil, false, err
	}
	pub := []byte(sm2sig.Public(key).Hex() + "\n")
	if old, err := os.ReadFile(path + PublicKeySuffix); err != nil || string(old) != string(pub) {
		// A stale or missing public key file is rewritten from the private key, which
		// is the truth.
		if err := os.WriteFile(path+PublicKeySuffix, pub, 0o644); err != nil {
			return nil, false, err
		}
	}
	return key, created, nil
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// LoadTLS builds the client TLS configuration: only the CAs in caFile (PEM) are
// trusted for the platform's certificate, and with certFile and keyFile (PEM) the
// client presents that certificate (mTLS).
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	c := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		keyPEM, err := keyfile.Read(keyFile) // a private key, refused when others can read it
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
