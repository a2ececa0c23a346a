package seal

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestKeyFileCreatedPrivateAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "outbox.key")
	r1, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	rec, err := r1.Seal(nil, []byte("张三 110101198001011234"), []byte("seq1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec, []byte("110101198001011234")) {
		t.Fatal("sealed record holds the plaintext")
	}
	r2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if r1.KeyID() != r2.KeyID() {
		t.Fatalf("key id changed across loads: %s vs %s", r1.KeyID(), r2.KeyID())
	}
	got, err := r2.Open(nil, rec, []byte("seq1"))
	if err != nil || string(got) != "张三 110101198001011234" {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestOpenRefusesTamperingAndWrongAAD(t *testing.T) {
	r, _ := NewRing(bytes.Repeat([]byte{7}, 16))
	rec, _ := r.Seal(nil, []byte("payload"), []byte("a"))
	if _, err := r.Open(nil, rec, []byte("b")); err != ErrOpen {
		t.Fatalf("wrong aad: err = %v", err)
	}
	rec[len(rec)-1] ^= 1
	if _, err := r.Open(nil, rec, []byte("a")); err != ErrOpen {
		t.Fatalf("tampered: err = %v", err)
	}
	if _, err := r.Open(nil, rec[:10], []byte("a")); err != ErrOpen {
		t.Fatalf("short: err = %v", err)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	old, _ := LoadOrCreate(filepath.Join(dir, "old.key"))
	rec, _ := old.Seal(nil, []byte("x"), nil)
	cur, _ := LoadOrCreate(filepath.Join(dir, "new.key"))
	if _, err := cur.Open(nil, rec, nil); err == nil {
		t.Fatal("new key opened a record of the old key without it")
	}
	if err := cur.Add(filepath.Join(dir, "old.key")); err != nil {
		t.Fatal(err)
	}
	if got, err := cur.Open(nil, rec, nil); err != nil || string(got) != "x" {
		t.Fatalf("after Add: %q %v", got, err)
	}
	rec2, _ := cur.Seal(nil, []byte("y"), nil)
	if !bytes.Equal(rec2[:KeyIDLen], cur.current[:]) || bytes.Equal(rec2[:KeyIDLen], rec[:KeyIDLen]) {
		t.Fatal("new records must carry the new key id")
	}
}

// A key file others can read is refused, not used (offline/keyfile): the outbox's
// personal data is only as sealed as its key is private.
func TestKeyReadableByOthersIsRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits on Windows: the state directory's ACLs decide")
	}
	p := filepath.Join(t.TempDir(), "outbox.key")
	if _, err := LoadOrCreate(p); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreate(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 key: %v", err)
	}
	r, _ := NewRing(make([]byte, 16))
	if err := r.Add(p); err == nil {
		t.Fatal("Add took a 0644 key")
	}
}
