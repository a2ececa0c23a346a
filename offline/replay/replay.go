// Package replay is the replay cache of CODES.md, Verification step 10: a code — a
// (holder public key, generated-at, sequence) triple — is accepted once; the same code
// read again by the same device within the duplicate window is a double read (no second
// event); any other second read is `replayed`. Entries live until the code's expires-at
// plus skew, after which step 8 rejects the code anyway, so they can be forgotten.
//
// Durability trade-off (write-behind): lookups and inserts work on an in-memory map,
// and a background flusher writes the changes to the bucket "replay" of the caller's
// bbolt database every FlushInterval (default 200 ms), in one transaction — one fsync
// per interval, none in the verification path. A clean Close flushes everything, so a
// restart keeps every accepted code. A crash or power loss can lose the codes accepted
// in the last interval: such a code could be accepted once more after the restart, and
// only until it expires (at most an hour). Two ways close that window:
//   - WriteTx writes what is pending inside a transaction the caller commits anyway.
//     The agent calls it in the outbox's commit of each event, so an accepted code is
//     on disk exactly when its event is, with no fsync of its own; the flusher then
//     finds nothing to write (and no second transaction competes for bbolt's single
//     writer lock while an event commits).
//   - SyncWrites makes each acceptance wait for its own fsync (bbolt's Batch coalesces
//     concurrent ones) — a few milliseconds per accepted code on typical storage.
//
// Guarantees:
//   - Admit is atomic: of concurrent Admits of one key exactly one gets Fresh.
//   - The cache survives Close and reopen of the database; entries already expired
//     when it is opened are deleted then.
//   - Memory is bounded by the accept rate times the longest code lifetime (validity ≤
//     3600 s plus skew): each Admit also sweeps a few entries, and Purge sweeps all.
//   - A database failure never fails an Admit: the answer comes from memory and the
//     write is retried at the next flush; Err reports the last failure.
package replay

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// Key identifies a code: SM3 of the holder's 33-byte compressed public key, then
// generated-at and sequence, big-endian.
type Key [40]byte

// NewKey builds the Key of a code.
func NewKey(holderKeySM3 *[32]byte, generatedAt, sequence uint32) Key {
	var k Key
	copy(k[:32], holderKeySM3[:])
	binary.BigEndian.PutUint32(k[32:], generatedAt)
	binary.BigEndian.PutUint32(k[36:], sequence)
	return k
}

// Outcome is the answer of Admit.
type Outcome uint8

const (
	Fresh      Outcome = iota // first acceptance: emit an event
	DoubleRead                // the same code again from the same device within the window: no event
	Replayed                  // accepted before: reason `replayed`
)

func (o Outcome) String() string {
	switch o {
	case Fresh:
		return "fresh"
	case DoubleRead:
		return "double_read"
	case Replayed:
		return "replayed"
	}
	return "outcome?"
}

// Defaults.
const (
	DefaultDuplicateWindow = 3 * time.Second
	DefaultFlushInterval   = 200 * time.Millisecond
	sweepPerAdmit          = 4 // expired entries looked at per Admit
)

// Options configure a Cache. The zero value is the defaults.
type Options struct {
	// FlushInterval is how often accepted codes are written to the database
	// (write-behind). 0 means DefaultFlushInterval.
	FlushInterval time.Duration
	// SyncWrites makes Admit return Fresh only once the entry is on disk.
	SyncWrites bool
}

// Read is one accepted-so-far read of a code, as Admit gets it.
type Read struct {
	Key Key
	// Fingerprint tells the exact code bytes apart, so that only a true re-read of
	// the same code counts as a double read (the verifier uses the holder
	// signature's r, unique per signing).
	Fingerprint [32]byte
	Device      string
	// Expires is when the entry may be forgotten: once step 8 rejects the code
	// anyway (the verifier uses expires-at + skew + 1 s, as step 8 has whole-second
	// resolution).
	Expires time.Time
}

