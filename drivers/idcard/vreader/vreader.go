// Package vreader is a virtual GA 467 resident ID card reader behind a real kernel pty:
// the reader's side of CARDS.md, "Resident ID card reader", for the driver's tests, the
// demo and `ehc-agent sim idcard` (DESIGN.md, "Virtual devices: … Serial").
//
// The pty, its symlink, unplugging and replugging, and pacing at a baud rate are
// drivers/vscanner's: a Reader is a vscanner.Scanner that never scans, plus a responder
// that decodes the host's commands with ga467.Decoder and answers them as a reader with
// the placed card would. The host opens the slave path, or the symlink, exactly as it
// would open /dev/ttyUSB0.
//
// What it does:
//   - Find answers 9F while a card is placed (80 without one), select 90 (81), and read,
//     after a select, the card's record: 1,295 bytes with the 1,024-byte photo (41
//     without a card or a select). A command with a wrong CHK gets status 10; an unknown
//     command gets no answer.
//   - With Halt, a card read once stops answering, as the cards on many real readers
//     do: find answers 80 until the card is placed again.
//   - Faults, changeable at any time: answers split into pieces with pauses between,
//     junk before every answer (random bytes, partial preambles, frames with a LEN out
//     of bounds or a wrong CHK, none of which can pass for an answer), the first N read
//     answers of each placement with a wrong CHK, every read failing (41), or no answer
//     at all.
//   - Pull and Plug as with vscanner: the card stays on the reader across them, and the
//     reader forgets its selection, as a reader losing power does.
//
// One goroutine (the responder) runs from New to Close, besides vscanner's pty reader.
// Needs Linux ptys, as vscanner does.
package vreader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
	"github.com/ehc-agent/ehc-agent/protocol/ga467"
)

// Faults make the reader misbehave the ways CARDS.md says a host must survive.
type Faults struct {
	Split    bool // every answer written in 2 to 8 pieces, up to 20 ms apart
	Junk     bool // 1 to 3 pieces of junk before every answer
	BadCHK   int  // the first BadCHK read answers after each placement carry a wrong CHK
	ReadFail bool // every read answers 41 (read failed)
	// ReadStatus, if not 0, is the SW3 every read answers instead of the card: a status
	// CARDS.md names, or one it does not (a reader_error).
	ReadStatus byte
	Silent     bool // no answer to anything
}

// Config says how a Reader behaves.
type Config struct {
	// Link, if set, is a symlink kept pointing at the current slave (vscanner.Config.Link).
	Link string
	// Baud paces what the reader writes at 10 bits a byte; 0 writes as fast as the pty
	// takes it.
	Baud int
	// ForceNewName makes every Plug after the first get another /dev/pts name.
	ForceNewName bool
	// Halt: a card read once answers no more finds until it is placed again.
	Halt   bool
	Faults Faults
	// Seed drives the randomness of Split and Junk; runs with the same seed and the same
	// commands write the same bytes.
	Seed uint64
	// OnCommand, if set, is called from the responder with each command the host sent
	// ("find", "select", "read", or its CMD PARA in hex) and the status answered (0: no
	// answer). It must not block. For logs: it never sees card data.
	OnCommand func(cmd string, status byte)
}

// Stats counts what a Reader did since New.
type Stats struct {
	Commands    uint64 // commands decoded, bad ones included
	Finds       uint64
	FindsEmpty  uint64 // finds answered 80
	Selects     uint64
	Reads       uint64
	ReadsOK     uint64 // read answers with the card's record (a wrong CHK included)
	BadCommands uint64 // commands with a wrong CHK, answered 10
	Placements  uint64
	Removals    uint64
}

// Reader is a virtual ID card reader. Its methods are safe for concurrent use.
type Reader struct {
	cfg Config
	vs  *vscanner.Scanner

	ctx    context.Context // ends at Close: stops the responder and any write
	cancel context.CancelFunc
	done   chan struct{} // closed when the responder has returned

	mu       sync.Mutex
	in       []byte        // host bytes not yet decoded
	flush    bool          // a pull happened: the decoder's partial command is void
	wake     chan struct{} // cap 1: host bytes or a flush are waiting
	faults   Faults
	card     []byte // the read answer's data for the placed card; nil without a card
	selected bool
	halted   bool
	badLeft  int // read answers still to garble in this placement
	stats    Stats
	changed  chan struct{} // closed and replaced whenever stats change
	rng      *rand.Rand
}

