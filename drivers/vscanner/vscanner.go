package vscanner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Framings a Scanner speaks.
const (
	Line = "line"
	Idle = "idle"
	SSI  = "ssi"
)

// Errors. They wrap nothing: a caller tells them apart with errors.Is.
var (
	ErrUnplugged = errors.New("vscanner: unplugged")
	ErrClosed    = errors.New("vscanner: closed")
	ErrNoAck     = errors.New("vscanner: no ACK from the host")
)

// Config says how a Scanner behaves. The zero value is a line scanner ending scans with
// CR, unpaced, without a symlink.
type Config struct {
	// Link, if set, is a symlink kept pointing at the current slave: replaced atomically
	// on every Plug, removed on Pull and Close (as udev does for /dev/serial/by-id).
	Link string

	Framing string        // Line (default), Idle or SSI
	Suffix  []byte        // line: terminator; nil means CR, an empty non-nil slice none
	Prefix  []byte        // line and idle: sent before the AIM id
	AIM     string        // line and idle: AIM id sent before the payload, e.g. "]Q1"
	Gap     time.Duration // idle: silence kept after each scan; 0 means 100 ms
	Baud    int           // pacing, 10 bits per byte; 0 sends as fast as the pty takes it

	Symbology    byte          // SSI barcode type; 0 means 0x1C (QR)
	Continuation bool          // SSI: long scans as DECODE_DATA packets with the continuation bit, not multipacket
	AckTimeout   time.Duration // SSI: wait for the host's ACK; 0 means 500 ms
	Retries      int           // SSI: resends after a NAK or timeout; 0 means 3, negative none

	// Responses answer host commands: whenever the bytes the host writes contain When,
	// Reply is written back (a 7E 00 scanner's 02 00 00 01 00 33 31, a newland-2d 06).
	Responses []Response

	// ForceNewName makes every Plug after the first get a /dev/pts name other than the
	// one before it.
	ForceNewName bool

	// OnHost, if set, is called from the reader goroutine with each chunk the host
	// writes. It must not block and must not keep the slice.
	OnHost func(p []byte)
}

// Response is a canned answer to a host command.
type Response struct {
	When  []byte
	Reply []byte
}

// Stats counts what a Scanner did since New.
type Stats struct {
	Scans       uint64 // scans completely sent (SSI: and acknowledged)
	Packets     uint64 // SSI packets or segments written, retransmissions included
	Retransmits uint64 // SSI packets resent after a NAK or a timeout
	NAKs        uint64 // NAKs received from the host
	Timeouts    uint64 // SSI packets with no answer within AckTimeout
	Plugs       uint64
	Pulls       uint64
}

// Scanner is a virtual serial scanner. Its methods are safe for concurrent use; scans
// are sent one at a time.
type Scanner struct {
	cfg Config

	mu       sync.Mutex // guards the plugged pty and closed
	cur      *plugged
	prevPath string
	closed   bool

	sendMu sync.Mutex // one scan on the wire at a time; guards pace
	pace   pacer

	acks chan byte // opcodes of SSI packets from the host, for the sender waiting on an ACK

	rxMu   sync.Mutex // guards rx and rxWake
	rx     []byte
	rxWake chan struct{} // closed and replaced whenever rx grows

	scans, packets, retransmits, naks, timeouts, plugs, pulls atomic.Uint64
}

// plugged is one pty between Plug and Pull.
type plugged struct {
	master, slave *os.File
	path          string
	readerDone    chan struct{}
}

// maxReceived bounds what Received keeps, so that a long-running sim cannot grow
// without end; tests never come near it.
const maxReceived = 1 << 20

