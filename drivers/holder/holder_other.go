//go:build !linux

package holder

// File reports ErrUnsupported: only Linux has /proc.
func File(path string, exceptPID int) ([]Process, error) { return nil, ErrUnsupported }

// TCPListener reports ErrUnsupported: only Linux has /proc.
func TCPListener(addr string) ([]Process, error) { return nil, ErrUnsupported }
