package vprinter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// Config is the printer's initial state.
type Config struct {
	// Link, in the pty mode, is a symlink kept pointing at the slave while the printer
	// exists, as udev keeps /dev/serial/by-id links.
	Link string

	PaperOut bool // no paper: status says so, and data is discarded
	NearEnd  bool // the paper near-end sensor is on
	Offline  bool // cover open: status says so, and data is discarded
	Mute     bool // status requests go unanswered: a hung printer
	// ReplyDelay holds each status answer back this long, as a slow printer (a
	// 9600-baud line, a busy mechanism) does; the bytes after the request wait too.
	ReplyDelay time.Duration

	// OnJob, if set, is called from the printer's goroutine with each finished job.
	OnJob func(Job)
}

// Job is one receipt, from the first printed byte after the previous job to its cut.
type Job struct {
	Bytes []byte           // as the host wrote them, less the status requests
	Doc   *escpos.Document // parsed, when Err is nil
	Err   error            // the job does not parse, or ended without its cut
}

// Limits that keep a long-running sim bounded; tests never come near them.
const (
	maxReceived = 1 << 20
	maxJobs     = 1024
)

// Printer is a virtual receipt printer. Its methods are safe for concurrent use.
type Printer struct {
	cfg Config

	mu                sync.Mutex // guards everything below it
	paperOut, nearEnd bool
	offline, mute     bool
	replyDelay        time.Duration
	quit              chan struct{} // closed by Close: ends a delayed answer's wait
	rx                []byte
	jobs              []Job
	jobCount          int
	discarded         int
	wake              chan struct{} // closed and replaced when jobs or rx change
	conn              net.Conn      // TCP: the connection being served
	closed            bool
	master, slave     *os.File // pty mode
	path              string
	ln                net.Listener // TCP mode
	done              chan struct{}
}

func newPrinter(c Config) *Printer {
	return &Printer{cfg: c, paperOut: c.PaperOut, nearEnd: c.NearEnd, offline: c.Offline, mute: c.Mute,
		replyDelay: c.ReplyDelay, wake: make(chan struct{}), done: make(chan struct{}), quit: make(chan struct{})}
}

// NewPTY creates a printer on a new pty; the host opens Path (or the link).
func NewPTY(c Config) (*Printer, error) {
	if c.Link != "" {
		// Rename would silently replace a regular file: only ever replace our own kind.
		if fi, err := os.Lstat(c.Link); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return nil, fmt.Errorf("vprinter: %s exists and is not a symlink", c.Link)
		}
	}
	m, s, err := vscanner.OpenRawPTY()
	if err != nil {
		return nil, fmt.Errorf("vprinter: open pty: %w", err)
	}
	p := newPrinter(c)
	p.master, p.slave, p.path = m, s, s.Name()
	if c.Link != "" {
		if err := vscanner.ReplaceSymlink(p.path, c.Link); err != nil {
			m.Close()
			s.Close()
			return nil, fmt.Errorf("vprinter: link: %w", err)
		}
	}
	go p.readPTY()
	return p, nil
}

// ListenTCP creates a network printer listening on addr ("127.0.0.1:0" picks a port).
func ListenTCP(addr string, c Config) (*Printer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("vprinter: %w", err)
	}
	p := newPrinter(c)
	p.ln = ln
	go p.accept()
	return p, nil
}

// Path is the pty slave, e.g. /dev/pts/5; empty in the TCP mode.
func (p *Printer) Path() string { return p.path }

// Link is the configured symlink, empty if none.
func (p *Printer) Link() string { return p.cfg.Link }