// New checks c, creates the first pty and plugs it.
func New(c Config) (*Scanner, error) {
	switch c.Framing {
	case "":
		c.Framing = Line
	case Line, Idle, SSI:
	default:
		return nil, fmt.Errorf("vscanner: framing %q is not line, idle or ssi", c.Framing)
	}
	if c.Suffix == nil {
		c.Suffix = []byte{'\r'}
	}
	if c.Gap <= 0 {
		c.Gap = 100 * time.Millisecond
	}
	if c.Baud < 0 {
		return nil, fmt.Errorf("vscanner: baud %d is negative", c.Baud)
	}
	if c.Symbology == 0 {
		c.Symbology = 0x1C
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 500 * time.Millisecond
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	for i, r := range c.Responses {
		if len(r.When) == 0 {
			return nil, fmt.Errorf("vscanner: response %d has an empty When", i)
		}
	}
	if c.Link != "" {
		// Rename would silently replace a regular file: only ever replace our own kind.
		if fi, err := os.Lstat(c.Link); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return nil, fmt.Errorf("vscanner: %s exists and is not a symlink", c.Link)
		}
	}
	s := &Scanner{
		cfg:    c,
		pace:   newPacer(c.Baud),
		acks:   make(chan byte, 16),
		rxWake: make(chan struct{}),
	}
	if err := s.Plug(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the current slave path, e.g. /dev/pts/5; empty while unplugged.
func (s *Scanner) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ""
	}
	return s.cur.path
}

// Link is the configured symlink, empty if none.
func (s *Scanner) Link() string { return s.cfg.Link }

// Plugged reports whether a pty is plugged.
func (s *Scanner) Plugged() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// Plug creates a new pty (set raw), points the symlink at it and starts reading what
// the host writes. Plugging a plugged scanner is an error.
func (s *Scanner) Plug() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.cur != nil {
		return errors.New("vscanner: already plugged")
	}
	p, err := s.newPTY()
	if err != nil {
		return err
	}
	if s.cfg.Link != "" {
		if err := ReplaceSymlink(p.path, s.cfg.Link); err != nil {
			p.master.Close()
			p.slave.Close()
			return fmt.Errorf("vscanner: link: %w", err)
		}
	}
	p.readerDone = make(chan struct{})
	go s.readHost(p)
	s.cur = p
	s.plugs.Add(1)
	return nil
}

// newPTY opens a pty. With ForceNewName, a pty that got the previous name is held open
// while a second one is made, so the second cannot get that name; then it is let go.
func (s *Scanner) newPTY() (*plugged, error) {
	p, err := openPlugged()
	if err != nil || !s.cfg.ForceNewName || p.path != s.prevPath {
		return p, err
	}
	defer func() {
		p.master.Close()
		p.slave.Close()
	}()
	return openPlugged()
}

func openPlugged() (*plugged, error) {
	m, sl, err := OpenRawPTY()
	if err != nil {
		return nil, fmt.Errorf("vscanner: open pty: %w", err)
	}
	return &plugged{master: m, slave: sl, path: sl.Name()}, nil
}

