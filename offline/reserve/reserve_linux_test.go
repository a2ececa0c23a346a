package reserve

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ehc-agent/ehc-agent/internal/tmpfstest"
)

// The reserve's space is really kept: a disk filled up to it still has it to give,
// and a write that failed for lack of space succeeds once it is released.
func TestReleaseGivesTheSpaceBack(t *testing.T) {
	dir := tmpfstest.Mount(t, 8<<20)
	r, err := Open(filepath.Join(dir, "agent.reserve"), 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	if inUse, _ := r.InUse(); inUse {
		t.Fatal("a fresh reserve on an empty disk is in use")
	}
	tmpfstest.Fill(t, dir, 0)
	err = os.WriteFile(filepath.Join(dir, "event"), make([]byte, 1<<20), 0o600)
	if !NoSpace(err) {
		t.Fatalf("write on a full disk: %v, want no space", err)
	}
	select {
	case <-r.Released():
		t.Fatal("Released is closed before the release")
	default:
	}
	if !r.Release() {
		t.Fatal("Release had nothing to give")
	}
	<-r.Released()
	if err := os.WriteFile(filepath.Join(dir, "event"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatalf("write after the release: %v", err)
	}
	if inUse, since := r.InUse(); !inUse || since.IsZero() {
		t.Fatalf("after Release: in use %v since %v", inUse, since)
	}
	if r.Release() {
		t.Error("a second Release claims to have freed space")
	}
}

// Restore waits until the disk has room to spare, then keeps the space again.
func TestRestoreWaitsForRoom(t *testing.T) {
	dir := tmpfstest.Mount(t, 16<<20)
	path := filepath.Join(dir, "agent.reserve")
	r, err := Open(path, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	filler := tmpfstest.Fill(t, dir, 1<<20)
	r.Release()
	if ok, err := r.Restore(); ok || err != nil {
		t.Fatalf("Restore on a full disk: %v, %v; want false, nil", ok, err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("a refused restore left %d bytes kept", fi.Size())
	}
	os.Remove(filler)
	if ok, err := r.Restore(); !ok || err != nil {
		t.Fatalf("Restore with room: %v, %v", ok, err)
	}
	if inUse, _ := r.InUse(); inUse {
		t.Error("restored reserve still in use")
	}
	select {
	case <-r.Released():
		t.Error("a restored reserve says it is released")
	default:
	}
	free := tmpfstest.Free(t, dir)
	if total := uint64(16 << 20); total-free < 2<<20 {
		t.Errorf("restored reserve keeps %d bytes of the disk, want its 2 MiB", total-free)
	}
}

// A disk already full at start gives a reserve in use, not an agent that will not
// start.
func TestOpenOnAFullDisk(t *testing.T) {
	dir := tmpfstest.Mount(t, 4<<20)
	tmpfstest.Fill(t, dir, 0)
	r, err := Open(filepath.Join(dir, "agent.reserve"), 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	if inUse, _ := r.InUse(); !inUse {
		t.Error("a reserve that could not be made is not in use")
	}
	<-r.Released()
}

// An existing reserve of the right size is taken as it is, and one in a directory the
// agent may not write is an error, not a full disk.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.reserve")
	if _, err := Open(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Size() != 1<<20 {
		t.Fatalf("reserve of %d bytes, want 1 MiB", fi.Size())
	}
	if _, err := Open(filepath.Join(dir, "missing", "agent.reserve"), 1<<20); err == nil || NoSpace(err) {
		t.Fatalf("Open in a missing directory: %v", err)
	}
}

// On ext4 a fallocate that fails for lack of space keeps the blocks it got. A reserve
// that cannot be whole must not keep them: they would be the disk's last free space,
// held by a reserve that says it is already released.
func TestOpenOnANearlyFullExt4KeepsNothing(t *testing.T) {
	dir := tmpfstest.MountExt4(t, 32<<20)
	tmpfstest.Fill(t, dir, 6<<20)
	before := tmpfstest.Free(t, dir)
	r, err := Open(filepath.Join(dir, "agent.reserve"), 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if inUse, _ := r.InUse(); !inUse {
		t.Fatal("a 16 MiB reserve on a disk with 6 MiB free is not in use")
	}
	if after := tmpfstest.Free(t, dir); after < before {
		t.Fatalf("free space %d before, %d after a reserve that could not be made", before, after)
	}
}