// Addr is the TCP address listened on; empty in the pty mode.
func (p *Printer) Addr() string {
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Close stops the printer: the link goes first, then the pty or the listener and the
// connection being served; it returns once the printer's goroutine has ended.
func (p *Printer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	conn := p.conn
	close(p.quit)
	p.mu.Unlock()
	var err error
	if p.cfg.Link != "" {
		if rerr := os.Remove(p.cfg.Link); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
	}
	if p.master != nil {
		p.master.Close()
	}
	if p.ln != nil {
		p.ln.Close()
	}
	if conn != nil {
		conn.Close()
	}
	<-p.done
	if p.slave != nil {
		p.slave.Close()
	}
	return err
}

// SetPaperOut loads (false) or takes away (true) the paper.
func (p *Printer) SetPaperOut(out bool) { p.set(func() { p.paperOut = out }) }

// SetNearEnd sets the paper near-end sensor.
func (p *Printer) SetNearEnd(near bool) { p.set(func() { p.nearEnd = near }) }

// SetOffline opens (true) or closes the cover.
func (p *Printer) SetOffline(off bool) { p.set(func() { p.offline = off }) }

// SetMute stops (true) or resumes answering status requests.
func (p *Printer) SetMute(mute bool) { p.set(func() { p.mute = mute }) }

// SetReplyDelay holds each later status answer back d (0: answer at once).
func (p *Printer) SetReplyDelay(d time.Duration) { p.set(func() { p.replyDelay = d }) }

func (p *Printer) set(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
}

// Received is a copy of what the host wrote (at most the last MiB).
func (p *Printer) Received() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.rx)
}

// Jobs are the finished jobs (at most the last 1,024).
func (p *Printer) Jobs() []Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Job(nil), p.jobs...)
}

// Discarded counts the bytes thrown away for want of paper or for being offline.
func (p *Printer) Discarded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.discarded
}

// WaitJobs waits until n jobs have finished since the printer started, and returns
// the jobs kept.
func (p *Printer) WaitJobs(ctx context.Context, n int) ([]Job, error) {
	for {
		p.mu.Lock()
		count, wake := p.jobCount, p.wake
		p.mu.Unlock()
		if count >= n {
			return p.Jobs(), nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return p.Jobs(), fmt.Errorf("vprinter: %d of %d jobs: %w", count, n, ctx.Err())
		}
	}
}

func (p *Printer) readPTY() {
	defer close(p.done)
	s := &stream{p: p, reply: func(b []byte) { p.master.Write(b) }}
	buf := make([]byte, 4096)
	for {
		n, err := p.master.Read(buf)
		if n > 0 {
			s.feed(buf[:n])
		}
		if err != nil {
			// Closed by Close. The printer keeps its own slave open, so a host closing
			// its side is no EIO here.
			return
		}
	}
}

func (p *Printer) accept() {
	defer close(p.done)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conn = c
		p.mu.Unlock()
		p.serve(c)
		p.mu.Lock()
		p.conn = nil
		p.mu.Unlock()
	}
}

// serve reads one connection to its end; the next waits in the listen backlog, as at
// a printer that serves one host at a time.
func (p *Printer) serve(c net.Conn) {
	defer c.Close()
	s := &stream{p: p, reply: func(b []byte) { c.Write(b) }}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			s.feed(buf[:n])
		}
		if err != nil {
			s.end(errors.New("vprinter: the connection ended without a cut"))
			return
		}
	}
}

// stream is the printer reading one byte stream.
type stream struct {
	p       *Printer
	reply   func([]byte)
	pending []byte // the start of a command not yet complete
	job     []byte
	broken  error // set when the paper ran out during the job
}

func (s *stream) feed(b []byte) {
	s.p.record(b)
	s.pending = append(s.pending, b...)
	off := 0
	for off < len(s.pending) {
		c, n, err := escpos.Next(s.pending[off:])
		if errors.Is(err, escpos.ErrIncomplete) {
			break
		}
		if err != nil {
			// A printer prints what it cannot read as characters; the job keeps the
			// byte, and its parse will fail.
			s.data(s.pending[off:off+1], false)
			off++
			continue
		}
		raw := s.pending[off : off+n]
		off += n
		switch c.Op {
		case escpos.OpRealtimeStatus:
			s.answerRealtime(c.Arg)
		case escpos.OpTransmitStatus:
			s.answerTransmit(c.Arg)
		default:
			s.data(raw, c.Op == escpos.OpCut)
		}
	}
	s.pending = s.pending[:copy(s.pending, s.pending[off:])]
	if len(s.pending) > escpos.MaxJob {
		s.data(s.pending, false)
		s.pending = s.pending[:0]
	}
}

