// Package sm2sig holds the SM2 conventions every signature in the project follows
// (CODES.md, "Signatures are SM2 with SM3 and the default user ID"; PLATFORM.md,
// Authentication): SM2 over SM3 with the signer's Z value computed from the default user ID
// "1234567812345678" (GB/T 32918.2, GM/T 0009), and signatures on the wire as raw
// 32-byte r ‖ 32-byte s, never DER.
//
// Guarantees:
//   - A PublicKey is always a point on the SM2 curve (never the point at infinity): every
//     constructor rejects anything else with an error wrapping ErrBadKey, so callers can
//     map it to the `bad_key` reason.
//   - Verify rejects a signature that is not exactly 64 bytes, or whose r or s is 0 or not
//     below the curve order, before any curve arithmetic.
//   - Sign always uses the default user ID; its output verifies with Verify and with any
//     GB/T 32918 implementation given the same ID (tested against OpenSSL 3).
//   - Everything here is safe for concurrent use; a PublicKey is immutable.
package sm2sig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// DefaultUID is the SM2 user ID all signatures in the project are bound to.
const DefaultUID = "1234567812345678"

// Sizes of the wire forms.
const (
	SignatureSize     = 64 // r ‖ s, 32 bytes each, big-endian
	UncompressedSize  = 65 // 04 ‖ X ‖ Y
	CompressedSize    = 33 // 02|03 ‖ X
	PrivateKeySize    = 32
	uncompressedHexSz = 2 * UncompressedSize
)

// ErrBadKey is wrapped by every error about a public key that is not an SM2 curve point
// in an accepted encoding.
var ErrBadKey = errors.New("sm2sig: not a public key on the SM2 curve")

var (
	curve = sm2.P256()
	order = curve.Params().N
	// orderBytes is n big-endian, for comparing raw r and s without big.Int.
	orderBytes = order.FillBytes(make([]byte, 32))
	// zaPrefix is ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG, the key-independent head of Z.
	zaPrefix = func() []byte {
		p := curve.Params()
		b := []byte{0, byte(8 * len(DefaultUID))}
		b = append(b, DefaultUID...)
		a := new(big.Int).Sub(p.P, big.NewInt(3))
		for _, v := range []*big.Int{a, p.B, p.Gx, p.Gy} {
			b = append(b, v.FillBytes(make([]byte, 32))...)
		}
		return b
	}()
)

// PublicKey is a validated SM2 public key with its Z value (GB/T 32918.2 §5.5, default
// user ID) computed once, so that each verification costs one SM3 over the message.
type PublicKey struct {
	ec  ecdsa.PublicKey // by value: one allocation per key, not two
	raw [UncompressedSize]byte
	za  [sm3.Size]byte
}

// NewPublicKey parses a SEC1 point: 65 bytes uncompressed (04 ‖ X ‖ Y) or 33 bytes
// compressed (02/03 ‖ X). It fails with ErrBadKey for any other length or prefix, for a
// coordinate not below p, and for a point not on the curve.
func NewPublicKey(b []byte) (*PublicKey, error) {
	switch {
	case len(b) == UncompressedSize && b[0] == 4:
		k, err := sm2.NewPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		return fromValid(k.X, k.Y), nil
	case len(b) == CompressedSize && (b[0] == 2 || b[0] == 3):
		// The curve's own UnmarshalCompressed rejects x ≥ p and x with no square root.
		type compressedUnmarshaler interface {
			UnmarshalCompressed([]byte) (x, y *big.Int)
		}
		x, y := curve.(compressedUnmarshaler).UnmarshalCompressed(b)
		if x == nil {
			return nil, fmt.Errorf("%w: compressed point does not decode", ErrBadKey)
		}
		return fromValid(x, y), nil
	default:
		return nil, fmt.Errorf("%w: %d bytes starting %#02x is neither a compressed nor an uncompressed point", ErrBadKey, len(b), first(b))
	}
}

