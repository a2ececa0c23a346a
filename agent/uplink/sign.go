package uplink

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// AuthScheme is the scheme of the Authorization header (PLATFORM.md, Authentication).
const AuthScheme = "EHC-SM2"

// EmptyBodyHash is lowercase hex SM3 of the empty string: the body hash of a request
// without a body.
const EmptyBodyHash = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"

// BodyHash returns lowercase hex SM3(body), the last line of the signed string.
func BodyHash(body []byte) string {
	h := sm3.Sum(body)
	return hex.EncodeToString(h[:])
}

// SignedString returns the five lines a request signature covers: method, path (with
// "?" and the raw query exactly as sent, only when the query is not empty), ts, nonce
// and the body hash, joined by "\n" with no trailing newline.
func SignedString(method, path, rawQuery string, ts int64, nonce string, body []byte) string {
	var b strings.Builder
	b.Grow(len(method) + len(path) + len(rawQuery) + 20 + len(nonce) + 64 + 6)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(path)
	if rawQuery != "" {
		b.WriteByte('?')
		b.WriteString(rawQuery)
	}
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(ts, 10))
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.WriteString(BodyHash(body))
	return b.String()
}

// Authorization returns the header value, in the one form the spec allows: no spaces
// after the scheme, fields in this order, sig as padded standard base64 of r ‖ s.
func Authorization(terminal string, ts int64, nonce string, sig []byte) string {
	return AuthScheme + " terminal=" + terminal + ",ts=" + strconv.FormatInt(ts, 10) +
		",nonce=" + nonce + ",sig=" + base64.StdEncoding.EncodeToString(sig)
}

// NewNonce returns 8 random bytes as 16 lowercase hex digits.
func NewNonce() (string, error) {
	var n [8]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(n[:]), nil
}

// Sign returns the Authorization header value for one attempt of a request: it picks
// a fresh nonce and signs with a fresh (hedged) SM2 nonce k.
func Sign(key *sm2.PrivateKey, terminal, method, path, rawQuery string, ts int64, body []byte) (string, error) {
	nonce, err := NewNonce()
	if err != nil {
		return "", err
	}
	sig, err := sm2sig.Sign(key, []byte(SignedString(method, path, rawQuery, ts, nonce, body)))
	if err != nil {
		return "", err
	}
	return Authorization(terminal, ts, nonce, sig), nil
}