// New creates the pty and starts answering; no card is placed.
func New(c Config) (*Reader, error) {
	if c.Baud < 0 {
		return nil, fmt.Errorf("vreader: baud %d is negative", c.Baud)
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reader{
		cfg: c, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		wake: make(chan struct{}, 1), faults: c.Faults, changed: make(chan struct{}),
		rng: rand.New(rand.NewPCG(c.Seed, 0x67a467)),
	}
	vs, err := vscanner.New(vscanner.Config{
		Link: c.Link, Baud: c.Baud, ForceNewName: c.ForceNewName,
		OnHost: r.onHost,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("vreader: %w", err)
	}
	r.vs = vs
	go r.respond()
	return r, nil
}

// onHost is vscanner's reader goroutine handing over what the host wrote: it must not
// block, so the bytes are queued for the responder.
func (r *Reader) onHost(p []byte) {
	r.mu.Lock()
	r.in = append(r.in, p...)
	r.mu.Unlock()
	r.poke()
}

func (r *Reader) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Path is the current slave path; empty while unplugged.
func (r *Reader) Path() string { return r.vs.Path() }

// Link is the configured symlink, empty if none.
func (r *Reader) Link() string { return r.vs.Link() }

// Place puts a card on the reader (replacing any card there): the next find answers 9F.
// A card whose fields do not fit the record is refused.
func (r *Reader) Place(c ga467.IDCard) error {
	data, err := c.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("vreader: %w", err)
	}
	r.place(data)
	return nil
}

// PlaceUnsupported puts a card of another kind on the reader: a resident ID card record
// with the card-type mark typ ('I' foreign permanent resident, 'J' HK/Macao/Taiwan
// residence card), which a host must refuse rather than misread.
func (r *Reader) PlaceUnsupported(c ga467.IDCard, typ rune) error {
	data, err := c.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("vreader: %w", err)
	}
	data[4+248], data[4+249] = byte(typ), byte(typ>>8)
	r.place(data)
	return nil
}

func (r *Reader) place(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.card, r.selected, r.halted = data, false, false
	r.badLeft = r.faults.BadCHK
	r.stats.Placements++
	r.notify()
}

// Remove lifts the card; removing none does nothing.
func (r *Reader) Remove() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card == nil {
		return
	}
	r.card, r.selected, r.halted = nil, false, false
	r.stats.Removals++
	r.notify()
}

// SetFaults changes the faults from the next command on. BadCHK counts from the next
// placement.
func (r *Reader) SetFaults(f Faults) {
	r.mu.Lock()
	r.faults = f
	r.mu.Unlock()
}

// Pull unplugs the reader: the host's port fails, bytes in flight are lost, and the
// reader forgets its selection.
func (r *Reader) Pull() error {
	err := r.vs.Pull()
	r.mu.Lock()
	r.in, r.flush = nil, true
	r.selected, r.halted = false, false
	r.mu.Unlock()
	r.poke()
	return err
}

// Plug plugs the reader in again, on a new pty.
func (r *Reader) Plug() error { return r.vs.Plug() }

// Close unplugs the reader for good and stops the responder.
func (r *Reader) Close() error {
	r.cancel() // ends a paced write in progress
	err := r.vs.Close()
	<-r.done
	return err
}

// Stats returns the counters.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Wait waits until cond holds for the counters.
func (r *Reader) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		r.mu.Lock()
		ok, ch, st := cond(r.stats), r.changed, r.stats
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("vreader: waiting (stats %+v): %w", st, ctx.Err())
		}
	}
}

// notify wakes Wait; r.mu is held.
func (r *Reader) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// respond decodes the host's commands and answers them, until Close.
func (r *Reader) respond() {
	defer close(r.done)
	var dec ga467.Decoder
	var evs []ga467.Event
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		in, flush := r.in, r.flush
		r.in, r.flush = nil, false
		r.mu.Unlock()
		if flush {
			dec.Reset(nil)
		}
		evs = dec.Feed(in, evs[:0])
		for _, e := range evs {
			switch {
			case e.Kind == ga467.EventFrame:
				if c, err := ga467.ParseCommand(e.Body); err == nil {
					r.command(c)
				}
			case e.Reason == ga467.ReasonBadChecksum:
				r.badCommand()
			}
		}
	}
}

