package printer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/serial"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// Transports.
const (
	Serial = "serial"
	USBLP  = "usblp"
	TCP    = "tcp"
)

// Defaults.
const (
	DefaultBaud    = 9600
	DefaultTimeout = 5 * time.Second
	DefaultPort    = "9100"
)

// Config says where the printer is.
type Config struct {
	Transport string        // Serial, USBLP or TCP
	Path      string        // Serial: the port; USBLP: the device, e.g. /dev/usb/lp0
	VID, PID  string        // Serial: find the port by USB ids instead of Path (4 hex digits each)
	Address   string        // TCP: host:port, or host alone for port 9100
	Baud      int           // Serial; 0 is DefaultBaud
	Timeout   time.Duration // connect, status answer, and write; 0 is DefaultTimeout
	// Ports lists the serial ports for VID/PID; nil asks the OS. Tests inject a list:
	// the OS enumerator probes every ttyS*.
	Ports serial.Ports
}

// Reasons an operation failed, for the kiosk and the logs.
const (
	ReasonPaperOut     = "paper_out"
	ReasonOffline      = "offline"
	ReasonNotConnected = "not_connected"
	ReasonTimeout      = "timeout"
)

// Error is a failed Status or Print. errors.Is(err, ErrPaperOut) and the like compare
// reasons only.
type Error struct {
	Reason string
	Detail string // for the log: what was seen, and where
	Err    error  // the cause, if any
}

func (e *Error) Error() string {
	s := "printer: " + e.Reason
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinels by reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Detail == "" && t.Err == nil && t.Reason == e.Reason
}

// Sentinels for errors.Is.
var (
	ErrPaperOut     = &Error{Reason: ReasonPaperOut}
	ErrOffline      = &Error{Reason: ReasonOffline}
	ErrNotConnected = &Error{Reason: ReasonNotConnected}
	ErrTimeout      = &Error{Reason: ReasonTimeout}
	// ErrClosed: the Printer was closed.
	ErrClosed = errors.New("printer: closed")
)

// Reason is err's reason, or "" when err is not an *Error.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Status is what the printer says of itself.
type Status struct {
	PaperOut     bool
	PaperNearEnd bool
	Offline      bool
}

func (s Status) String() string {
	switch {
	case s.PaperOut:
		return "paper out"
	case s.Offline:
		return "offline"
	case s.PaperNearEnd:
		return "ready, paper near end"
	}
	return "ready"
}

// Printer is one configured printer. Its methods are safe for concurrent use.
type Printer struct {
	cfg  Config
	sem  chan struct{} // one operation at a time; taken with a context
	stop context.Context
	halt context.CancelFunc
}

// Open checks c and returns the printer; it does not connect (see the package comment).
func Open(c Config) (*Printer, error) {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("printer: timeout %s is negative", c.Timeout)
	}
	switch c.Transport {
	case Serial:
		switch {
		case c.Path == "" && c.VID == "":
			return nil, errors.New("printer: serial needs a path, or vid and pid")
		case c.Path != "" && c.VID != "":
			return nil, errors.New("printer: serial takes a path or vid/pid, not both")
		case c.VID != "":
			v, okv := usbID(c.VID)
			p, okp := usbID(c.PID)
			if !okv || !okp {
				return nil, fmt.Errorf("printer: vid %q and pid %q must each be 4 hex digits", c.VID, c.PID)
			}
			c.VID, c.PID = v, p
		}
		if c.Baud < 0 {
			return nil, fmt.Errorf("printer: baud %d is negative", c.Baud)
		}
	case USBLP:
		if c.Path == "" {
			return nil, errors.New("printer: usblp needs the device path, e.g. /dev/usb/lp0")
		}
	case TCP:
		a, err := TCPAddress(c.Address)
		if err != nil {
			return nil, err
		}
		c.Address = a
	default:
		return nil, fmt.Errorf("printer: transport %q is not serial, usblp or tcp", c.Transport)
	}
	stop, halt := context.WithCancel(context.Background())
	return &Printer{cfg: c, sem: make(chan struct{}, 1), stop: stop, halt: halt}, nil
}

// TCPAddress checks a network printer's address and gives it port 9100 when it has
// none.
func TCPAddress(a string) (string, error) {
	if a == "" {
		return "", errors.New("printer: tcp needs an address, host:port")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		// No port ("printer.lan", "[::1]", "::1"): the raw printing port.
		host, port = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"), DefaultPort
	}
	if p, perr := strconv.Atoi(port); perr != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("printer: address %q: port %q is not 1-65535", a, port)
	}
	if host == "" {
		return "", fmt.Errorf("printer: address %q has no host", a)
	}
	return net.JoinHostPort(host, port), nil
}

// Config is the configuration in use, defaults applied.
func (p *Printer) Config() Config { return p.cfg }

// Close ends the operation in progress, if any, waits for it, and makes every later
// call fail with ErrClosed.
func (p *Printer) Close() error {
	p.halt()
	p.sem <- struct{}{} // the operation in progress has let go of its connection
	<-p.sem
	return nil
}

// Status asks the printer for its paper and online status.
func (p *Printer) Status(ctx context.Context) (Status, error) {
	var st Status
	err := p.do(ctx, 0, func(c conn, deadline time.Time) error {
		var err error
		st, err = query(c, deadline)
		return err
	})
	return st, err
}

