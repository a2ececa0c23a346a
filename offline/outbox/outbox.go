// Package outbox is the durable store-and-forward queue of identity events
// (PLATFORM.md, "Delivery rules" and "Identity event").
//
// Durability: Append returns only after the bbolt transaction that holds the event has
// been committed, and bbolt commits with fsync. So an event is durable exactly when
// Append returns nil, and the agent tells nobody (the kiosk included) of an event before
// that. A crash before the commit leaves nothing of the event and no seq consumed; a
// crash after it leaves the event pending, to be delivered after restart.
//
// Seq: the next seq is stored in the same transaction as the event, so seq is gap-free
// and never repeats across restarts. The platform deduplicates by event_id, so a batch
// that was delivered but whose answer was lost is simply sent again.
//
// At rest every event is sealed whole (SM4-GCM, offline/seal) with its seq as additional
// data, so a record cannot be moved to another seq unnoticed and the file holds no
// plaintext personal data. The photo never enters the outbox (event.ForPlatform).
package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/offline/reserve"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

var (
	bucketRoot      = []byte("outbox")
	bucketMeta      = []byte("meta")
	bucketPending   = []byte("pending")
	bucketDelivered = []byte("delivered")
	bucketDead      = []byte("dead")
	keySeq          = []byte("seq")
	keyCounts       = []byte("counts") // pending ‖ dead, 8 bytes each
)

// putCounts records the queue's counts in the transaction that changes them, so that
// Open need not walk the buckets (which would page the whole file into memory).
func putCounts(root *bbolt.Bucket, pending, dead int) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:8], uint64(pending))
	binary.BigEndian.PutUint64(v[8:], uint64(dead))
	return root.Bucket(bucketMeta).Put(keyCounts, v[:])
}

// ErrFull is returned by Append when the outbox holds MaxPending undelivered events.
// The event is still committed (nothing is dropped silently); the error tells the caller
// to raise outbox_full so the kiosk can fall back.
var ErrFull = errors.New("outbox_full")

// FullError is how AppendAll returns ErrFull (errors.Is matches it): From is the first
// seq over the cap. In a group commit that crosses the cap, the events before From
// were within it, and only those from From on say outbox_full.
type FullError struct{ From uint64 }

func (e *FullError) Error() string        { return fmt.Sprintf("outbox_full from seq %d", e.From) }
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Options bound the outbox.
type Options struct {
	MaxPending int           // the cap that raises outbox_full; 0 = 100,000
	Retention  time.Duration // delivered events are kept this long, then compacted; 0 = 24h
	// InCommit, if set, runs inside every transaction that commits events, so that state
	// which must be durable together with them shares their fsync instead of paying its
	// own (the agent writes the replay cache's accepted codes here). An error aborts the
	// commit.
	InCommit func(tx *bbolt.Tx) error
	// Reserve, if set, is disk space kept aside for the database (offline/reserve).
	// A write that fails for lack of space releases it and runs once more, so events
	// are still committed on a full disk while the status asks for space.
	Reserve *reserve.File
	// Floor, if set, is kept at or above every committed seq (seqfloor.go).
	Floor *Floor
}

// Record is one pending event as it will be sent.
type Record struct {
	Seq     uint64
	EventID string
	JSON    []byte // the event, ready for the platform
}

// Stats describe the queue.
type Stats struct {
	LastSeq   uint64    `json:"last_seq"`
	Pending   int       `json:"pending"`
	Dead      int       `json:"dead"`
	OldestSeq uint64    `json:"oldest_seq,omitempty"` // 0 when nothing is pending
	Oldest    time.Time `json:"oldest,omitzero"`      // occurred_at of the oldest pending event
	Full      bool      `json:"outbox_full"`
}

// Outbox is the queue. It is safe for concurrent use.
type Outbox struct {
	db   *bbolt.DB
	ring *seal.Ring
	o    Options

	mu      sync.Mutex
	pending int
	dead    int
	lastSeq uint64
}

