package outbox

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/offline/seal"
)

// Sealed is one pending event as the outbox stores it: sealed, bound to its seq.
type Sealed struct {
	Seq uint64
	Rec []byte
}

// Salvaged is what Salvage recovered from a damaged database file.
type Salvaged struct {
	Records []Sealed // in seq order, each opened once with the ring (so known genuine)
	// Method says how: "bbolt" (the file still opened read-only and the pending bucket
	// was walked, exact), "page_scan" (its pages were read one by one, without bbolt),
	// or "none" (nothing readable).
	Method string
	Err    error // why the bbolt read failed, when it did
}

// Salvage recovers the pending events of the outbox database at path, which bbolt
// refused or which failed its start-up check. It never writes to the file.
//
// It first lets bbolt open the file read-only (the freelist is not loaded then, and one
// valid meta page is enough) and walks the pending bucket. If that fails, it reads the
// file page by page, without bbolt, and takes every leaf element whose key is 8 bytes and
// whose value opens with ring under that key as additional data: GCM authentication
// proves each one an event the outbox sealed for that seq, so garbage is never taken.
// A page scan also finds copies in pages bbolt had freed (copy-on-write), so it can
// return events that were delivered since: sent again, the platform answers them as
// duplicates (it deduplicates by event_id), which is the safe side of losing none.
// Dead letters (stored with their reason in front) and the delivered bucket (which keeps
// no event) are not recovered. At most limit records are kept (the lowest seqs first
// found win; a limit of 0 means no limit).
func Salvage(path string, ring *seal.Ring, limit int) Salvaged {
	recs, err := salvageBolt(path, ring)
	if err == nil {
		return Salvaged{Records: capRecords(recs, limit), Method: "bbolt"}
	}
	s := Salvaged{Err: err, Method: "none"}
	if recs, serr := scanPages(path, ring, limit); serr == nil && len(recs) > 0 {
		s.Records, s.Method = capRecords(recs, limit), "page_scan"
	}
	return s
}

func capRecords(recs []Sealed, limit int) []Sealed {
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return recs
}

// salvageBolt reads the pending bucket through bbolt, read-only. A damaged page can make
// bbolt panic or fault on the mapping: both become an error here.
func salvageBolt(path string, ring *seal.Ring) (recs []Sealed, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			recs, err = nil, fmt.Errorf("bbolt panicked: %v", r)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if root == nil || root.Bucket(bucketPending) == nil {
			return errors.New("no outbox in the file")
		}
		return root.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			if len(k) == 8 {
				if _, err := ring.Open(nil, v, k); err == nil {
					recs = append(recs, Sealed{Seq: binary.BigEndian.Uint64(k), Rec: append([]byte(nil), v...)})
				}
			}
			return nil
		})
	})
	return recs, err
}

// bbolt's on-disk layout (go.etcd.io/bbolt/internal/common/page.go), in the machine's
// byte order — little-endian on every platform the agent ships for.
const (
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	leafElemSize   = 16 // flags u32, pos u32, ksize u32, vsize u32; pos from the element
	leafPageFlag   = 0x02
	bucketLeafFlag = 0x01
	bucketHdrSize  = 16 // root pgid u64, sequence u64; root 0 = inline page follows
	minPageSize    = 1024
	maxPageSpan    = 4 << 20 // bound on one page's bytes (with its overflow) read at once
)

// scanPages reads the file at every 1 KiB boundary (every page size bbolt uses is a
// multiple) and decodes what looks like a leaf page there. Bounded: one pass over the
// file, each page read once, and at most limit records kept.
func scanPages(path string, ring *seal.Ring, limit int) ([]Sealed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	found := map[uint64][]byte{}
	var hdr [pageHeaderSize]byte
	var buf []byte
	for off := int64(2 * minPageSize); off+pageHeaderSize <= size; off += minPageSize {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			break
		}
		id := binary.LittleEndian.Uint64(hdr[0:])
		flags := binary.LittleEndian.Uint16(hdr[8:])
		count := binary.LittleEndian.Uint16(hdr[10:])
		// A page starts at id × page size, and page sizes are powers of two of 1 KiB or
		// more: anything else is not a page header.
		if flags != leafPageFlag || count == 0 || id < 2 || off%int64(id) != 0 {
			continue
		}
		ps := off / int64(id)
		if ps < minPageSize || ps&(ps-1) != 0 {
			continue
		}
		// The page and its overflow pages, as the header says, within the file.
		n := min((1+int64(binary.LittleEndian.Uint32(hdr[12:])))*ps, maxPageSpan, size-off)
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			continue
		}
		leafRecords(buf[:n], ring, found, 0)
		if limit > 0 && len(found) >= limit {
			break // bounded memory; the seqs kept are those found first
		}
	}
	out := make([]Sealed, 0, len(found))
	for seq, rec := range found {
		out = append(out, Sealed{Seq: seq, Rec: rec})
	}
	sortSealed(out)
	return out, nil
}

