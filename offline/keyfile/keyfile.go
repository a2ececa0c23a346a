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
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := check(path, fi); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

func check(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is a secret key readable by other users (mode %04o): chmod 600 %s, and make it the agent user's", path, fi.Mode().Perm(), path)
	}
	return nil
}
