// Package atomicfile replaces a file so that a crash or power cut leaves either the old
// content or the new, never a torn mix: the new content goes to a temporary file beside
// it, is fsync'd, renamed over the old one, and the directory is fsync'd so the rename
// itself survives.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with what write writes, durably. The file is created 0600.
func Write(path string, write func(io.Writer) error) error {
	tmp, err := WriteTemp(path, write)
	if err != nil {
		return err
	}
	if err := Replace(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// WriteTemp writes path's new content to path+".tmp", fsync'd, and returns that path:
// for a caller with something to do between writing and replacing (Replace). On error
// nothing is left behind.
func WriteTemp(path string, write func(io.Writer) error) (string, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// Replace renames tmp to path and makes the rename durable.
func Replace(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	SyncDir(filepath.Dir(path))
	return nil
}

// SyncDir makes the renames in dir durable. Not possible on Windows (a directory cannot
// be opened for sync there), where a rename is as durable as NTFS makes it.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
