package outbox

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/ehc-agent/ehc-agent/offline/atomicfile"
)

// FloorBlock is how many seqs a Floor reserves at a time: the floor file is written
// once per FloorBlock events, and a fresh database after a state reset leaves a gap of
// at most FloorBlock seqs that were never used, plus those of the events lost with the
// old database.
const FloorBlock = 1000

// Floor is the seq high-water mark kept outside the database (PLATFORM.md: seq "never
// repeats, across restarts"). The database holds the last seq exactly; the floor file
// holds a value at or above every seq ever committed, written before a commit could pass
// it. If the database is lost (a corrupt file replaced by a fresh one), an outbox opened
// on a database that never held a seq continues above the floor instead of at 1, so
// the platform sees a gap, never a repeated seq.
//
// The file is one line, "<seq> <crc32 of the digits in hex>", replaced atomically (write
// to a temporary file, fsync, rename, fsync the directory), so a torn write leaves the
// previous value. A file that fails its checksum counts as absent.
type Floor struct {
	path string
	// OnError is told when the floor cannot be written. Events are still committed (a
	// floor behind only matters if the database is lost as well); the write is tried
	// again at the next commit.
	OnError func(error)

	mu       sync.Mutex
	reserved uint64 // the value in the file; 0 when there is none
	failing  bool
}

// OpenFloor reads the floor file at path; a missing or unreadable file gives floor 0.
func OpenFloor(path string) (*Floor, error) {
	f := &Floor{path: path}
	n, err := ReadFloor(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errBadFloor) {
		return nil, err
	}
	f.reserved = n
	return f, nil
}

var errBadFloor = errors.New("seq floor file is damaged")

// ReadFloor returns the value in the floor file at path.
func ReadFloor(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	num, sum, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || sum != fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(num))) {
		return 0, fmt.Errorf("%s: %w", path, errBadFloor)
	}
	return n, nil
}

// Value is the floor now: no committed seq is above it.
func (f *Floor) Value() uint64 {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reserved
}

// ensure makes the floor at least last before a commit up to seq last, reserving
// FloorBlock seqs beyond it so that the file is written rarely.
func (f *Floor) ensure(last uint64) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if last <= f.reserved && !f.failing {
		return
	}
	want := max(last, f.reserved) + FloorBlock
	if err := writeFloor(f.path, want); err != nil {
		if !f.failing && f.OnError != nil { // once per failing spell: a full disk fails every try
			f.OnError(fmt.Errorf("seq floor: %w", err))
		}
		f.failing = true
		return
	}
	f.reserved, f.failing = want, false
}

func writeFloor(path string, n uint64) error {
	num := strconv.FormatUint(n, 10)
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s %08x\n", num, crc32.ChecksumIEEE([]byte(num)))
		return err
	})
}