// ReplaceSymlink points link at target in one rename, so a host opening link at any
// moment sees either the old target or the new one, never no link at all. The other
// virtual devices (vprinter) link their ptys this way too.
func ReplaceSymlink(target, link string) error {
	var r [6]byte
	rand.Read(r[:])
	tmp := link + ".tmp-" + hex.EncodeToString(r[:])
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Pull unplugs the cable: the symlink goes first (so nothing can open a reused
// /dev/pts number through it), then the master is closed, which ends the host's blocked
// Read and discards whatever it had not read yet.
func (s *Scanner) Pull() error {
	s.mu.Lock()
	p := s.cur
	if p == nil {
		s.mu.Unlock()
		return ErrUnplugged
	}
	if s.cfg.Link != "" {
		if err := os.Remove(s.cfg.Link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.mu.Unlock()
			return fmt.Errorf("vscanner: unlink: %w", err)
		}
	}
	s.cur = nil
	s.prevPath = p.path
	s.mu.Unlock()

	err := p.master.Close()
	<-p.readerDone
	p.slave.Close()
	s.pulls.Add(1)
	return err
}

// Close pulls the cable if plugged and makes the scanner unusable.
func (s *Scanner) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.Pull(); err != nil && !errors.Is(err, ErrUnplugged) {
		return err
	}
	return nil
}

// Stats returns the counters.
func (s *Scanner) Stats() Stats {
	return Stats{
		Scans: s.scans.Load(), Packets: s.packets.Load(), Retransmits: s.retransmits.Load(),
		NAKs: s.naks.Load(), Timeouts: s.timeouts.Load(), Plugs: s.plugs.Load(), Pulls: s.pulls.Load(),
	}
}

// Received returns a copy of the bytes the host wrote since New or the last
// ResetReceived (at most the last MiB).
func (s *Scanner) Received() []byte {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	return bytes.Clone(s.rx)
}

// ResetReceived forgets what the host wrote so far.
func (s *Scanner) ResetReceived() {
	s.rxMu.Lock()
	s.rx = nil
	s.rxMu.Unlock()
}

// WaitReceived waits until the bytes the host wrote since the last ResetReceived
// contain want.
func (s *Scanner) WaitReceived(ctx context.Context, want []byte) error {
	for {
		s.rxMu.Lock()
		found := bytes.Contains(s.rx, want)
		wake := s.rxWake
		s.rxMu.Unlock()
		if found {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("vscanner: waiting for % x from the host: %w", want, ctx.Err())
		}
	}
}

// readHost records what the host writes to one plugged pty until Pull closes its master.
func (s *Scanner) readHost(p *plugged) {
	defer close(p.readerDone)
	buf := make([]byte, 4096)
	var window []byte // recent bytes, for Responses split across reads
	var ssiBuf []byte // unparsed host bytes in SSI framing
	maxWhen := 0
	for _, r := range s.cfg.Responses {
		maxWhen = max(maxWhen, len(r.When))
	}
	for {
		n, err := p.master.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			s.record(chunk)
			if s.cfg.OnHost != nil {
				s.cfg.OnHost(chunk)
			}
			if s.cfg.Framing == SSI {
				ssiBuf = s.parseHostSSI(append(ssiBuf, chunk...))
			}
			if maxWhen > 0 {
				window = s.respond(p, append(window, chunk...), maxWhen)
			}
		}
		if err != nil {
			// Closed by Pull. Any other error (EIO) means the pty is unusable too; the
			// scanner stays "plugged" until Pull so that the test decides what happens.
			return
		}
	}
}

func (s *Scanner) record(p []byte) {
	s.rxMu.Lock()
	s.rx = append(s.rx, p...)
	if len(s.rx) > maxReceived {
		s.rx = append(s.rx[:0], s.rx[len(s.rx)-maxReceived/2:]...)
	}
	close(s.rxWake)
	s.rxWake = make(chan struct{})
	s.rxMu.Unlock()
}

// respond writes the Reply of every Response whose When occurs in window, and returns
// the tail that a later read could still complete into a match.
func (s *Scanner) respond(p *plugged, window []byte, maxWhen int) []byte {
	for {
		at, end := -1, 0
		var reply []byte
		for _, r := range s.cfg.Responses {
			if i := bytes.Index(window, r.When); i >= 0 && (at < 0 || i < at) {
				at, end, reply = i, i+len(r.When), r.Reply
			}
		}
		if at < 0 {
			break
		}
		p.master.Write(reply) // a failure means the pty was pulled meanwhile
		window = window[end:]
	}
	if keep := maxWhen - 1; len(window) > keep {
		window = window[len(window)-keep:]
	}
	return bytes.Clone(window)
}

// write sends b to the current pty in one write.
func (s *Scanner) write(b []byte) error {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return ErrUnplugged
	}
	if _, err := p.master.Write(b); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return ErrUnplugged
		}
		return fmt.Errorf("vscanner: write: %w", err)
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unread is how many bytes sent wait in the slave's input queue for the host to read
// them. The kernel moves bytes from a master write to that queue asynchronously, so a
// zero right after a write may be early by a moment: WaitRead allows for that.
func (s *Scanner) Unread() (int, error) {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return 0, ErrUnplugged
	}
	return inputQueued(p.slave)
}

// WaitRead waits until the host has read everything sent: the input queue is seen empty
// three times in a row, 2 ms apart. Tests use it to pull the cable only after the host
// has read a partial scan.
func (s *Scanner) WaitRead(ctx context.Context) error {
	for empty := 0; empty < 3; {
		n, err := s.Unread()
		if err != nil {
			return err
		}
		if n == 0 {
			empty++
		} else {
			empty = 0
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