// command answers one command.
func (r *Reader) command(c ga467.Command) {
	name := c.Name()
	if name == "" {
		name = fmt.Sprintf("%02X %02X", c.Cmd, c.Para)
	}
	r.mu.Lock()
	r.stats.Commands++
	f := r.faults
	a := ga467.Answer{}
	garble := false
	switch name {
	case "find":
		r.stats.Finds++
		if r.card != nil && !r.halted {
			a.SW3, a.Data = ga467.StatusCardFound, make([]byte, 4)
		} else {
			a.SW3 = ga467.StatusFindFailed
			r.stats.FindsEmpty++
		}
	case "select":
		r.stats.Selects++
		if r.card != nil && !r.halted {
			a.SW3, a.Data = ga467.StatusOK, make([]byte, 8)
			r.selected = true
		} else {
			a.SW3 = ga467.StatusSelectFailed
		}
	case "read":
		r.stats.Reads++
		switch {
		case r.card == nil || !r.selected || r.halted || f.ReadFail:
			a.SW3 = ga467.StatusReadFailed
		case f.ReadStatus != 0:
			a.SW3 = f.ReadStatus
		default:
			a.SW3, a.Data = ga467.StatusOK, r.card
			r.stats.ReadsOK++
			if r.badLeft > 0 {
				r.badLeft--
				garble = true
			} else if r.cfg.Halt {
				r.halted, r.selected = true, false
			}
		}
	}
	r.notify()
	r.mu.Unlock()

	if a.SW3 == 0 || f.Silent {
		r.hook(name, 0)
		return
	}
	b, err := a.AppendBinary(nil)
	if err != nil {
		panic(err) // a record that AppendBinary accepted always fits a frame
	}
	if garble {
		b[len(b)-1] ^= 0xFF
	}
	r.hook(name, a.SW3)
	r.send(b, f)
}

// badCommand answers a command that failed its CHK, as a reader does: status 10.
func (r *Reader) badCommand() {
	r.mu.Lock()
	r.stats.Commands++
	r.stats.BadCommands++
	f := r.faults
	r.notify()
	r.mu.Unlock()
	if f.Silent {
		r.hook("bad_checksum", 0)
		return
	}
	b, _ := ga467.Answer{SW3: ga467.StatusBadChecksum}.AppendBinary(nil)
	r.hook("bad_checksum", ga467.StatusBadChecksum)
	r.send(b, f)
}

func (r *Reader) hook(cmd string, status byte) {
	if r.cfg.OnCommand != nil {
		r.cfg.OnCommand(cmd, status)
	}
}

// send writes an answer with the faults' junk and splitting. A write to an unplugged pty
// fails, which is what a pulled cable does to an answer: it is lost.
func (r *Reader) send(b []byte, f Faults) {
	var out []byte
	if f.Junk {
		out = r.junk()
	}
	out = append(out, b...)
	cuts := []int{len(out)}
	if f.Split {
		for range 1 + r.rng.IntN(7) {
			cuts = append(cuts, 1+r.rng.IntN(len(out)-1))
		}
		slices.Sort(cuts)
		cuts = slices.Compact(cuts)
	}
	prev := 0
	for i, c := range cuts {
		if err := r.vs.SendRaw(r.ctx, out[prev:c]); err != nil {
			return
		}
		prev = c
		if i < len(cuts)-1 && !sleep(r.ctx, time.Duration(1+r.rng.IntN(20))*time.Millisecond) {
			return
		}
	}
}

// junk is what a noisy line puts before an answer. None of it can be taken for a frame:
// random bytes carry no 0xAA, a partial preamble is cut before its end, a false frame
// has a LEN out of bounds, or is whole with a wrong CHK.
func (r *Reader) junk() []byte {
	var j []byte
	for range 1 + r.rng.IntN(3) {
		switch r.rng.IntN(4) {
		case 0:
			for range 1 + r.rng.IntN(32) {
				if c := byte(r.rng.Uint32()); c != 0xAA {
					j = append(j, c)
				}
			}
		case 1:
			j = append(j, ga467.Preamble[:1+r.rng.IntN(ga467.PreambleLen-1)]...)
		case 2:
			j = append(j, ga467.Preamble+"\xFF\xFF"...)
		case 3:
			b, _ := ga467.Answer{SW3: ga467.StatusCardFound, Data: make([]byte, 4)}.AppendBinary(nil)
			b[len(b)-1] ^= 0x5A
			j = append(j, b...)
		}
	}
	return j
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ErrUnplugged is vscanner's: Pull on an unplugged reader.
var ErrUnplugged = vscanner.ErrUnplugged
