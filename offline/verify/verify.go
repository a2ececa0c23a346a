// Package verify verifies EHC1 offline dynamic codes: CODES.md, "Verification, in this
// order", steps 1 to 10, against a trust.Store and a replay.Cache.
//
// Guarantees:
//   - The steps run in the spec's order and the first failure is the reason reported,
//     one of the Reason constants; nothing else is ever reported.
//   - Verify never panics and never blocks on I/O: the trust store is an in-memory
//     snapshot and the replay cache answers from memory (see package replay for when
//     it reaches the disk).
//   - One Verify reads one trust snapshot, so a concurrent trust update cannot mix
//     two key sets or two revocation lists within a verification.
//   - Issuer certificates whose root signature verified are cached (bounded), keyed by
//     the certificate bytes and the root public key that verified them, so a code
//     usually costs two SM2 verifications (credential and code) instead of three. Only
//     the signature result is cached: expiry, revocation and the allow-list are
//     checked on every code, and a changed root key misses the cache.
//   - Identity fields of a Result are filled only once the holder signature verified
//     (step 7): an invalid result for a code that failed before carries only its reason.
//
// Time: every comparison is at whole-second resolution, as the code's fields are: now
// is truncated to its Unix second, and "not-after" instants are inclusive (a
// certificate with not-after T is valid throughout second T).
package verify

import (
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/replay"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
	"github.com/emmansun/gmsm/sm3"
)

// Statuses.
const (
	StatusValid   = "valid"
	StatusInvalid = "invalid"
)

// Reasons, in the order of the verification steps (CODES.md).
const (
	ReasonMalformed              = "malformed"                // step 1
	ReasonUnsupportedVersion     = "unsupported_version"      // step 1
	ReasonUnknownRootKey         = "unknown_root_key"         // step 2
	ReasonRootKeyExpired         = "root_key_expired"         // step 2
	ReasonBadIssuerSignature     = "bad_issuer_signature"     // step 3
	ReasonIssuerCertExpired      = "issuer_cert_expired"      // step 4
	ReasonRevokedIssuer          = "revoked_issuer"           // step 4
	ReasonIssuerNotAllowed       = "issuer_not_allowed"       // step 4
	ReasonBadKey                 = "bad_key"                  // steps 5 and 7
	ReasonBadCredentialSignature = "bad_credential_signature" // step 5
	ReasonCredentialExpired      = "credential_expired"       // steps 6 and 8
	ReasonBadCodeSignature       = "bad_code_signature"       // step 7
	ReasonNotYetValid            = "not_yet_valid"            // step 8
	ReasonCodeExpired            = "code_expired"             // step 8
	ReasonRevoked                = "revoked"                  // step 9
	ReasonReplayed               = "replayed"                 // step 10
)

// Reasons lists every reason Verify can report, in step order.
var Reasons = []string{
	ReasonMalformed, ReasonUnsupportedVersion, ReasonUnknownRootKey, ReasonRootKeyExpired,
	ReasonBadIssuerSignature, ReasonIssuerCertExpired, ReasonRevokedIssuer, ReasonIssuerNotAllowed,
	ReasonBadKey, ReasonBadCredentialSignature, ReasonCredentialExpired, ReasonBadCodeSignature,
	ReasonNotYetValid, ReasonCodeExpired, ReasonRevoked, ReasonReplayed,
}

// Defaults.
const (
	DefaultSkew          = 30 * time.Second
	DefaultCertCacheSize = 1024
)

// Options configure a Verifier. The zero value is the defaults.
type Options struct {
	// Skew is the clock tolerance of step 8. 0 means DefaultSkew; negative means none.
	Skew time.Duration
	// IssuerAllow, when not empty, is the only issuer ids accepted (step 4).
	IssuerAllow []uint32
	// DuplicateWindow is the double-read window of step 10. 0 means
	// replay.DefaultDuplicateWindow; negative means none (every re-read is replayed).
	DuplicateWindow time.Duration
	// CertCacheSize bounds the verified-certificate cache. 0 means
	// DefaultCertCacheSize; negative disables the cache.
	CertCacheSize int
}

