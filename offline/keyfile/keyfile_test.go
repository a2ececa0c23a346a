package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := os.WriteFile(p, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p); err != nil || string(b) != "secret" {
		t.Fatalf("0600: %q %v", b, err)
	}
	if _, err := Read(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v, want ErrNotExist (callers create the key then)", err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o660} {
		os.Chmod(p, mode)
		_, err := Read(p)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+p) {
			t.Errorf("mode %04o: %v, want a refusal that says chmod 600", mode, err)
		}
	}
	os.Chmod(p, 0o400)
	if _, err := Read(p); err != nil {
		t.Errorf("0400: %v", err)
	}
}

// A group-shared secret (the API token) may be read by its group, not by every user.
func TestReadGroupShared(t *testing.T) {
	p := filepath.Join(t.TempDir(), "api.token")
	if err := os.WriteFile(p, []byte("token"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadGroupShared(p); err != nil || string(b) != "token" {
		t.Fatalf("0640: %q %v", b, err)
	}
	if _, err := Read(p); err == nil {
		t.Error("Read took a 0640 key")
	}
	if runtime.GOOS == "windows" {
		return
	}
	os.Chmod(p, 0o644)
	if _, err := ReadGroupShared(p); err == nil || !strings.Contains(err.Error(), "chmod 600 "+p+" (or 640") {
		t.Errorf("0644: %v, want a refusal", err)
	}
}
