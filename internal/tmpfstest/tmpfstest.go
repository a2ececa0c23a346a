//go:build linux

// Package tmpfstest stands up real, small filesystems for tests of what happens when a
// disk fills up: a tmpfs of a given size, so a write past it fails with ENOSPC from the
// kernel, as on a kiosk's full disk, and an ext4 one where ext4's own behaviour matters.
package tmpfstest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new directory and unmounts it when the test
// ends. Mounting needs root (CI runs as root): elsewhere the test is skipped, but under
// CI=true it fails, as every test of a missing system component does.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10)+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs (root is needed): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (root is needed): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Fill writes a file in dir until the filesystem has no more than leave bytes free,
// and returns its path: removing it frees the space again.
func Fill(t testing.TB, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if Free(t, dir) <= uint64(leave) {
			return path
		}
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// Free is the space left on dir's filesystem.
func Free(t testing.TB, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// MountExt4 makes an ext4 filesystem of size bytes in a file and mounts it on a new
// directory through a loop device, until the test ends: for what ext4 does differently
// from tmpfs (a failed fallocate keeps the blocks it got). Like Mount, it needs root
// and fails under CI=true without it.
func MountExt4(t testing.TB, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ext4.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 (e2fsprogs): %v: %s", err, out)
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount an ext4 image (root and loop devices are needed): %v: %s", err, out)
		}
		t.Skipf("cannot mount an ext4 image (root and loop devices are needed): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