// Print asks for the status, then writes receipt (an ESC/POS job, as escpos.Receipt
// makes) if there is paper and the printer is online; otherwise it writes nothing and
// returns paper_out or offline.
func (p *Printer) Print(ctx context.Context, receipt []byte) error {
	if len(receipt) == 0 {
		return errors.New("printer: empty receipt")
	}
	if _, err := escpos.Parse(receipt); err != nil {
		return fmt.Errorf("printer: the receipt is not a clean ESC/POS job: %w", err)
	}
	return p.do(ctx, len(receipt), func(c conn, deadline time.Time) error {
		st, err := query(c, deadline)
		if err != nil {
			return err
		}
		switch {
		case st.PaperOut:
			return &Error{Reason: ReasonPaperOut, Detail: "load paper, then print again"}
		case st.Offline:
			return &Error{Reason: ReasonOffline, Detail: "the printer reports offline (cover open?)"}
		}
		if err := c.write(receipt, deadline); err != nil {
			return err
		}
		return c.finish(deadline)
	})
}

// do runs one operation on a fresh connection, within the timeout and the context,
// one at a time.
func (p *Printer) do(ctx context.Context, size int, op func(c conn, deadline time.Time) error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctxError(ctx, "waiting for the printer")
	case <-p.stop.Done():
		return ErrClosed
	}
	defer func() { <-p.sem }()
	if p.stop.Err() != nil {
		return ErrClosed
	}
	timeout := p.cfg.Timeout
	if p.cfg.Transport == Serial && size > 0 {
		// The receipt takes its time on the wire: 10 bits a byte, plus half again.
		timeout += time.Duration(size) * 15 * time.Second / time.Duration(p.cfg.Baud)
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	unhalt := context.AfterFunc(p.stop, cancel)
	defer unhalt()
	deadline, _ := opCtx.Deadline()

	c, err := p.dial(opCtx)
	if err != nil {
		if p.stop.Err() != nil {
			return ErrClosed
		}
		if ctx.Err() == context.Canceled {
			return ctx.Err()
		}
		return err
	}
	// Closing the connection is what ends a read or write blocked past the deadline.
	unclose := context.AfterFunc(opCtx, func() { c.Close() })
	err = op(c, deadline)
	unclose()
	c.Close()
	switch {
	case err == nil:
		return nil
	case p.stop.Err() != nil:
		return ErrClosed
	case ctx.Err() == context.Canceled:
		return ctx.Err()
	case opCtx.Err() != nil && Reason(err) == ReasonOffline:
		// The connection was closed by the deadline, not by the printer.
		return &Error{Reason: ReasonTimeout, Detail: fmt.Sprintf("no end of the operation within %s", timeout), Err: opCtx.Err()}
	}
	return err
}

func ctxError(ctx context.Context, doing string) error {
	if ctx.Err() == context.DeadlineExceeded {
		return &Error{Reason: ReasonTimeout, Detail: doing, Err: ctx.Err()}
	}
	return ctx.Err()
}

// conn is one connection to the printer.
type conn interface {
	// write writes b in full before deadline.
	write(b []byte, deadline time.Time) error
	// readByte reads one reply byte; errTimeout when none comes before deadline.
	readByte(deadline time.Time) (byte, error)
	// discardInput drops stale bytes (a late answer to an earlier request).
	discardInput() error
	// finish waits until what was written has left for the printer.
	finish(deadline time.Time) error
	io.Closer
}

var errTimeout = errors.New("no answer")

// query asks for the paper status (PRINTERS.md) and then the online status.
func query(c conn, deadline time.Time) (Status, error) {
	if err := c.discardInput(); err != nil {
		return Status{}, err
	}
	ask := func(req []byte, what string) (byte, error) {
		if err := c.write(req, deadline); err != nil {
			return 0, err
		}
		b, err := c.readByte(deadline)
		if errors.Is(err, errTimeout) {
			return 0, &Error{Reason: ReasonTimeout, Detail: fmt.Sprintf("no answer to %s (% X): is it an ESC/POS printer, at the right baud?", what, req)}
		}
		return b, err
	}
	b, err := ask(escpos.PaperStatusRequest, "the paper status request")
	if err != nil {
		return Status{}, err
	}
	paper, err := escpos.ParsePaperStatus(b)
	if err != nil {
		return Status{}, &Error{Reason: ReasonOffline, Detail: "garbled status answer (wrong baud?)", Err: err}
	}
	b, err = ask(escpos.PrinterStatusRequest, "the printer status request")
	if err != nil {
		return Status{}, err
	}
	ps, err := escpos.ParsePrinterStatus(b)
	if err != nil {
		return Status{}, &Error{Reason: ReasonOffline, Detail: "garbled status answer (wrong baud?)", Err: err}
	}
	return Status{PaperOut: paper.Out, PaperNearEnd: paper.NearEnd, Offline: ps.Offline}, nil
}

// lost is a connection that broke during an operation.
func lost(doing string, err error) error {
	return &Error{Reason: ReasonOffline, Detail: "connection lost while " + doing, Err: err}
}

func usbID(s string) (string, bool) {
	if len(s) != 4 {
		return "", false
	}
	out := []byte(s)
	for i, c := range out {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			out[i] = c + 'a' - 'A'
		default:
			return "", false
		}
	}
	return string(out), true
}