// leafRecords decodes the leaf page at the start of p (bounds-checked against p) and
// adds the genuine sealed records it holds to found; inline buckets are followed.
func leafRecords(p []byte, ring *seal.Ring, found map[uint64][]byte, depth int) {
	if len(p) < pageHeaderSize || binary.LittleEndian.Uint16(p[8:]) != leafPageFlag {
		return
	}
	count := int(binary.LittleEndian.Uint16(p[10:]))
	for i := range count {
		e := pageHeaderSize + i*leafElemSize
		if e+leafElemSize > len(p) {
			return
		}
		flags := binary.LittleEndian.Uint32(p[e:])
		pos := uint64(binary.LittleEndian.Uint32(p[e+4:]))
		ks := uint64(binary.LittleEndian.Uint32(p[e+8:]))
		vs := uint64(binary.LittleEndian.Uint32(p[e+12:]))
		k0 := uint64(e) + pos
		if k0+ks+vs > uint64(len(p)) {
			continue
		}
		key, val := p[k0:k0+ks], p[k0+ks:k0+ks+vs]
		if flags&bucketLeafFlag != 0 {
			// A small bucket is stored inline: its header, then its one leaf page.
			if depth < 2 && len(val) > bucketHdrSize && binary.LittleEndian.Uint64(val) == 0 {
				leafRecords(val[bucketHdrSize:], ring, found, depth+1)
			}
			continue
		}
		if len(key) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(key)
		if _, ok := found[seq]; ok {
			continue
		}
		if _, err := ring.Open(nil, val, key); err == nil {
			found[seq] = append([]byte(nil), val...)
		}
	}
}

func sortSealed(s []Sealed) {
	slices.SortFunc(s, func(a, b Sealed) int { return cmp.Compare(a.Seq, b.Seq) })
}

// Restore puts salvaged records back in the pending queue under their own seqs, exactly
// as Append sealed them, so the platform receives each event as it would have. A seq
// the outbox already holds (pending, delivered or dead) is skipped. It returns how many
// were restored. The last seq is raised to the highest restored one if needed, so that
// new events never take a salvaged seq.
func (ob *Outbox) Restore(recs []Sealed) (int, error) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	n, last := 0, ob.lastSeq
	highest := uint64(0)
	for _, r := range recs {
		highest = max(highest, r.Seq)
	}
	ob.o.Floor.ensure(highest) // before the commit, as in AppendAll; once, not per record
	// Through update: a power cut on a full disk is when a reset happens, and the
	// salvaged events need the reserve as much as new ones.
	err := ob.update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		p := root.Bucket(bucketPending)
		p.FillPercent = 1.0 // records come in seq order, as in AppendAll
		n, last = 0, ob.lastSeq
		for _, r := range recs {
			k := seqKey(r.Seq)
			if p.Get(k) != nil || root.Bucket(bucketDelivered).Get(k) != nil || root.Bucket(bucketDead).Get(k) != nil {
				continue
			}
			if _, err := ob.ring.Open(nil, r.Rec, k); err != nil {
				continue // not a record of this seq under this key: never queued
			}
			if err := p.Put(k, r.Rec); err != nil {
				return err
			}
			n++
			last = max(last, r.Seq)
		}
		if err := putCounts(root, ob.pending+n, ob.dead); err != nil {
			return err
		}
		return root.Bucket(bucketMeta).Put(keySeq, seqKey(last))
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: restore: %w", err)
	}
	ob.pending += n
	ob.lastSeq = last
	return n, nil
}
