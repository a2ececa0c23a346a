package vcard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultVPCD is where Debian's vpcd listens for its first reader ("Virtual PCD 00 00");
// the second is on the next port.
const DefaultVPCD = "127.0.0.1:35963"

// Control messages of the vpcd protocol: one byte, no length beyond the 2-byte header.
const (
	ctrlOff   = 0x00
	ctrlOn    = 0x01
	ctrlReset = 0x02
	ctrlATR   = 0x04 // the only one answered: with the ATR
)

// ErrRemovedByFault ends a session whose card a fault pulled.
var ErrRemovedByFault = errors.New("vcard: removed by a fault")

// Inserted is a card in a vpcd reader. One goroutine, owned by it, answers vpcd until
// Remove, until vpcd closes the connection (pcscd stopped) or until a fault pulls the
// card; Done is closed when it has returned.
type Inserted struct {
	card *Card
	conn net.Conn

	closing chan struct{} // closed by Remove: a slow answer stops waiting
	done    chan struct{}
	once    sync.Once
	err     error // why the session ended; read after done

	mu       sync.Mutex
	apdus    int          // C-APDUs since insertion (faults count them)
	first    time.Time    // when the first C-APDU arrived
	last     time.Time    // when the answer to the latest C-APDU was sent
	firedSet map[int]bool // faults (by index) that fired in this insertion
}

// Insert connects card to the vpcd reader listening at addr: the card is inserted, and
// pcscd notices at its next poll (about 0.4 s). Each insertion starts the fault count anew.
func Insert(ctx context.Context, addr string, card *Card) (*Inserted, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("vcard: insert into vpcd %s: %w", addr, err)
	}
	card.Reset()
	s := &Inserted{card: card, conn: conn, closing: make(chan struct{}), done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Remove pulls the card out and waits until its goroutine has returned.
func (s *Inserted) Remove() {
	s.once.Do(func() {
		close(s.closing)
		s.conn.Close()
	})
	<-s.done
}

// Done is closed when the card is out of the reader, for whatever reason.
func (s *Inserted) Done() <-chan struct{} { return s.done }

// Err says why the card is out: nil after Remove, io.EOF when vpcd closed the
// connection, ErrRemovedByFault, or a network error. Valid once Done is closed.
func (s *Inserted) Err() error {
	<-s.done
	return s.err
}

// FirstCommand is when the first C-APDU of this insertion arrived (zero if none): the
// moment a reader's host began to talk to the card.
func (s *Inserted) FirstCommand() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// LastAnswer is when the answer to the latest C-APDU of this insertion was written to
// vpcd (zero if none): with FirstCommand, it brackets the APDU exchange of a read.
func (s *Inserted) LastAnswer() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Commands counts the C-APDUs of this insertion.
func (s *Inserted) Commands() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apdus
}

func (s *Inserted) serve() {
	defer close(s.done)
	err := s.loop()
	select {
	case <-s.closing:
		err = nil // Remove: whatever the read said, the card was pulled on purpose
	default:
		s.conn.Close()
	}
	s.err = err
}

func (s *Inserted) loop() error {
	var head [2]byte
	buf := make([]byte, 0, 512)
	for {
		// vpcd writes the length and the message in two sends, the second held by
		// Nagle until the first is ACKed: with delayed ACKs every C-APDU would wait
		// ~40 ms. Linux leaves quick-ACK mode on its own, so it is set again after
		// every read (DESIGN.md).
		if _, err := io.ReadFull(s.conn, head[:]); err != nil {
			return err
		}
		quickAck(s.conn)
		n := int(binary.BigEndian.Uint16(head[:]))
		buf = buf[:n]
		if _, err := io.ReadFull(s.conn, buf); err != nil {
			return err
		}
		quickAck(s.conn)
		var answer []byte
		switch {
		case n == 1:
			switch buf[0] {
			case ctrlOn, ctrlReset:
				s.card.Reset()
			case ctrlATR:
				answer = s.card.ATR()
			}
			if answer == nil {
				continue
			}
		case n == 0:
			continue
		default:
			var err error
			if answer, err = s.command(buf); err != nil {
				return err
			}
		}
		msg := make([]byte, 2+len(answer))
		binary.BigEndian.PutUint16(msg, uint16(len(answer)))
		copy(msg[2:], answer)
		if _, err := s.conn.Write(msg); err != nil {
			return err
		}
		if n > 1 {
			s.mu.Lock()
			s.last = time.Now()
			s.mu.Unlock()
		}
	}
}

// command answers one C-APDU, through the profile's delay and faults.
func (s *Inserted) command(capdu []byte) ([]byte, error) {
	s.mu.Lock()
	s.apdus++
	n := s.apdus
	if n == 1 {
		s.first = time.Now()
	}
	s.mu.Unlock()
	f := s.fault(n, capdu)
	delay := s.card.delay
	if f != nil && f.Action == FaultSlow {
		delay += f.Delay
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
	answer := s.card.Process(capdu)
	if f == nil {
		return answer, nil
	}
	switch f.Action {
	case FaultRemove:
		return nil, ErrRemovedByFault
	case FaultGarbage, FaultSW:
		return bytes.Clone(f.answer), nil
	case FaultShort:
		return answer[:1], nil
	}
	return answer, nil
}

// fault returns the fault for the n-th command of this insertion, if any.
func (s *Inserted) fault(n int, capdu []byte) *Fault {
	for i := range s.card.faults {
		f := &s.card.faults[i]
		if f.At != 0 && f.At != n || !bytes.HasPrefix(capdu, f.match) {
			continue
		}
		if f.At == 0 && !f.Repeat && s.fired(i) {
			continue
		}
		return f
	}
	return nil
}

// fired records that fault i fired in this insertion and says whether it had before.
func (s *Inserted) fired(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firedSet == nil {
		s.firedSet = map[int]bool{}
	}
	was := s.firedSet[i]
	s.firedSet[i] = true
	return was
}
