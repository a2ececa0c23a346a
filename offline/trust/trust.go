// Package trust is the terminal's trust store: the root key set and the revocation list
// of CODES.md, "Trust documents", each a JSON envelope signed by the pinned trust anchor.
//
// Guarantees:
//   - A document is put into use only after its envelope signature verified against the
//     anchor; the payload is not even parsed before that.
//   - A document whose version is below the cached one is refused (version_downgrade);
//     the same version with the same payload bytes is a no-op; the same version with
//     other bytes is refused too (version_downgrade): a version names one document.
//   - An accepted document replaces the cached one in a single bbolt transaction, and
//     lookups switch to it only after that transaction committed. Any error leaves the
//     cached copy, on disk and in use, untouched.
//   - Lookups read an immutable Snapshot behind an atomic pointer: no lock, no
//     allocation, and one Snapshot gives a consistent view of both documents for one
//     verification. Root keys are parsed (and their SM2 Z value computed) once, when
//     the key set is applied.
//   - Errors are *Error with a stable Reason: bad_envelope, bad_signature,
//     version_downgrade, bad_payload (and storage for a failing database).
//
// A Store opened with a nil database keeps its documents in memory only (the CLI and
// tests use that); otherwise it owns the bucket "trust" of the database it is given.
package trust

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"go.etcd.io/bbolt"
)

// Reasons carried by Error.
const (
	ReasonBadEnvelope      = "bad_envelope"      // not a JSON envelope, bad base64, too large
	ReasonBadSignature     = "bad_signature"     // the anchor's signature does not verify
	ReasonVersionDowngrade = "version_downgrade" // version below (or equal to but unlike) the cached one
	ReasonBadPayload       = "bad_payload"       // signed, but not a valid document of its kind
	ReasonStorage          = "storage"           // the database failed; nothing changed
)

// Document kinds, as named in errors and in the database.
const (
	KindKeySet      = "keyset"
	KindRevocations = "revocations"
)

// MaxEnvelopeSize bounds an envelope, before any decoding. A revocation list of 100,000
// EHC IDs is about 9 MB once base64-encoded.
const MaxEnvelopeSize = 16 << 20

// DefaultStalenessLimit is how long past its next_update a key set goes before results
// carry trust_stale (CODES.md).
const DefaultStalenessLimit = 7 * 24 * time.Hour

var bucketName = []byte("trust")

// Error is the error of every Apply and of LoadDir.
type Error struct {
	Kind   string // KindKeySet or KindRevocations
	Reason string // one of the Reason constants
	Msg    string
}

func (e *Error) Error() string { return "trust: " + e.Kind + ": " + e.Reason + ": " + e.Msg }

