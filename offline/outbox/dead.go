package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Dead is one event in the dead-letter store: refused by the platform (PLATFORM.md,
// Delivery rules) and kept, sealed, until an operator retries or discards it.
type Dead struct {
	Seq     uint64
	EventID string
	Reason  string
	JSON    []byte // the event as it was sent (personal data included: mask before showing)
}

// errBadDead is a dead-letter value too short to hold its reason.
var errBadDead = errors.New("outbox: dead letter record is malformed")

// splitDead splits a dead-letter value (reason length, reason, sealed record; see
// DeadLetter) into its reason and sealed record.
func splitDead(v []byte) (reason string, rec []byte, err error) {
	if len(v) < 1 || len(v) < 1+int(v[0]) {
		return "", nil, errBadDead
	}
	n := int(v[0])
	return string(v[1 : 1+n]), v[1+n:], nil
}

// DeadLetters returns up to max dead letters (0: all) in seq order, opened.
func (ob *Outbox) DeadLetters(max int) ([]Dead, error) {
	var out []Dead
	err := ob.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRoot).Bucket(bucketDead).Cursor()
		for k, v := c.First(); k != nil && (max == 0 || len(out) < max); k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			reason, rec, err := splitDead(v)
			if err != nil {
				return fmt.Errorf("seq %d: %w", seq, err)
			}
			js, err := ob.ring.Open(nil, rec, k)
			if err != nil {
				return fmt.Errorf("outbox: dead seq %d: %w", seq, err)
			}
			var id struct {
				EventID string `json:"event_id"`
			}
			_ = json.Unmarshal(js, &id)
			out = append(out, Dead{Seq: seq, EventID: id.EventID, Reason: reason, JSON: js})
		}
		return nil
	})
	return out, err
}

// Retry moves dead letters back to the pending queue, keeping their seq, so that the
// uplink sends them again (after the cause was fixed at the platform). seqs nil means
// every dead letter. It returns how many moved; a seq not in the store is skipped.
func (ob *Outbox) Retry(seqs []uint64) (int, error) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	moved := 0
	err := ob.update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		dead, pending := root.Bucket(bucketDead), root.Bucket(bucketPending)
		moved = 0
		keys := make([][]byte, 0, len(seqs))
		if seqs == nil {
			err := dead.ForEach(func(k, _ []byte) error {
				keys = append(keys, append([]byte(nil), k...))
				return nil
			})
			if err != nil {
				return err
			}
		} else {
			for _, s := range seqs {
				keys = append(keys, seqKey(s))
			}
		}
		for _, k := range keys {
			v := dead.Get(k)
			if v == nil {
				continue
			}
			_, rec, err := splitDead(v)
			if err != nil {
				return fmt.Errorf("seq %d: %w", binary.BigEndian.Uint64(k), err)
			}
			// The sealed record is the one Append wrote, bound to this seq: it goes
			// back unchanged.
			if err := pending.Put(k, append([]byte(nil), rec...)); err != nil {
				return err
			}
			if err := dead.Delete(k); err != nil {
				return err
			}
			moved++
		}
		return putCounts(root, ob.pending+moved, ob.dead-moved)
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: retry: %w", err)
	}
	ob.pending += moved
	ob.dead -= moved
	return moved, nil
}