// Open prepares the outbox's buckets in db and counts what is queued.
func Open(db *bbolt.DB, ring *seal.Ring, o Options) (*Outbox, error) {
	if o.MaxPending == 0 {
		o.MaxPending = 100_000
	}
	if o.Retention == 0 {
		o.Retention = 24 * time.Hour
	}
	ob := &Outbox{db: db, ring: ring, o: o}
	err := ob.update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketMeta, bucketPending, bucketDelivered, bucketDead} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if v := root.Bucket(bucketMeta).Get(keySeq); len(v) == 8 {
			ob.lastSeq = binary.BigEndian.Uint64(v)
		} else {
			// A database never opened before. With a floor above 0 beside it, seqs were
			// handed out from a database that is gone (a state reset, a file moved away
			// by hand, a reset interrupted before it finished): continue above them,
			// never at 1 again. keySeq is written either way, so that this is decided
			// once, on the database's first open.
			ob.lastSeq = o.Floor.Value()
			if err := root.Bucket(bucketMeta).Put(keySeq, seqKey(ob.lastSeq)); err != nil {
				return err
			}
		}
		if v := root.Bucket(bucketMeta).Get(keyCounts); len(v) == 16 {
			ob.pending = int(binary.BigEndian.Uint64(v[:8]))
			ob.dead = int(binary.BigEndian.Uint64(v[8:]))
			return nil
		}
		ob.pending = root.Bucket(bucketPending).Stats().KeyN
		ob.dead = root.Bucket(bucketDead).Stats().KeyN
		return putCounts(root, ob.pending, ob.dead)
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: open: %w", err)
	}
	o.Floor.ensure(ob.lastSeq)
	return ob, nil
}

// update runs fn in a write transaction. On a full disk the reserve's space is given
// back to the filesystem and fn runs once more, in a new transaction (bbolt rolled the
// failed one back), so fn must set anything it counts from scratch. Every write goes
// through here, deliveries and compaction included: on a full disk they need new pages
// too, and a queue that cannot deliver can never shrink.
func (ob *Outbox) update(fn func(*bbolt.Tx) error) error {
	err := ob.db.Update(fn)
	if err != nil && reserve.NoSpace(err) && ob.o.Reserve != nil && ob.o.Reserve.Release() {
		err = ob.db.Update(fn)
	}
	return err
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// Append assigns e the next seq and commits it. On return with a nil error (or ErrFull)
// the event is durable.
func (ob *Outbox) Append(e *event.Event) error {
	return ob.AppendAll([]*event.Event{e})
}

// AppendAll assigns es consecutive seqs, in order, and commits them in one transaction:
// group commit, one fsync for events that arrived together. On return with a nil error
// (or ErrFull: committed, but the queue is over its cap) every event is durable; on any
// other error none is, and none keeps a seq.
func (ob *Outbox) AppendAll(es []*event.Event) error {
	if len(es) == 0 {
		return nil
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	recs := make([][]byte, len(es))
	unassign := func() {
		for _, e := range es {
			e.Seq = 0
		}
	}
	for i, e := range es {
		seq := ob.lastSeq + 1 + uint64(i)
		e.Seq = seq
		js, err := json.Marshal(e.ForPlatform())
		if err != nil {
			unassign()
			return fmt.Errorf("outbox: encode event: %w", err)
		}
		if recs[i], err = ob.ring.Seal(make([]byte, 0, len(js)+64), js, seqKey(seq)); err != nil {
			unassign()
			return err
		}
	}
	last := ob.lastSeq + uint64(len(es))
	ob.o.Floor.ensure(last) // before the commit: the floor is never below a committed seq
	err := ob.update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		p := root.Bucket(bucketPending)
		p.FillPercent = 1.0 // keys only ever grow: full pages halve the file
		for i, rec := range recs {
			if err := p.Put(seqKey(ob.lastSeq+1+uint64(i)), rec); err != nil {
				return err
			}
		}
		if err := putCounts(root, ob.pending+len(es), ob.dead); err != nil {
			return err
		}
		if err := root.Bucket(bucketMeta).Put(keySeq, seqKey(last)); err != nil {
			return err
		}
		if ob.o.InCommit != nil {
			return ob.o.InCommit(tx)
		}
		return nil
	})
	if err != nil {
		unassign()
		return fmt.Errorf("outbox: commit seq %d..%d: %w", ob.lastSeq+1, last, err)
	}
	first := ob.lastSeq + 1
	ob.lastSeq = last
	ob.pending += len(es)
	if over := ob.pending - ob.o.MaxPending; over > 0 {
		return &FullError{From: max(first, last-uint64(over)+1)}
	}
	return nil
}

