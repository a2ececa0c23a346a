package printer

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// dialUSBLP opens the USB printer class device. Go registers a character device that
// can poll (usblp does) with its poller, which is what gives reads and writes their
// deadlines. O_NOCTTY keeps a tty standing in for the device in tests from becoming
// the process's controlling terminal.
func dialUSBLP(path string) (conn, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		detail := "opening " + path
		if errors.Is(err, syscall.EBUSY) {
			detail += " (another program has it open)"
		}
		return nil, notConnected(detail, err)
	}
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, notConnected(path+" cannot be read with a timeout", err)
	}
	return &fileConn{f: f}, nil
}

type fileConn struct {
	f   *os.File
	buf [64]byte
}

func (c *fileConn) write(b []byte, deadline time.Time) error {
	c.f.SetWriteDeadline(deadline)
	if _, err := c.f.Write(b); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return &Error{Reason: ReasonTimeout, Detail: "the printer took no more data", Err: err}
		}
		return lost("writing", err)
	}
	return nil
}

func (c *fileConn) readByte(deadline time.Time) (byte, error) {
	c.f.SetReadDeadline(deadline)
	for {
		n, err := c.f.Read(c.buf[:1])
		switch {
		case n == 1:
			return c.buf[0], nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return 0, errTimeout
		case err == nil:
			continue
		default: // io.EOF too: the device went away
			return 0, lost("reading the status", err)
		}
	}
}

// discardInput reads until nothing is left: a file has no flush of its input.
func (c *fileConn) discardInput() error {
	c.f.SetReadDeadline(time.Now())
	for range 64 {
		if _, err := c.f.Read(c.buf[:]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return lost("discarding input", err)
		}
	}
	return nil
}

// finish has nothing to wait for: usblp's write returns once the data went out.
func (c *fileConn) finish(time.Time) error { return nil }

func (c *fileConn) Close() error { return c.f.Close() }