func errorf(kind, reason, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Reason returns err's stable reason if it is (or wraps) an *Error, else "".
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Options configure a Store. The zero value is the defaults.
type Options struct {
	// StalenessLimit: a key set whose next_update is further than this in the past is
	// stale. 0 means DefaultStalenessLimit.
	StalenessLimit time.Duration
}

// Root is one root key of the key set.
type Root struct {
	Index     uint8
	Key       *sm2sig.PublicKey
	NotBefore time.Time
	NotAfter  time.Time
}

// ValidAt reports whether now is within [NotBefore, NotAfter], both inclusive.
func (r *Root) ValidAt(now time.Time) bool {
	return !now.Before(r.NotBefore) && !now.After(r.NotAfter)
}

// Snapshot is one immutable view of both documents: Store never changes a Snapshot
// it has published, and callers must not either (its exported fields are for reading).
// The zero Snapshot has no roots and no revocations.
type Snapshot struct {
	KeySetVersion      uint64
	KeySetIssuedAt     time.Time
	NextUpdate         time.Time
	RevocationsVersion uint64
	RevocationsIssued  time.Time

	hasKeySet      bool
	roots          [256]*Root
	stalenessLimit time.Duration
	revokedIssuers map[uint64]struct{}
	revokedEHCIDs  map[[32]byte]struct{}
	revokedHolders map[[32]byte]struct{}

	keySetPayload, revPayload   []byte // as signed, for the equal-version check
	keySetEnvelope, revEnvelope []byte // as received, for persistence
}

// HasKeySet reports whether a key set is loaded; without one every code fails with
// unknown_root_key.
func (s *Snapshot) HasKeySet() bool { return s.hasKeySet }

// Root returns the root key with this index, or nil.
func (s *Snapshot) Root(index uint8) *Root { return s.roots[index] }

// Roots returns the root keys in index order.
func (s *Snapshot) Roots() []*Root {
	var out []*Root
	for _, r := range s.roots {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// Stale reports whether results at now must carry trust_stale: the key set's
// next_update is more than the staleness limit before now — or there is no key set at
// all, which is the stalest a terminal can be and asks for the same remedy (refresh).
func (s *Snapshot) Stale(now time.Time) bool {
	if !s.hasKeySet {
		return true
	}
	return now.Sub(s.NextUpdate) > s.stalenessLimit
}

// IssuerRevoked reports whether the issuer certificate (issuer id, serial) is revoked.
func (s *Snapshot) IssuerRevoked(issuerID, serial uint32) bool {
	_, ok := s.revokedIssuers[uint64(issuerID)<<32|uint64(serial)]
	return ok
}

// EHCIDRevoked reports whether the EHC ID is revoked.
func (s *Snapshot) EHCIDRevoked(id *[32]byte) bool {
	_, ok := s.revokedEHCIDs[*id]
	return ok
}

// EHCIDRevokedHex is EHCIDRevoked for the 64-hex-digit form, either case; anything
// else is not a revoked EHC ID.
func (s *Snapshot) EHCIDRevokedHex(id string) bool {
	k, ok := Hex32(id)
	return ok && s.EHCIDRevoked(&k)
}

// HolderKeyRevoked reports whether a holder key is revoked, given SM3 of its 33-byte
// compressed encoding.
func (s *Snapshot) HolderKeyRevoked(sm3OfKey *[32]byte) bool {
	_, ok := s.revokedHolders[*sm3OfKey]
	return ok
}

// Counts returns how many issuers, EHC IDs and holder keys the revocation list holds.
func (s *Snapshot) Counts() (issuers, ehcIDs, holderKeys int) {
	return len(s.revokedIssuers), len(s.revokedEHCIDs), len(s.revokedHolders)
}

// Store is the trust store. Its methods are safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	anchor *sm2sig.PublicKey
	opts   Options

	mu   sync.Mutex // serialises writers; readers never take it
	snap atomic.Pointer[Snapshot]

	discarded []string
}

// Open returns the store kept in db (nil: memory only), trusting documents signed by
// anchor. Documents cached in db are verified and parsed again: one that no longer
// verifies (the anchor was changed in the configuration) or no longer parses is left
// out of use and reported by Discarded, so that the terminal starts, with what it can
// trust, and fetches fresh documents; the next accepted document of that kind replaces
// it whatever its version.
func Open(db *bbolt.DB, anchor *sm2sig.PublicKey, opts Options) (*Store, error) {
	if anchor == nil {
		return nil, errors.New("trust: no trust anchor")
	}
	if opts.StalenessLimit <= 0 {
		opts.StalenessLimit = DefaultStalenessLimit
	}
	s := &Store{db: db, anchor: anchor, opts: opts}
	snap := &Snapshot{stalenessLimit: opts.StalenessLimit}
	if db != nil {
		var stored [2][]byte
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketName)
			if err != nil {
				return err
			}
			for i, k := range []string{KindKeySet, KindRevocations} {
				if v := b.Get([]byte(k)); v != nil {
					stored[i] = bytes.Clone(v)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("trust: open: %w", err)
		}
		for i, kind := range []string{KindKeySet, KindRevocations} {
			if stored[i] == nil {
				continue
			}
			next, err := s.build(snap, kind, stored[i])
			if err != nil {
				s.discarded = append(s.discarded, err.Error())
				continue
			}
			snap = next
		}
	}
	s.snap.Store(snap)
	return s, nil
}

// Discarded lists the cached documents Open could not put into use, with why.
func (s *Store) Discarded() []string { return s.discarded }

// Snapshot returns the current view. Hold on to it for the length of one verification,
// not longer: it does not follow updates.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

// ApplyKeySet verifies a key set envelope and, if it is newer, makes it current.
func (s *Store) ApplyKeySet(envelope []byte) error { return s.apply(KindKeySet, envelope) }

// ApplyRevocations verifies a revocation envelope and, if it is newer, makes it current.
func (s *Store) ApplyRevocations(envelope []byte) error {
	return s.apply(KindRevocations, envelope)
}

func (s *Store) apply(kind string, envelope []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	next, err := s.build(cur, kind, envelope)
	if err != nil {
		return err
	}
	if next == cur {
		return nil // same version, same bytes
	}
	if s.db != nil {
		env := next.keySetEnvelope
		if kind == KindRevocations {
			env = next.revEnvelope
		}
		err := s.db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketName)
			if err != nil {
				return err
			}
			return b.Put([]byte(kind), env)
		})
		if err != nil {
			return errorf(kind, ReasonStorage, "%v", err)
		}
	}
	s.snap.Store(next)
	return nil
}