// Pending returns up to max pending events in seq order, stopping before maxBytes of
// event JSON would be exceeded (but always returning at least one event if any).
func (ob *Outbox) Pending(max, maxBytes int) ([]Record, error) {
	var out []Record
	size := 0
	err := ob.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRoot).Bucket(bucketPending).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			js, err := ob.ring.Open(nil, v, k)
			if err != nil {
				return fmt.Errorf("outbox: seq %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if len(out) > 0 && size+len(js) > maxBytes {
				break
			}
			var id struct {
				EventID string `json:"event_id"`
			}
			_ = json.Unmarshal(js, &id)
			out = append(out, Record{Seq: binary.BigEndian.Uint64(k), EventID: id.EventID, JSON: js})
			size += len(js)
		}
		return nil
	})
	return out, err
}

// Delivered marks events as delivered (accepted or duplicate at the platform). They are
// kept, sealed, for the retention period and then compacted away.
func (ob *Outbox) Delivered(seqs []uint64, at time.Time) error {
	return ob.move(seqs, bucketDelivered, func([]byte) []byte {
		var t [8]byte
		binary.BigEndian.PutUint64(t[:], uint64(at.UnixNano()))
		return t[:]
	})
}

// DeadLetter moves an event the platform rejected out of the queue, with its reason.
func (ob *Outbox) DeadLetter(seq uint64, reason string) error {
	return ob.move([]uint64{seq}, bucketDead, func(rec []byte) []byte {
		v := make([]byte, 0, 1+len(reason)+len(rec))
		v = append(v, byte(len(reason)))
		v = append(v, reason...)
		return append(v, rec...)
	})
}

func (ob *Outbox) move(seqs []uint64, to []byte, value func(rec []byte) []byte) error {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	moved := 0
	err := ob.update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		p, dst := root.Bucket(bucketPending), root.Bucket(to)
		dst.FillPercent = 1.0
		moved = 0
		for _, s := range seqs {
			k := seqKey(s)
			rec := p.Get(k)
			if rec == nil {
				continue // already moved: an answer processed twice changes nothing
			}
			if err := dst.Put(k, value(rec)); err != nil {
				return err
			}
			if err := p.Delete(k); err != nil {
				return err
			}
			moved++
		}
		dead := ob.dead
		if string(to) == string(bucketDead) {
			dead += moved
		}
		return putCounts(root, ob.pending-moved, dead)
	})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	ob.pending -= moved
	if string(to) == string(bucketDead) {
		ob.dead += moved
	}
	return nil
}

// Compact removes delivered events older than the retention; it returns how many.
func (ob *Outbox) Compact(now time.Time) (int, error) {
	cut := uint64(now.Add(-ob.o.Retention).UnixNano())
	n := 0
	err := ob.update(func(tx *bbolt.Tx) error {
		n = 0
		c := tx.Bucket(bucketRoot).Bucket(bucketDelivered).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) >= 8 && binary.BigEndian.Uint64(v) < cut {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// Stats describes the queue now.
func (ob *Outbox) Stats() Stats {
	ob.mu.Lock()
	s := Stats{LastSeq: ob.lastSeq, Pending: ob.pending, Dead: ob.dead, Full: ob.pending > ob.o.MaxPending}
	ob.mu.Unlock()
	if recs, err := ob.Pending(1, 1); err == nil && len(recs) == 1 {
		s.OldestSeq = recs[0].Seq
		var t struct {
			At time.Time `json:"occurred_at"`
		}
		if json.Unmarshal(recs[0].JSON, &t) == nil {
			s.Oldest = t.At
		}
	}
	return s
}