type entry struct {
	expires int64 // Unix nanoseconds
	seen    int64 // Unix nanoseconds of the last read by device (double-read window)
	fp      [32]byte
	device  string
}

var bucketName = []byte("replay")

// Cache is the replay cache. Its methods are safe for concurrent use.
type Cache struct {
	db   *bbolt.DB
	opts Options

	mu      sync.Mutex
	m       map[Key]entry
	pending map[Key]uint64 // keys whose disk state lags memory -> when marked (gen)
	gen     uint64         // counts markings, so a commit clears only what it wrote
	lastErr error

	stop   chan struct{}
	done   chan struct{}
	dirty  chan struct{} // one token: entries are pending
	closed bool
}

// Open returns the cache kept in db's bucket "replay" (db nil: memory only), loading
// the entries not expired at now and deleting the others.
func Open(db *bbolt.DB, opts Options, now time.Time) (*Cache, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	c := &Cache{db: db, opts: opts, m: make(map[Key]entry), pending: make(map[Key]uint64)}
	if db == nil {
		return c, nil
	}
	n := now.UnixNano()
	err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
		var stale [][]byte
		err = b.ForEach(func(k, v []byte) error {
			e, ok := decode(v)
			if len(k) != len(Key{}) || !ok || e.expires < n {
				stale = append(stale, k) // keys are valid until the transaction ends
				return nil
			}
			c.m[Key(k)] = e
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(errors.New("replay: open"), err)
	}
	c.stop, c.done, c.dirty = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	go c.flusher()
	return c, nil
}

// Admit records the read r at now and says what it is. window is the duplicate-read
// window; 0 or less means none (every second read is Replayed).
func (c *Cache) Admit(r *Read, window time.Duration, now time.Time) Outcome {
	n := now.UnixNano()
	c.mu.Lock()
	e, ok := c.m[r.Key]
	if ok && e.expires >= n {
		out := Replayed
		if window > 0 && e.device == r.Device && e.fp == r.Fingerprint && n-e.seen < int64(window) {
			// Sliding: a scanner in continuous mode re-reads a code held in front of it
			// every few hundred milliseconds; each read keeps it a double read.
			e.seen = n
			c.m[r.Key] = e
			out = DoubleRead
		}
		c.mu.Unlock()
		return out
	}
	e = entry{expires: r.Expires.UnixNano(), seen: n, fp: r.Fingerprint, device: r.Device}
	c.m[r.Key] = e
	c.sweepLocked(n, sweepPerAdmit)
	syncWrite := c.db != nil && c.opts.SyncWrites
	if c.db != nil && !syncWrite {
		c.markPendingLocked(r.Key)
	}
	c.mu.Unlock()

	if syncWrite {
		k, v := r.Key, encode(&e)
		err := c.db.Batch(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketName).Put(k[:], v)
		})
		if err != nil {
			c.mu.Lock()
			c.lastErr = err
			c.markPendingLocked(r.Key) // the flusher retries
			c.mu.Unlock()
		}
	}
	return Fresh
}

// sweepLocked deletes expired entries among (at most) limit entries; limit < 0 means all.
// Map iteration starts at a random place, so repeated small sweeps cover the map.
func (c *Cache) sweepLocked(n int64, limit int) int {
	removed := 0
	for k, e := range c.m {
		if limit == 0 {
			break
		}
		limit--
		if e.expires < n {
			delete(c.m, k)
			if c.db != nil {
				c.markPendingLocked(k)
			}
			removed++
		}
	}
	return removed
}

// Purge forgets every entry expired at now and returns how many. The owner calls it
// periodically (say every minute); Admit's own sweeping keeps memory bounded anyway.
func (c *Cache) Purge(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sweepLocked(now.UnixNano(), -1)
}