// data prints raw, or throws it away without paper or online.
func (s *stream) data(raw []byte, cut bool) {
	s.p.mu.Lock()
	ok := !s.p.paperOut && !s.p.offline
	if !ok {
		s.p.discarded += len(raw)
	}
	s.p.mu.Unlock()
	if !ok {
		if len(s.job) > 0 {
			s.end(errors.New("vprinter: the paper ran out or the cover opened during the job"))
		}
		return
	}
	if len(s.job)+len(raw) > escpos.MaxJob {
		s.end(errors.New("vprinter: job over the size limit"))
	}
	s.job = append(s.job, raw...)
	if cut {
		s.end(nil)
	}
}

// end finishes the job in progress, if any.
func (s *stream) end(err error) {
	if len(s.job) == 0 {
		return
	}
	j := Job{Bytes: bytes.Clone(s.job), Err: err}
	s.job = s.job[:0]
	if j.Err == nil {
		j.Doc, j.Err = escpos.Parse(j.Bytes)
	}
	s.p.addJob(j)
}

// delay waits the reply delay, as a slow printer answers late; false when the printer
// was closed meanwhile.
func (s *stream) delay() bool {
	s.p.mu.Lock()
	d := s.p.replyDelay
	s.p.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.p.quit:
		return false
	}
}

func (s *stream) answerRealtime(n byte) {
	if !s.delay() {
		return
	}
	s.p.mu.Lock()
	mute, out, near, off := s.p.mute, s.p.paperOut, s.p.nearEnd, s.p.offline
	s.p.mu.Unlock()
	if mute {
		return
	}
	var b byte
	switch n {
	case 1:
		b = escpos.PrinterStatus{Offline: off || out}.Byte()
	case 2: // offline cause: bit 2 cover open, bit 5 stopped for paper end
		b = 0x12
		if off {
			b |= 0x04
		}
		if out {
			b |= 0x20
		}
	case 3: // error cause: none
		b = 0x12
	case 4:
		b = escpos.PaperStatus{NearEnd: near, Out: out}.Byte()
	}
	s.reply([]byte{b})
}

func (s *stream) answerTransmit(n byte) {
	if !s.delay() {
		return
	}
	s.p.mu.Lock()
	mute, out, near := s.p.mute, s.p.paperOut, s.p.nearEnd
	s.p.mu.Unlock()
	if mute {
		return
	}
	if n == 1 {
		s.reply([]byte{escpos.PaperStatus{NearEnd: near, Out: out}.SensorByte()})
		return
	}
	s.reply([]byte{0}) // drawer: closed
}

func (p *Printer) record(b []byte) {
	p.mu.Lock()
	p.rx = append(p.rx, b...)
	if len(p.rx) > maxReceived {
		p.rx = append(p.rx[:0], p.rx[len(p.rx)-maxReceived/2:]...)
	}
	p.notify()
	p.mu.Unlock()
}

func (p *Printer) addJob(j Job) {
	p.mu.Lock()
	p.jobs = append(p.jobs, j)
	if len(p.jobs) > maxJobs {
		p.jobs = append(p.jobs[:0], p.jobs[len(p.jobs)-maxJobs/2:]...)
	}
	p.jobCount++
	p.notify()
	p.mu.Unlock()
	if p.cfg.OnJob != nil {
		p.cfg.OnJob(j)
	}
}

// notify wakes the waiters; p.mu is held.
func (p *Printer) notify() {
	close(p.wake)
	p.wake = make(chan struct{})
}