func first(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// FromECDSA wraps an ecdsa.PublicKey on the SM2 curve (as smx509 and sm2.PrivateKey
// return them).
func FromECDSA(pub *ecdsa.PublicKey) (*PublicKey, error) {
	if pub == nil || pub.Curve != curve || pub.X == nil || pub.Y == nil ||
		pub.X.Sign() < 0 || pub.Y.Sign() < 0 || pub.X.BitLen() > 256 || pub.Y.BitLen() > 256 {
		return nil, fmt.Errorf("%w: not an SM2 curve key", ErrBadKey)
	}
	var raw [UncompressedSize]byte
	raw[0] = 4
	pub.X.FillBytes(raw[1:33])
	pub.Y.FillBytes(raw[33:])
	return NewPublicKey(raw[:])
}

// fromValid builds a PublicKey from coordinates of a point known to be on the curve.
func fromValid(x, y *big.Int) *PublicKey {
	k := &PublicKey{ec: ecdsa.PublicKey{Curve: curve, X: x, Y: y}}
	k.raw[0] = 4
	x.FillBytes(k.raw[1:33])
	y.FillBytes(k.raw[33:])
	h := sm3.New()
	h.Write(zaPrefix)
	h.Write(k.raw[1:])
	h.Sum(k.za[:0])
	return k
}

// ParsePublicKeyHex parses 130 hex digits (uncompressed) or 66 (compressed), either case.
// ASCII white space anywhere is ignored, so that a key copied from a document in
// groups ("04 09F9… CCEA…") parses.
func ParsePublicKeyHex(s string) (*PublicKey, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\r', '\n':
		default:
			clean = append(clean, c)
		}
	}
	if len(clean) != uncompressedHexSz && len(clean) != 2*CompressedSize {
		return nil, fmt.Errorf("%w: %d hex digits, want %d (uncompressed) or %d (compressed)", ErrBadKey, len(clean), uncompressedHexSz, 2*CompressedSize)
	}
	b := make([]byte, len(clean)/2)
	if _, err := hex.Decode(b, clean); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return NewPublicKey(b)
}

// ParsePublicKeyText parses the text forms keys are configured in: a PEM block "PUBLIC
// KEY" (SubjectPublicKeyInfo, as `openssl pkey -pubout` writes for an SM2 key) or hex as
// ParsePublicKeyHex accepts.
func ParsePublicKeyText(b []byte) (*PublicKey, error) {
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(t, []byte("-----BEGIN")) {
		blk, rest := pem.Decode(t)
		if blk == nil || blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("%w: PEM is not a single PUBLIC KEY block", ErrBadKey)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: data after the PEM block", ErrBadKey)
		}
		k, err := smx509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		ec, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: PEM key is a %T, not SM2", ErrBadKey, k)
		}
		return FromECDSA(ec)
	}
	return ParsePublicKeyHex(string(t))
}

// ECDSA returns the key in the form gmsm's and the standard library's APIs take.
// The caller must not modify it.
func (k *PublicKey) ECDSA() *ecdsa.PublicKey { return &k.ec }

// Bytes returns the uncompressed encoding 04 ‖ X ‖ Y.
func (k *PublicKey) Bytes() [UncompressedSize]byte { return k.raw }

// Compressed returns the SEC1 compressed encoding, as EHC1 codes carry keys.
func (k *PublicKey) Compressed() [CompressedSize]byte {
	var c [CompressedSize]byte
	c[0] = 2 | k.raw[UncompressedSize-1]&1
	copy(c[1:], k.raw[1:33])
	return c
}

// Hex returns the uncompressed encoding as 130 uppercase hex digits, the form trust
// documents and configuration carry.
func (k *PublicKey) Hex() string { return fmt.Sprintf("%X", k.raw[:]) }

// Equal reports whether k and o are the same point.
func (k *PublicKey) Equal(o *PublicKey) bool { return o != nil && k.raw == o.raw }