// build verifies envelope as a document of kind and returns cur with it replaced — or
// cur itself when envelope carries cur's version with identical payload bytes.
func (s *Store) build(cur *Snapshot, kind string, envelope []byte) (*Snapshot, error) {
	payload, err := s.open(kind, envelope)
	if err != nil {
		return nil, err
	}
	next := *cur
	switch kind {
	case KindKeySet:
		ks, err := parseKeySet(payload)
		if err != nil {
			return nil, err
		}
		if cur.hasKeySet {
			if same, err := checkVersion(kind, ks.version, cur.KeySetVersion, payload, cur.keySetPayload); same || err != nil {
				return keep(cur, err)
			}
		}
		next.hasKeySet = true
		next.KeySetVersion, next.KeySetIssuedAt, next.NextUpdate = ks.version, ks.issuedAt, ks.nextUpdate
		next.roots = ks.roots
		next.keySetPayload, next.keySetEnvelope = payload, bytes.Clone(envelope)
	case KindRevocations:
		rv, err := parseRevocations(payload)
		if err != nil {
			return nil, err
		}
		if cur.revPayload != nil {
			if same, err := checkVersion(kind, rv.version, cur.RevocationsVersion, payload, cur.revPayload); same || err != nil {
				return keep(cur, err)
			}
		}
		next.RevocationsVersion, next.RevocationsIssued = rv.version, rv.issuedAt
		next.revokedIssuers, next.revokedEHCIDs, next.revokedHolders = rv.issuers, rv.ehcIDs, rv.holders
		next.revPayload, next.revEnvelope = payload, bytes.Clone(envelope)
	}
	return &next, nil
}

// checkVersion reports whether the new document is the cached one (same version, same
// bytes), or an error if it may not replace it.
func checkVersion(kind string, got, have uint64, payload, cached []byte) (same bool, err error) {
	switch {
	case got < have:
		return false, errorf(kind, ReasonVersionDowngrade, "version %d is below the cached version %d", got, have)
	case got == have && !bytes.Equal(payload, cached):
		return false, errorf(kind, ReasonVersionDowngrade, "version %d is the cached version but the document differs", got)
	}
	return got == have, nil
}

