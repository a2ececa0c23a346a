// Package keyfile reads secret key files the one way: a key that other users can read
// is refused, never used, as ssh refuses such a private key. A key copied in by hand
// with the default umask (0644) is the usual way it happens; the error says how to fix
// it. Windows has no mode bits to speak of: there the state directory's ACLs decide.
package keyfile

import (
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// Read returns the contents of the key file at path, or an error when it is not a
// regular file or its mode lets the group or other users in.
func Read(path string) ([]byte, error) {
	return read(path, 0o077, "other users", "chmod 600 %s, and make it the agent user's")
}

// ReadGroupShared is Read for a secret that a group may share (the local API's token,
// which the kiosk application's group reads): only other users are kept out.
func ReadGroupShared(path string) ([]byte, error) {
	return read(path, 0o007, "every user", "chmod 600 %s (or 640 for a kiosk application's group)")
}

// read refuses path when its mode has any of the refused bits; who names them in the
// error, fix says what to do (its %s is path).
func read(path string, refused fs.FileMode, who, fix string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&refused != 0 {
		return nil, fmt.Errorf("%s is a secret readable by %s (mode %04o): "+fix, path, who, fi.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}