// MarshalPEM returns the key as a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo with the
// SM2 curve OID), the form OpenSSL reads.
func (k *PublicKey) MarshalPEM() ([]byte, error) {
	der, err := smx509.MarshalPKIXPublicKey(&k.ec)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Digest returns e = SM3(Z ‖ msg), the value an SM2 signature over msg signs.
func (k *PublicKey) Digest(msg []byte) [sm3.Size]byte {
	var e [sm3.Size]byte
	k.digest(&e, msg)
	return e
}

func (k *PublicKey) digest(e *[sm3.Size]byte, msg []byte) {
	h := sm3.New()
	h.Write(k.za[:])
	h.Write(msg)
	h.Sum(e[:0])
}

// Verify reports whether rs (raw r ‖ s) is a valid signature of msg by k under the
// default user ID. A nil key verifies nothing.
func (k *PublicKey) Verify(msg, rs []byte) bool {
	if k == nil || !rsOK(rs) {
		return false
	}
	// gmsm's escape analysis sends the digest and the signature to the heap, though
	// nothing keeps them once VerifyASN1 returns: they come from a pool, so a
	// verification allocates neither.
	s := scratchPool.Get().(*scratch)
	k.digest(&s.e, msg)
	ok := sm2.VerifyASN1(&k.ec, s.e[:], rawToDER(s.der[:0], rs))
	scratchPool.Put(s)
	return ok
}

type scratch struct {
	e   [sm3.Size]byte
	der [maxDER]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// VerifyDigest is Verify for a caller that already computed e with Digest.
func (k *PublicKey) VerifyDigest(e, rs []byte) bool {
	if k == nil || !rsOK(rs) {
		return false
	}
	var der [maxDER]byte
	return sm2.VerifyASN1(&k.ec, e, rawToDER(der[:0], rs))
}

// maxDER is the longest DER of an r ‖ s: SEQUENCE of two INTEGERs of 33 bytes.
const maxDER = 2 + 2*(2+33)

// rsOK checks a raw signature's length and that r and s are in [1, n-1]: the
// conditions CODES.md makes a signature failure before any arithmetic.
func rsOK(rs []byte) bool {
	return len(rs) == SignatureSize && scalarOK(rs[:32]) && scalarOK(rs[32:])
}

// Verify reports whether rs is a valid raw r ‖ s signature of msg by pub, with the
// default user ID. A nil key verifies nothing.
func Verify(pub *PublicKey, msg, rs []byte) bool { return pub.Verify(msg, rs) }

// scalarOK reports whether the 32-byte big-endian v is in [1, n-1].
func scalarOK(v []byte) bool {
	zero := true
	for _, c := range v {
		if c != 0 {
			zero = false
			break
		}
	}
	return !zero && bytes.Compare(v, orderBytes) < 0
}

// rawToDER appends the DER SEQUENCE { INTEGER r, INTEGER s } of a 64-byte r ‖ s whose
// halves are non-zero. Lengths stay below 128, so every length is one byte.
func rawToDER(dst, rs []byte) []byte {
	intLen := func(v []byte) ([]byte, int) {
		for len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		n := len(v)
		if v[0]&0x80 != 0 {
			n++
		}
		return v, n
	}
	r, rn := intLen(rs[:32])
	s, sn := intLen(rs[32:])
	dst = append(dst, 0x30, byte(2+rn+2+sn))
	for _, p := range []struct {
		v []byte
		n int
	}{{r, rn}, {s, sn}} {
		dst = append(dst, 0x02, byte(p.n))
		if p.n > len(p.v) {
			dst = append(dst, 0)
		}
		dst = append(dst, p.v...)
	}
	return dst
}

// RawToDER converts a raw r ‖ s signature to DER, for tools (OpenSSL) that want DER.
func RawToDER(rs []byte) ([]byte, error) {
	if !rsOK(rs) {
		return nil, errors.New("sm2sig: not a 64-byte signature with r and s in [1, n-1]")
	}
	return rawToDER(nil, rs), nil
}

// DERToRaw converts a DER SEQUENCE { INTEGER r, INTEGER s } (as OpenSSL and gmsm emit)
// to raw r ‖ s. It rejects trailing data, negative or oversized integers and zero.
func DERToRaw(der []byte) ([]byte, error) {
	var inner cryptobyte.String
	var r, s *big.Int = new(big.Int), new(big.Int)
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, errors.New("sm2sig: signature is not a DER SEQUENCE of two INTEGERs")
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(order) >= 0 || s.Cmp(order) >= 0 {
		return nil, errors.New("sm2sig: signature r or s outside [1, n-1]")
	}
	out := make([]byte, SignatureSize)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// GenerateKey returns a new SM2 private key from crypto/rand.
func GenerateKey() (*sm2.PrivateKey, error) { return sm2.GenerateKey(rand.Reader) }

// Sign signs msg with priv under the default user ID and returns raw r ‖ s. The nonce
// is hedged (gmsm derives it from the key, the digest and fresh randomness), so a weak
// RNG does not leak the key.
func Sign(priv *sm2.PrivateKey, msg []byte) ([]byte, error) {
	// Hashing here rather than passing DefaultSM2SignerOpts: gmsm refuses an empty
	// message in that mode, though SM2 signs one like any other.
	e := Public(priv).Digest(msg)
	der, err := priv.Sign(rand.Reader, e[:], nil)
	if err != nil {
		return nil, err
	}
	return DERToRaw(der)
}

// SignDeterministic is Sign with an RFC 6979 nonce (HMAC-SM3): the same key and message
// always give the same signature. The issuer tools use it for certificates and
// credentials, which a real issuer signs once and the holder's app then reuses.
func SignDeterministic(priv *sm2.PrivateKey, msg []byte) ([]byte, error) {
	e := Public(priv).Digest(msg)
	der, err := priv.Sign(nil, e[:], nil)
	if err != nil {
		return nil, err
	}
	return DERToRaw(der)
}

// Public returns priv's public key.
func Public(priv *sm2.PrivateKey) *PublicKey {
	k, err := FromECDSA(&priv.PublicKey)
	if err != nil {
		// An sm2.PrivateKey from gmsm always carries its valid public point.
		panic("sm2sig: private key with an invalid public point: " + err.Error())
	}
	return k
}

// ParsePrivateKey parses a private key from a PEM block "PRIVATE KEY" (PKCS#8, as
// `openssl genpkey -algorithm SM2` writes) or "EC PRIVATE KEY" (SEC1), or from 64 hex
// digits of d.
func ParsePrivateKey(b []byte) (*sm2.PrivateKey, error) {
	t := bytes.TrimSpace(b)
	if !bytes.HasPrefix(t, []byte("-----BEGIN")) {
		d, err := hex.DecodeString(string(t))
		if err != nil || len(d) != PrivateKeySize {
			return nil, errors.New("sm2sig: private key is neither PEM nor 64 hex digits")
		}
		return sm2.NewPrivateKey(d)
	}
	blk, rest := pem.Decode(t)
	if blk == nil || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("sm2sig: private key PEM is not a single block")
	}
	var key any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = smx509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = smx509.ParseTypedECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("sm2sig: PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("sm2sig: %w", err)
	}
	switch k := key.(type) {
	case *sm2.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve != curve {
			return nil, errors.New("sm2sig: EC private key is not on the SM2 curve")
		}
		return new(sm2.PrivateKey).FromECPrivateKey(k)
	default:
		return nil, fmt.Errorf("sm2sig: private key is a %T, not SM2", key)
	}
}

// MarshalPrivateKeyPEM returns priv as a PEM "PRIVATE KEY" block (PKCS#8), the form
// OpenSSL reads.
func MarshalPrivateKeyPEM(priv *sm2.PrivateKey) ([]byte, error) {
	der, err := smx509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// OffCurveCompressed returns a 33-byte compressed encoding (prefix 02) whose x is below
// p but is the x of no curve point: the smallest such x. Test and demo tools use it to
// build a `bad_key` code; nothing else should.
func OffCurveCompressed() [CompressedSize]byte {
	var c [CompressedSize]byte
	c[0] = 2
	for x := byte(1); ; x++ {
		c[CompressedSize-1] = x
		if _, err := NewPublicKey(c[:]); err != nil {
			return c
		}
	}
}
