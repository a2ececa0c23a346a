package bench

import (
	"math/big"
	"time"

	tjsm2 "github.com/tjfoc/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/offline/verify"
	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
	"github.com/emmansun/gmsm/sm3"
)

// TjfocVerifier runs the checks of offline/verify (CODES.md, "Verification, in this
// order", steps 1 to 9; step 10, replay, is left out on both sides of the comparison)
// with tjfoc/gmsm doing the curve work, written the way an integrator of that library
// would: its Sm2Verify (which hashes Z from the default user ID on every call) and its
// Decompress for the compressed keys the code carries.
//
// The parts that are not cryptography are the agent's own (Base45 and the binary form
// via protocol/ehc1, the trust snapshot), so that the comparison measures the SM2 library
// and nothing else. Two corrections a correct integration of tjfoc v1.4.1 needs:
//   - Decompress expects the parity of y as 0/1 in the first byte, not SEC1's 02/03
//     (given 02/03 it returns the wrong point for about half of the keys), and panics
//     on an x with no square root: the prefix is mapped and the panic recovered.
//   - Sm2Verify does not check that the key is on the curve: IsOnCurve is called, as
//     the agent's sm2sig does, so that bad_key is reported where the spec puts it.
type TjfocVerifier struct {
	ts    *trust.Store
	roots map[[65]byte]*tjsm2.PublicKey // the trust store's root keys, converted once
	certs map[string]*tjsm2.PublicKey   // nil: no certificate cache
	skew  time.Duration
}

// NewTjfocVerifier returns a verifier over ts. With cache, issuer certificates whose
// root signature verified are remembered by their bytes, as offline/verify does (two
// signatures a code instead of three).
func NewTjfocVerifier(ts *trust.Store, cache bool) *TjfocVerifier {
	v := &TjfocVerifier{ts: ts, roots: map[[65]byte]*tjsm2.PublicKey{}, skew: verify.DefaultSkew}
	for _, r := range ts.Snapshot().Roots() {
		raw := r.Key.Bytes()
		v.roots[raw] = &tjsm2.PublicKey{Curve: tjsm2.P256Sm2(), X: new(big.Int).SetBytes(raw[1:33]), Y: new(big.Int).SetBytes(raw[33:])}
	}
	if cache {
		v.certs = map[string]*tjsm2.PublicKey{}
	}
	return v
}

// tjDecompress decodes a SEC1 compressed key with tjfoc, or returns nil.
func tjDecompress(c *[33]byte) (k *tjsm2.PublicKey) {
	if c[0] != 2 && c[0] != 3 {
		return nil
	}
	defer func() {
		if recover() != nil {
			k = nil
		}
	}()
	var b [33]byte
	b[0] = c[0] - 2
	copy(b[1:], c[1:])
	k = tjsm2.Decompress(b[:])
	if k.X.Cmp(k.Curve.Params().P) >= 0 || !k.Curve.IsOnCurve(k.X, k.Y) {
		return nil
	}
	return k
}

func tjVerify(k *tjsm2.PublicKey, msg []byte, rs *[64]byte) bool {
	r := new(big.Int).SetBytes(rs[:32])
	s := new(big.Int).SetBytes(rs[32:])
	return tjsm2.Sm2Verify(k, msg, nil, r, s) // nil uid: tjfoc's default, "1234567812345678"
}

// Verify returns the EHC ID of a valid code, or the reason of the first failed step.
func (v *TjfocVerifier) Verify(text []byte, now time.Time) (reason, ehcID string) {
	snap := v.ts.Snapshot()
	t := time.Unix(now.Unix(), 0)
	c, err := ehc1.ParseText(text)
	if err != nil {
		if e, ok := err.(*ehc1.Error); ok && e.Reason == ehc1.ReasonUnsupportedVersion {
			return verify.ReasonUnsupportedVersion, ""
		}
		return verify.ReasonMalformed, ""
	}
	root := snap.Root(c.RootIndex)
	if root == nil {
		return verify.ReasonUnknownRootKey, ""
	}
	if !root.ValidAt(t) {
		return verify.ReasonRootKeyExpired, ""
	}
	var issuerKey *tjsm2.PublicKey
	cached := false
	if v.certs != nil {
		issuerKey, cached = v.certs[string(c.IssuerCert())]
	}
	if !cached {
		if !tjVerify(v.roots[root.Key.Bytes()], c.CertSigned(), &c.RootSig) {
			return verify.ReasonBadIssuerSignature, ""
		}
		issuerKey = tjDecompress(&c.IssuerKey)
		if v.certs != nil {
			v.certs[string(c.IssuerCert())] = issuerKey
		}
	}
	if time.Unix(int64(c.CertNotAfter), 0).Before(t) {
		return verify.ReasonIssuerCertExpired, ""
	}
	if snap.IssuerRevoked(c.IssuerID, c.CertSerial) {
		return verify.ReasonRevokedIssuer, ""
	}
	if issuerKey == nil {
		return verify.ReasonBadKey, ""
	}
	if !tjVerify(issuerKey, c.CredSigned(), &c.IssuerSig) {
		return verify.ReasonBadCredentialSignature, ""
	}
	credNotAfter := time.Unix(int64(c.CredNotAfter), 0)
	if credNotAfter.Before(t) {
		return verify.ReasonCredentialExpired, ""
	}
	holder := tjDecompress(&c.HolderKey)
	if holder == nil {
		return verify.ReasonBadKey, ""
	}
	if !tjVerify(holder, c.CodeSigned(), &c.HolderSig) {
		return verify.ReasonBadCodeSignature, ""
	}
	ehcID = c.EHCIDHex() // what a valid result reports, as offline/verify fills it here
	gen := time.Unix(int64(c.GeneratedAt), 0)
	switch {
	case gen.After(credNotAfter):
		return verify.ReasonCredentialExpired, ""
	case t.Before(gen.Add(-v.skew)):
		return verify.ReasonNotYetValid, ""
	case t.After(gen.Add(time.Duration(c.Validity)*time.Second + v.skew)):
		return verify.ReasonCodeExpired, ""
	}
	holderSM3 := sm3.Sum(c.HolderKey[:])
	if snap.EHCIDRevoked(&c.EHCID) || snap.HolderKeyRevoked(&holderSM3) {
		return verify.ReasonRevoked, ""
	}
	return "", ehcID
}
