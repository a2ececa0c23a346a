package printer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	goserial "go.bug.st/serial"

	"github.com/ehc-agent/ehc-agent/drivers/serial"
)

func (p *Printer) dial(ctx context.Context) (conn, error) {
	switch p.cfg.Transport {
	case Serial:
		return p.dialSerial()
	case USBLP:
		return dialUSBLP(p.cfg.Path)
	default:
		return p.dialTCP(ctx)
	}
}

func notConnected(detail string, err error) error {
	return &Error{Reason: ReasonNotConnected, Detail: detail, Err: err}
}

// --- serial ---

func (p *Printer) dialSerial() (conn, error) {
	path := p.cfg.Path
	if path == "" {
		list, err := serial.ListPorts(p.cfg.Ports)
		if err != nil {
			return nil, notConnected("listing serial ports", err)
		}
		for _, pi := range list {
			if pi.VID == p.cfg.VID && pi.PID == p.cfg.PID {
				path = pi.Path
				break
			}
		}
		if path == "" {
			return nil, notConnected(fmt.Sprintf("no serial port with VID %s PID %s", p.cfg.VID, p.cfg.PID), nil)
		}
	}
	// 8N1, no flow control, modem lines left alone: ptys and many CDC ports refuse them.
	port, err := goserial.Open(path, &goserial.Mode{BaudRate: p.cfg.Baud, DataBits: 8, Parity: goserial.NoParity, StopBits: goserial.OneStopBit})
	if err != nil {
		return nil, notConnected("opening "+path, err)
	}
	return &serialConn{port: port}, nil
}

type serialConn struct {
	port goserial.Port
	buf  [1]byte
}

func (s *serialConn) write(b []byte, _ time.Time) error {
	// The descriptor blocks; a write cannot outlast the bytes' time on the wire, as no
	// flow control is set.
	for len(b) > 0 {
		n, err := s.port.Write(b)
		if err != nil {
			return lost("writing", err)
		}
		if n == 0 {
			return lost("writing", io.ErrShortWrite)
		}
		b = b[n:]
	}
	return nil
}

func (s *serialConn) readByte(deadline time.Time) (byte, error) {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, errTimeout
		}
		if err := s.port.SetReadTimeout(left); err != nil {
			return 0, lost("setting the read timeout", err)
		}
		n, err := s.port.Read(s.buf[:])
		if err != nil {
			return 0, lost("reading the status", err)
		}
		if n == 1 {
			return s.buf[0], nil
		}
	}
}

func (s *serialConn) discardInput() error {
	if err := s.port.ResetInputBuffer(); err != nil {
		return lost("discarding input", err)
	}
	return nil
}

func (s *serialConn) finish(time.Time) error {
	if err := s.port.Drain(); err != nil {
		return lost("draining", err)
	}
	return nil
}

func (s *serialConn) Close() error { return s.port.Close() }

// --- TCP 9100 ---

// eofWait bounds the wait for a network printer to close its side after the job: most
// close at once, some never do, and the job is in their hands either way.
const eofWait = 2 * time.Second

func (p *Printer) dialTCP(ctx context.Context) (conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.cfg.Address)
	if err != nil {
		return nil, notConnected("connecting to "+p.cfg.Address, err)
	}
	return &tcpConn{c: c.(*net.TCPConn)}, nil
}

type tcpConn struct {
	c   *net.TCPConn
	buf [1]byte
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func (t *tcpConn) write(b []byte, deadline time.Time) error {
	t.c.SetWriteDeadline(deadline)
	if _, err := t.c.Write(b); err != nil {
		if isTimeout(err) {
			return &Error{Reason: ReasonTimeout, Detail: "the printer took no more data", Err: err}
		}
		return lost("writing", err)
	}
	return nil
}

func (t *tcpConn) readByte(deadline time.Time) (byte, error) {
	t.c.SetReadDeadline(deadline)
	if _, err := io.ReadFull(t.c, t.buf[:]); err != nil {
		if isTimeout(err) {
			return 0, errTimeout
		}
		return 0, lost("reading the status", err)
	}
	return t.buf[0], nil
}

// discardInput has nothing to do: every connection is new.
func (t *tcpConn) discardInput() error { return nil }

// finish half-closes and waits for the printer to close too, reading whatever it still
// sends: closing with unread bytes would reset the connection, and a reset can make a
// printer drop the end of the job.
func (t *tcpConn) finish(deadline time.Time) error {
	if err := t.c.CloseWrite(); err != nil {
		return lost("ending the job", err)
	}
	t.c.SetReadDeadline(earliest(deadline, time.Now().Add(eofWait)))
	_, err := io.Copy(io.Discard, t.c)
	if err != nil && !isTimeout(err) {
		return lost("ending the job", err)
	}
	return nil
}

func (t *tcpConn) Close() error { return t.c.Close() }

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
