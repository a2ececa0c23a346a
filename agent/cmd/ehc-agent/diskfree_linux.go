package main

import "syscall"

// diskFree returns the bytes free for an unprivileged user, and the size, of the
// filesystem that holds path.
func diskFree(path string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