// Result is the outcome of one verification.
type Result struct {
	Status string // StatusValid or StatusInvalid
	Reason string // "" when valid
	// DoubleRead: a valid code read again by the same device within the duplicate
	// window. It produces no event.
	DoubleRead bool
	// TrustStale: the key set is past its next_update by more than the staleness
	// limit (or missing). Set on every result.
	TrustStale bool

	// Filled once the holder signature verified (see the package comment).
	EHCID       string // 64 uppercase hex digits
	Category    uint8
	IssuerID    uint32
	CertSerial  uint32
	RootIndex   uint8
	GeneratedAt time.Time
	ExpiresAt   time.Time // generated-at + validity (without skew)
	Sequence    uint32
	Extension   string // uppercase hex, "" when empty
}

// Valid reports whether the code verified (a double read included).
func (r *Result) Valid() bool { return r.Status == StatusValid }

// Verifier verifies codes. It is safe for concurrent use.
type Verifier struct {
	ts     *trust.Store
	rc     *replay.Cache
	skew   time.Duration
	window time.Duration
	allow  map[uint32]struct{}
	certs  *certCache
}

// New returns a Verifier over ts (required) and rc. rc may be nil: step 10 is then skipped (a
// caller that records acceptance elsewhere, or a one-off check).
func New(ts *trust.Store, rc *replay.Cache, o Options) *Verifier {
	v := &Verifier{ts: ts, rc: rc, skew: o.Skew, window: o.DuplicateWindow}
	switch {
	case v.skew == 0:
		v.skew = DefaultSkew
	case v.skew < 0:
		v.skew = 0
	}
	switch {
	case v.window == 0:
		v.window = replay.DefaultDuplicateWindow
	case v.window < 0:
		v.window = 0
	}
	if len(o.IssuerAllow) > 0 {
		v.allow = make(map[uint32]struct{}, len(o.IssuerAllow))
		for _, id := range o.IssuerAllow {
			v.allow[id] = struct{}{}
		}
	}
	size := o.CertCacheSize
	if size == 0 {
		size = DefaultCertCacheSize
	}
	if size > 0 {
		v.certs = &certCache{max: size, m: make(map[string]*certEntry, min(size, 64))}
	}
	return v
}

func invalid(reason string, stale bool) Result {
	return Result{Status: StatusInvalid, Reason: reason, TrustStale: stale}
}