// Len returns the number of entries in memory, expired ones not yet swept included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Err returns the last database error, or nil.
func (c *Cache) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Flush writes every pending change to the database now, in a transaction of its own.
func (c *Cache) Flush() error {
	if c.db == nil {
		return nil
	}
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	err := c.db.Update(c.WriteTx)
	if err != nil {
		c.mu.Lock()
		c.lastErr = err
		c.markDirty() // what was not committed is still pending: retry
		c.mu.Unlock()
	}
	return err
}

// WriteTx writes every pending change in tx, a writable transaction of the cache's
// database that the caller commits (it does nothing for another database's). The
// changes leave the pending set only when tx commits; if it rolls back they stay
// pending for the next flush. Being inside tx, the snapshot of what is pending is
// taken under bbolt's writer lock, so writes land in the order they were taken.
func (c *Cache) WriteTx(tx *bbolt.Tx) error {
	if c.db == nil || tx.DB() != c.db {
		return nil
	}
	type op struct {
		k   Key
		gen uint64
		v   []byte // nil: delete
	}
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return nil
	}
	ops := make([]op, 0, len(c.pending))
	var slab []byte // all values of this write in one allocation
	for k, gen := range c.pending {
		o := op{k: k, gen: gen}
		if e, ok := c.m[k]; ok {
			if cap(slab)-len(slab) < valueLen(&e) {
				slab = make([]byte, 0, max(min(64<<10, 128*len(c.pending)), valueLen(&e)))
			}
			start := len(slab)
			slab = appendValue(slab, &e)
			o.v = slab[start:len(slab):len(slab)]
		}
		ops = append(ops, o)
	}
	c.mu.Unlock()

	b := tx.Bucket(bucketName)
	for _, o := range ops {
		var err error
		if o.v == nil {
			err = b.Delete(o.k[:])
		} else {
			err = b.Put(o.k[:], o.v)
		}
		if err != nil {
			return err
		}
	}
	tx.OnCommit(func() {
		c.mu.Lock()
		for _, o := range ops {
			if c.pending[o.k] == o.gen { // not changed again since it was written
				delete(c.pending, o.k)
			}
		}
		c.mu.Unlock()
	})
	return nil
}

// markPendingLocked records that k's disk state lags memory and wakes the flusher.
func (c *Cache) markPendingLocked(k Key) {
	c.gen++
	c.pending[k] = c.gen
	c.markDirty()
}

// markDirty wakes the flusher; it never blocks.
func (c *Cache) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// flusher writes pending entries at most every FlushInterval, and sleeps without a
// timer while nothing is pending, so an idle agent is never woken by it.
func (c *Cache) flusher() {
	defer close(c.done)
	t := time.NewTimer(c.opts.FlushInterval)
	t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.dirty:
		}
		t.Reset(c.opts.FlushInterval)
		select {
		case <-c.stop:
			t.Stop()
			return // Close flushes
		case <-t.C:
		}
		_ = c.Flush() // a failure is recorded in lastErr and marks the cache dirty again
	}
}

// Close stops the flusher and writes what is pending. It does not close the database,
// which the caller owns; call it before closing that.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed || c.db == nil {
		c.closed = true
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	return c.Flush()
}

const valueVersion = 1

// Value layout: version (1) ‖ expires (8, Unix ns) ‖ seen (8, Unix ns) ‖
// fingerprint (32) ‖ device.
func valueLen(e *entry) int { return 1 + 8 + 8 + 32 + len(e.device) }

func appendValue(dst []byte, e *entry) []byte {
	dst = append(dst, valueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.expires))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.seen))
	dst = append(dst, e.fp[:]...)
	return append(dst, e.device...)
}

func encode(e *entry) []byte { return appendValue(make([]byte, 0, valueLen(e)), e) }

func decode(v []byte) (entry, bool) {
	if len(v) < 49 || v[0] != valueVersion {
		return entry{}, false
	}
	e := entry{
		expires: int64(binary.BigEndian.Uint64(v[1:])),
		seen:    int64(binary.BigEndian.Uint64(v[9:])),
		device:  string(v[49:]),
	}
	copy(e.fp[:], v[17:49])
	return e, true
}