func keep(cur *Snapshot, err error) (*Snapshot, error) {
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// Envelope is the JSON form of a signed trust document.
type Envelope struct {
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// open checks the envelope's shape and signature and returns the signed payload bytes.
func (s *Store) open(kind string, envelope []byte) ([]byte, error) {
	return OpenEnvelope(kind, envelope, s.anchor)
}

// OpenEnvelope returns the payload of envelope if anchor signed it. kind only labels
// errors.
func OpenEnvelope(kind string, envelope []byte, anchor *sm2sig.PublicKey) ([]byte, error) {
	if len(envelope) > MaxEnvelopeSize {
		return nil, errorf(kind, ReasonBadEnvelope, "%d bytes, more than %d", len(envelope), MaxEnvelopeSize)
	}
	var env struct {
		Payload   *string `json:"payload"`
		Signature *string `json:"signature"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, errorf(kind, ReasonBadEnvelope, "not a JSON object: %v", err)
	}
	if env.Payload == nil || env.Signature == nil {
		return nil, errorf(kind, ReasonBadEnvelope, `"payload" and "signature" are both required`)
	}
	enc := base64.StdEncoding.Strict()
	payload, err := enc.DecodeString(*env.Payload)
	if err != nil {
		return nil, errorf(kind, ReasonBadEnvelope, "payload is not standard padded base64: %v", err)
	}
	sig, err := enc.DecodeString(*env.Signature)
	if err != nil {
		return nil, errorf(kind, ReasonBadEnvelope, "signature is not standard padded base64: %v", err)
	}
	if len(sig) != sm2sig.SignatureSize {
		return nil, errorf(kind, ReasonBadSignature, "signature is %d bytes, want %d (r‖s)", len(sig), sm2sig.SignatureSize)
	}
	if !anchor.Verify(payload, sig) {
		return nil, errorf(kind, ReasonBadSignature, "signature does not verify with the trust anchor")
	}
	return payload, nil
}

// Seal signs payload with the anchor's private key signer and returns the envelope.
// It is the inverse of OpenEnvelope, for the issuer tools and tests.
func Seal(payload []byte, sign func([]byte) ([]byte, error)) ([]byte, error) {
	sig, err := sign(payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Envelope{
		Payload:   base64.StdEncoding.EncodeToString(payload),
		Signature: base64.StdEncoding.EncodeToString(sig),
	})
}

type keySet struct {
	version              uint64
	issuedAt, nextUpdate time.Time
	roots                [256]*Root
}

// version is a JSON number that must be a non-negative integer.
type version struct {
	v   uint64
	set bool
}

func (v *version) UnmarshalJSON(b []byte) error {
	n, err := jsonInteger(b)
	if err != nil {
		return err
	}
	u, err := parseUint(string(n), 64)
	if err != nil {
		return fmt.Errorf("version %s is not a non-negative integer", n)
	}
	v.v, v.set = u, true
	return nil
}

// jsonInteger returns the literal of a JSON number; json.Number alone would also take
// a string holding digits.
func jsonInteger(b []byte) (json.Number, error) {
	var n json.Number
	if len(b) == 0 || b[0] == '"' {
		return "", fmt.Errorf("%s is not a JSON number", b)
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return "", err
	}
	return n, nil
}

func parseUint(s string, bits int) (uint64, error) {
	var u uint64
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("bad integer")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errors.New("bad integer")
		}
		d := uint64(c - '0')
		if u > (1<<64-1-d)/10 {
			return 0, errors.New("overflow")
		}
		u = u*10 + d
	}
	if bits < 64 && u >= 1<<bits {
		return 0, errors.New("overflow")
	}
	return u, nil
}

// uint32JSON is a JSON integer in [0, 2^32).
type uint32JSON struct {
	v   uint32
	set bool
}

func (u *uint32JSON) UnmarshalJSON(b []byte) error {
	n, err := jsonInteger(b)
	if err != nil {
		return err
	}
	x, err := parseUint(string(n), 32)
	if err != nil {
		return fmt.Errorf("%s is not an integer in 0..4294967295", n)
	}
	u.v, u.set = uint32(x), true
	return nil
}

func parseTime(kind, field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errorf(kind, ReasonBadPayload, "%s %q is not an RFC 3339 time", field, s)
	}
	return t, nil
}

func decodeStrict(kind string, payload []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return errorf(kind, ReasonBadPayload, "%v", err)
	}
	if d.More() {
		return errorf(kind, ReasonBadPayload, "data after the JSON object")
	}
	return nil
}

// parseKeySet parses a key set payload. Unknown fields are ignored, so that a later
// spec version can add some; every field CODES.md shows is required.
func parseKeySet(payload []byte) (*keySet, error) {
	const kind = KindKeySet
	var doc struct {
		Version    version `json:"version"`
		IssuedAt   *string `json:"issued_at"`
		NextUpdate *string `json:"next_update"`
		Roots      *[]struct {
			Index     *uint32JSON `json:"index"`
			PublicKey *string     `json:"public_key"`
			NotBefore *string     `json:"not_before"`
			NotAfter  *string     `json:"not_after"`
		} `json:"roots"`
		// A revocation list's fields (see parseRevocations): not a key set.
		Issuers    json.RawMessage `json:"issuers"`
		EHCIDs     json.RawMessage `json:"ehc_ids"`
		HolderKeys json.RawMessage `json:"holder_keys"`
	}
	if err := decodeStrict(kind, payload, &doc); err != nil {
		return nil, err
	}
	if doc.Issuers != nil || doc.EHCIDs != nil || doc.HolderKeys != nil {
		return nil, errorf(kind, ReasonBadPayload, "this is a revocation list (issuers, ehc_ids, holder_keys), not a key set")
	}
	if !doc.Version.set || doc.IssuedAt == nil || doc.NextUpdate == nil || doc.Roots == nil {
		return nil, errorf(kind, ReasonBadPayload, "version, issued_at, next_update and roots are required")
	}
	ks := &keySet{version: doc.Version.v}
	var err error
	if ks.issuedAt, err = parseTime(kind, "issued_at", *doc.IssuedAt); err != nil {
		return nil, err
	}
	if ks.nextUpdate, err = parseTime(kind, "next_update", *doc.NextUpdate); err != nil {
		return nil, err
	}
	for i, r := range *doc.Roots {
		if r.Index == nil || r.PublicKey == nil || r.NotBefore == nil || r.NotAfter == nil {
			return nil, errorf(kind, ReasonBadPayload, "roots[%d]: index, public_key, not_before and not_after are required", i)
		}
		if r.Index.v > 255 {
			return nil, errorf(kind, ReasonBadPayload, "roots[%d]: index %d is not 0..255", i, r.Index.v)
		}
		idx := uint8(r.Index.v)
		if ks.roots[idx] != nil {
			return nil, errorf(kind, ReasonBadPayload, "roots[%d]: index %d appears twice", i, idx)
		}
		if len(*r.PublicKey) != 2*sm2sig.UncompressedSize {
			return nil, errorf(kind, ReasonBadPayload, "roots[%d]: public_key must be 130 hex digits (04‖X‖Y)", i)
		}
		key, err := sm2sig.ParsePublicKeyHex(*r.PublicKey)
		if err != nil {
			return nil, errorf(kind, ReasonBadPayload, "roots[%d]: public_key: %v", i, err)
		}
		root := &Root{Index: idx, Key: key}
		if root.NotBefore, err = parseTime(kind, fmt.Sprintf("roots[%d].not_before", i), *r.NotBefore); err != nil {
			return nil, err
		}
		if root.NotAfter, err = parseTime(kind, fmt.Sprintf("roots[%d].not_after", i), *r.NotAfter); err != nil {
			return nil, err
		}
		if root.NotAfter.Before(root.NotBefore) {
			return nil, errorf(kind, ReasonBadPayload, "roots[%d]: not_after is before not_before", i)
		}
		ks.roots[idx] = root
	}
	return ks, nil
}

type revocations struct {
	version  uint64
	issuedAt time.Time
	issuers  map[uint64]struct{}
	ehcIDs   map[[32]byte]struct{}
	holders  map[[32]byte]struct{}
}

func parseRevocations(payload []byte) (*revocations, error) {
	const kind = KindRevocations
	var doc struct {
		Version  version `json:"version"`
		IssuedAt *string `json:"issued_at"`
		Issuers  []struct {
			IssuerID *uint32JSON `json:"issuer_id"`
			Serial   *uint32JSON `json:"serial"`
		} `json:"issuers"`
		EHCIDs     []string `json:"ehc_ids"`
		HolderKeys []string `json:"holder_keys"`
		// A key set's defining field: the anchor signs key sets too, and the signature
		// says nothing of the kind, so a genuine key set (whose lists would all be
		// absent) must not pass for a revocation list that revokes nothing.
		// (next_update is not checked: a later revocation list may well get one.)
		Roots json.RawMessage `json:"roots"`
	}
	if err := decodeStrict(kind, payload, &doc); err != nil {
		return nil, err
	}
	if doc.Roots != nil {
		return nil, errorf(kind, ReasonBadPayload, "this is a key set (roots), not a revocation list")
	}
	// The lists may be absent (nothing revoked of that kind); version and issued_at not.
	if !doc.Version.set || doc.IssuedAt == nil {
		return nil, errorf(kind, ReasonBadPayload, "version and issued_at are required")
	}
	rv := &revocations{
		version: doc.Version.v,
		issuers: make(map[uint64]struct{}, len(doc.Issuers)),
		ehcIDs:  make(map[[32]byte]struct{}, len(doc.EHCIDs)),
		holders: make(map[[32]byte]struct{}, len(doc.HolderKeys)),
	}
	var err error
	if rv.issuedAt, err = parseTime(kind, "issued_at", *doc.IssuedAt); err != nil {
		return nil, err
	}
	for i, is := range doc.Issuers {
		if is.IssuerID == nil || is.Serial == nil {
			return nil, errorf(kind, ReasonBadPayload, "issuers[%d]: issuer_id and serial are required", i)
		}
		rv.issuers[uint64(is.IssuerID.v)<<32|uint64(is.Serial.v)] = struct{}{}
	}
	for _, list := range []struct {
		name string
		in   []string
		out  map[[32]byte]struct{}
	}{{"ehc_ids", doc.EHCIDs, rv.ehcIDs}, {"holder_keys", doc.HolderKeys, rv.holders}} {
		for i, h := range list.in {
			k, ok := Hex32(h)
			if !ok {
				return nil, errorf(kind, ReasonBadPayload, "%s[%d] is not 64 hex digits", list.name, i)
			}
			list.out[k] = struct{}{}
		}
	}
	return rv, nil
}

// Hex32 decodes 64 hex digits of either case; lists compare case-insensitively because
// they compare decoded bytes.
func Hex32(s string) ([32]byte, bool) {
	var k [32]byte
	if len(s) != 64 {
		return k, false
	}
	_, err := hex.Decode(k[:], []byte(s))
	return k, err == nil
}

// States of the store as Versions.Reason reports them: a terminal that never received
// a key set is told apart from one whose key set has aged, since the fixes differ (set
// up the platform connection or trust.dir, versus restore a connection that worked).
const (
	ReasonNeverUpdated = "never_updated"
	ReasonStale        = "stale"
)

// Versions is the status of the store, for the status API.
type Versions struct {
	KeySet            uint64    `json:"keyset_version"`
	KeySetIssuedAt    time.Time `json:"keyset_issued_at"`
	NextUpdate        time.Time `json:"next_update"`
	Revocations       uint64    `json:"revocations_version"`
	RevocationsIssued time.Time `json:"revocations_issued_at"`
	HasKeySet         bool      `json:"has_keyset"`
	HasRevocations    bool      `json:"has_revocations"`
	Stale             bool      `json:"trust_stale"`
	// Reason is ReasonNeverUpdated (no key set was ever installed or synced),
	// ReasonStale (one was, but it is past next_update by more than the staleness
	// limit), or "" when the key set is current.
	Reason string `json:"reason,omitempty"`
	// Hint is a fix for Reason in plain words; the agent adds it (agent/hints), the store
	// leaves it empty.
	Hint              string `json:"hint,omitempty"`
	Roots             int    `json:"roots"`
	RevokedIssuers    int    `json:"revoked_issuers"`
	RevokedEHCIDs     int    `json:"revoked_ehc_ids"`
	RevokedHolderKeys int    `json:"revoked_holder_keys"`
}

// Versions reports what the store holds, and whether it is stale at now.
func (s *Store) Versions(now time.Time) Versions {
	sn := s.Snapshot()
	v := Versions{
		KeySet: sn.KeySetVersion, KeySetIssuedAt: sn.KeySetIssuedAt, NextUpdate: sn.NextUpdate,
		Revocations: sn.RevocationsVersion, RevocationsIssued: sn.RevocationsIssued,
		HasKeySet: sn.hasKeySet, HasRevocations: sn.revPayload != nil,
		Stale: sn.Stale(now), Roots: len(sn.Roots()),
	}
	switch {
	case !v.HasKeySet:
		v.Reason = ReasonNeverUpdated
	case v.Stale:
		v.Reason = ReasonStale
	}
	v.RevokedIssuers, v.RevokedEHCIDs, v.RevokedHolderKeys = sn.Counts()
	return v
}

// Envelopes returns the documents in use exactly as they were accepted (nil for one
// not loaded), for a client that wants to compare before applying.
func (s *Store) Envelopes() (keySet, revocations []byte) {
	sn := s.Snapshot()
	return sn.keySetEnvelope, sn.revEnvelope
}