// Verify verifies text, the payload of a scan ("EHC1:…", prefix in any case), read by
// device at now (the terminal's trusted time).
func (v *Verifier) Verify(text []byte, device string, now time.Time) Result {
	snap := v.ts.Snapshot()
	stale := snap.Stale(now)
	t := time.Unix(now.Unix(), 0)

	// 1. Shape. The parsed code lives in a pooled buffer: nothing of it outlives this
	// call (the Result copies what it reports, the certificate cache its key).
	buf := codeBufs.Get().(*ehc1.Buffer)
	defer codeBufs.Put(buf)
	c, err := buf.ParseText(text)
	if err != nil {
		var pe *ehc1.Error
		if errors.As(err, &pe) && pe.Reason == ehc1.ReasonUnsupportedVersion {
			return invalid(ReasonUnsupportedVersion, stale)
		}
		return invalid(ReasonMalformed, stale)
	}

	// 2. Root key.
	root := snap.Root(c.RootIndex)
	if root == nil {
		return invalid(ReasonUnknownRootKey, stale)
	}
	if !root.ValidAt(t) {
		return invalid(ReasonRootKeyExpired, stale)
	}

	// 3. Root signature over the issuer certificate, or a cached verification of the
	// same certificate bytes by the same root key.
	cert := v.certs.get(c.IssuerCert(), root.Key)
	if cert == nil {
		if !root.Key.Verify(c.CertSigned(), c.RootSig[:]) {
			return invalid(ReasonBadIssuerSignature, stale)
		}
		cert = &certEntry{root: root.Key.Bytes()}
		// The key is parsed now, while the entry is built, but a bad one is only
		// reported at step 5, where the spec puts it.
		if k, err := sm2sig.NewPublicKey(c.IssuerKey[:]); err == nil {
			cert.issuerKey = k
		}
		v.certs.put(c.IssuerCert(), cert)
	}

	// 4. Certificate validity, revocation, allow-list: every time, never cached.
	if time.Unix(int64(c.CertNotAfter), 0).Before(t) {
		return invalid(ReasonIssuerCertExpired, stale)
	}
	if snap.IssuerRevoked(c.IssuerID, c.CertSerial) {
		return invalid(ReasonRevokedIssuer, stale)
	}
	if v.allow != nil {
		if _, ok := v.allow[c.IssuerID]; !ok {
			return invalid(ReasonIssuerNotAllowed, stale)
		}
	}

	// 5. Issuer signature over the holder credential.
	if cert.issuerKey == nil {
		return invalid(ReasonBadKey, stale)
	}
	if !cert.issuerKey.Verify(c.CredSigned(), c.IssuerSig[:]) {
		return invalid(ReasonBadCredentialSignature, stale)
	}

	// 6. Credential validity.
	credNotAfter := time.Unix(int64(c.CredNotAfter), 0)
	if credNotAfter.Before(t) {
		return invalid(ReasonCredentialExpired, stale)
	}

	// 7. Holder signature over the whole code.
	holder, err := sm2sig.NewPublicKey(c.HolderKey[:])
	if err != nil {
		return invalid(ReasonBadKey, stale)
	}
	if !holder.Verify(c.CodeSigned(), c.HolderSig[:]) {
		return invalid(ReasonBadCodeSignature, stale)
	}

	gen := time.Unix(int64(c.GeneratedAt), 0)
	expiresAt := gen.Add(time.Duration(c.Validity) * time.Second)
	res := Result{
		Status:      StatusInvalid,
		TrustStale:  stale,
		EHCID:       c.EHCIDHex(),
		Category:    c.Category,
		IssuerID:    c.IssuerID,
		CertSerial:  c.CertSerial,
		RootIndex:   c.RootIndex,
		GeneratedAt: gen,
		ExpiresAt:   expiresAt,
		Sequence:    c.Sequence,
	}
	if len(c.Extension) > 0 {
		res.Extension = strings.ToUpper(hex.EncodeToString(c.Extension))
	}

	// 8. Code time window.
	switch {
	case gen.After(credNotAfter):
		res.Reason = ReasonCredentialExpired
	case t.Before(gen.Add(-v.skew)):
		res.Reason = ReasonNotYetValid
	case t.After(expiresAt.Add(v.skew)):
		res.Reason = ReasonCodeExpired
	}
	if res.Reason != "" {
		return res
	}

	// 9. Revocation of the holder.
	holderSM3 := sm3.Sum(c.HolderKey[:])
	if snap.EHCIDRevoked(&c.EHCID) || snap.HolderKeyRevoked(&holderSM3) {
		res.Reason = ReasonRevoked
		return res
	}

	// 10. Replay.
	if v.rc != nil {
		r := replay.Read{
			Key:    replay.NewKey(&holderSM3, c.GeneratedAt, c.Sequence),
			Device: device,
			// Step 8 compares whole seconds, so the code is still accepted up to
			// the end of its last second: the entry must outlive that second.
			Expires: expiresAt.Add(v.skew + time.Second),
		}
		copy(r.Fingerprint[:], c.HolderSig[:32])
		switch v.rc.Admit(&r, v.window, now) {
		case replay.Replayed:
			res.Reason = ReasonReplayed
			return res
		case replay.DoubleRead:
			res.DoubleRead = true
		}
	}
	res.Status = StatusValid
	return res
}

var codeBufs = sync.Pool{New: func() any { return new(ehc1.Buffer) }}

// certEntry is an issuer certificate whose root signature verified.
type certEntry struct {
	root      [sm2sig.UncompressedSize]byte // the root key that verified it
	issuerKey *sm2sig.PublicKey             // nil: the certified key is not on the curve
}

// certCache maps certificate bytes (IssuerCert: fields and root signature) to their
// verification. Only root-signed certificates get in, so an attacker cannot fill it
// with junk; when full, an arbitrary entry makes room — real deployments see a few
// dozen issuer certificates, far below the bound.
type certCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*certEntry
}

func (c *certCache) get(cert []byte, root *sm2sig.PublicKey) *certEntry {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.m[string(cert)]
	c.mu.RUnlock()
	if e == nil || e.root != root.Bytes() {
		return nil
	}
	return e
}

func (c *certCache) put(cert []byte, e *certEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(cert)]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[string(cert)] = e
}

// CachedCerts returns the number of cached issuer certificates, for metrics and tests.
func (v *Verifier) CachedCerts() int {
	if v.certs == nil {
		return 0
	}
	v.certs.mu.RLock()
	defer v.certs.mu.RUnlock()
	return len(v.certs.m)
}
