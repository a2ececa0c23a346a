// Package issuer is a test and demo issuer: it makes the keys of a whole EHC1 trust
// chain (trust anchor, root keys, an issuer, holders), the signed trust documents of
// CODES.md ("Trust documents"), and EHC1 codes (CODES.md, "EHC1 offline dynamic code")
// — valid ones, or ones with one chosen defect that verification must catch at a known
// step.
//
// It is not a production issuer: private keys are written unencrypted (PKCS#8 PEM,
// mode 0600) next to the public documents. Guarantees that tests rely on:
//   - A code with no defect verifies as valid at CodeOptions.At against the directory's
//     trust documents; a code with defect D fails with Defects[D].Reason, and with no
//     earlier reason (each defect breaks exactly one thing).
//   - Certificates and credentials are signed deterministically (RFC 6979 nonces), so
//     every code of one holder carries identical certificate bytes, as a real holder
//     app's codes do, and the verifier's certificate cache sees them as one.
package issuer

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/protocol/base45"
	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
)

// Files of a keys directory, besides trust.AnchorFile, trust.KeySetFile and
// trust.RevocationsFile (so that the directory is also a trust directory).
const (
	ParamsFile           = "keys.json"
	AnchorKeyFile        = "anchor.key"
	IssuerKeyFile        = "issuer.key"
	HolderKeyFile        = "holder.key"
	RevokedHolderKeyFile = "holder-revoked.key"
)

// RootKeyFile is the file of root key index i.
func RootKeyFile(i uint8) string { return fmt.Sprintf("root-%d.key", i) }

// Params are the public facts of a keys directory (ParamsFile).
type Params struct {
	CreatedAt         time.Time `json:"created_at"`
	RootIndex         uint8     `json:"root_index"`          // the valid root
	ExpiredRootIndex  uint8     `json:"expired_root_index"`  // in the key set, window over
	UnknownRootIndex  uint8     `json:"unknown_root_index"`  // not in the key set
	IssuerID          uint32    `json:"issuer_id"`           //
	CertSerial        uint32    `json:"cert_serial"`         // the good certificate
	RevokedCertSerial uint32    `json:"revoked_cert_serial"` // listed in revocations.json
	CertNotAfter      time.Time `json:"cert_not_after"`
	EHCID             string    `json:"ehc_id"`         // the holder's
	RevokedEHCID      string    `json:"revoked_ehc_id"` // listed in revocations.json
	Category          uint8     `json:"category"`
	CredNotAfter      time.Time `json:"cred_not_after"`
	Validity          uint16    `json:"validity"` // seconds, of each code
	KeySetVersion     uint64    `json:"keyset_version"`
	RevocationVersion uint64    `json:"revocations_version"`
	NextUpdate        time.Time `json:"next_update"`
}

// Keys is a loaded keys directory.
type Keys struct {
	Params
	Anchor        *sm2.PrivateKey
	Roots         map[uint8]*sm2.PrivateKey // RootIndex and ExpiredRootIndex
	Issuer        *sm2.PrivateKey
	Holder        *sm2.PrivateKey
	RevokedHolder *sm2.PrivateKey // its SM3 is listed in revocations.json
}

// GenerateOptions tune GenerateKeys. The zero value is fine.
type GenerateOptions struct {
	// Now anchors every validity window (default: the current time). Fixed for
	// reproducible conformance vectors.
	Now time.Time
}

// GenerateKeys creates dir (if needed) and writes a fresh trust chain into it: private
// keys, ParamsFile, and the trust directory files (anchor.pub, keyset.json,
// revocations.json) signed by the new anchor.
//
// Windows, from Now: root RootIndex valid from a day before for five years; root
// ExpiredRootIndex valid from three years before to two years before; certificate
// valid two years, credential one year; the key set's next_update is 30 days ahead (a
// demo keeps working a month before results carry trust_stale, and still verifies
// after that).
func GenerateKeys(dir string, o GenerateOptions) (*Keys, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	k := &Keys{Roots: map[uint8]*sm2.PrivateKey{}}
	k.Params = Params{
		CreatedAt: now, RootIndex: 1, ExpiredRootIndex: 2, UnknownRootIndex: 9,
		IssuerID: 4401, CertSerial: 18, RevokedCertSerial: 17,
		CertNotAfter: now.AddDate(2, 0, 0), Category: 1, CredNotAfter: now.AddDate(1, 0, 0),
		Validity: 60, KeySetVersion: 1, RevocationVersion: 1, NextUpdate: now.AddDate(0, 0, 30),
	}
	var id [64]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	k.EHCID = strings.ToUpper(hex.EncodeToString(id[:32]))
	k.RevokedEHCID = strings.ToUpper(hex.EncodeToString(id[32:]))
	for _, p := range []**sm2.PrivateKey{&k.Anchor, &k.Issuer, &k.Holder, &k.RevokedHolder} {
		key, err := sm2sig.GenerateKey()
		if err != nil {
			return nil, err
		}
		*p = key
	}
	for _, i := range []uint8{k.RootIndex, k.ExpiredRootIndex} {
		key, err := sm2sig.GenerateKey()
		if err != nil {
			return nil, err
		}
		k.Roots[i] = key
	}
	if err := k.write(dir); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keys) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	put := func(name string, data []byte, mode os.FileMode) error {
		return os.WriteFile(filepath.Join(dir, name), data, mode)
	}
	keys := map[string]*sm2.PrivateKey{
		AnchorKeyFile: k.Anchor, IssuerKeyFile: k.Issuer, HolderKeyFile: k.Holder,
		RevokedHolderKeyFile: k.RevokedHolder,
	}
	for i, r := range k.Roots {
		keys[RootKeyFile(i)] = r
	}
	for name, key := range keys {
		p, err := sm2sig.MarshalPrivateKeyPEM(key)
		if err != nil {
			return err
		}
		if err := put(name, p, 0o600); err != nil {
			return err
		}
	}
	params, err := json.MarshalIndent(k.Params, "", "  ")
	if err != nil {
		return err
	}
	ks, err := k.KeySetEnvelope()
	if err != nil {
		return err
	}
	rv, err := k.RevocationsEnvelope()
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		ParamsFile:            append(params, '\n'),
		trust.AnchorFile:      []byte(sm2sig.Public(k.Anchor).Hex() + "\n"),
		trust.KeySetFile:      append(ks, '\n'),
		trust.RevocationsFile: append(rv, '\n'),
	} {
		if err := put(name, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// LoadKeys reads a directory GenerateKeys wrote.
func LoadKeys(dir string) (*Keys, error) {
	k := &Keys{Roots: map[uint8]*sm2.PrivateKey{}}
	b, err := os.ReadFile(filepath.Join(dir, ParamsFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &k.Params); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ParamsFile), err)
	}
	load := func(name string) (*sm2.PrivateKey, error) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		key, err := sm2sig.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return key, nil
	}
	for name, dst := range map[string]**sm2.PrivateKey{
		AnchorKeyFile: &k.Anchor, IssuerKeyFile: &k.Issuer, HolderKeyFile: &k.Holder,
		RevokedHolderKeyFile: &k.RevokedHolder,
	} {
		if *dst, err = load(name); err != nil {
			return nil, err
		}
	}
	for _, i := range []uint8{k.RootIndex, k.ExpiredRootIndex} {
		if k.Roots[i], err = load(RootKeyFile(i)); err != nil {
			return nil, err
		}
	}
	if _, err := hex32(k.EHCID); err != nil {
		return nil, fmt.Errorf("%s: ehc_id: %w", filepath.Join(dir, ParamsFile), err)
	}
	if _, err := hex32(k.RevokedEHCID); err != nil {
		return nil, fmt.Errorf("%s: revoked_ehc_id: %w", filepath.Join(dir, ParamsFile), err)
	}
	return k, nil
}

func hex32(s string) ([32]byte, error) {
	b, ok := trust.Hex32(s)
	if !ok {
		return b, errors.New("not 64 hex digits")
	}
	return b, nil
}

// Seal signs payload with the trust anchor into an envelope.
func (k *Keys) Seal(payload []byte) ([]byte, error) {
	return trust.Seal(payload, func(b []byte) ([]byte, error) { return sm2sig.Sign(k.Anchor, b) })
}

// KeySetPayload is the key set document of these keys (not yet signed).
func (k *Keys) KeySetPayload() ([]byte, error) {
	type root struct {
		Index     uint8  `json:"index"`
		PublicKey string `json:"public_key"`
		NotBefore string `json:"not_before"`
		NotAfter  string `json:"not_after"`
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	now := k.CreatedAt
	windows := map[uint8][2]time.Time{
		k.RootIndex:        {now.AddDate(0, 0, -1), now.AddDate(5, 0, 0)},
		k.ExpiredRootIndex: {now.AddDate(-3, 0, 0), now.AddDate(-2, 0, 0)},
	}
	var roots []root
	for i, key := range k.Roots {
		w := windows[i]
		roots = append(roots, root{i, sm2sig.Public(key).Hex(), rfc(w[0]), rfc(w[1])})
	}
	sort.Slice(roots, func(a, b int) bool { return roots[a].Index < roots[b].Index })
	return json.Marshal(struct {
		Version    uint64 `json:"version"`
		IssuedAt   string `json:"issued_at"`
		NextUpdate string `json:"next_update"`
		Roots      []root `json:"roots"`
	}{k.KeySetVersion, rfc(now), rfc(k.NextUpdate), roots})
}

// RevocationsPayload is the revocation document of these keys: the certificate
// (IssuerID, RevokedCertSerial), the EHC ID RevokedEHCID and the key RevokedHolder.
func (k *Keys) RevocationsPayload() ([]byte, error) {
	type issuer struct {
		IssuerID uint32 `json:"issuer_id"`
		Serial   uint32 `json:"serial"`
	}
	rh := sm2sig.Public(k.RevokedHolder).Compressed()
	h := sm3.Sum(rh[:])
	return json.Marshal(struct {
		Version    uint64   `json:"version"`
		IssuedAt   string   `json:"issued_at"`
		Issuers    []issuer `json:"issuers"`
		EHCIDs     []string `json:"ehc_ids"`
		HolderKeys []string `json:"holder_keys"`
	}{k.RevocationVersion, k.CreatedAt.UTC().Format(time.RFC3339),
		[]issuer{{k.IssuerID, k.RevokedCertSerial}}, []string{k.RevokedEHCID},
		[]string{hex.EncodeToString(h[:])}})
}

// KeySetEnvelope is KeySetPayload sealed by the anchor.
func (k *Keys) KeySetEnvelope() ([]byte, error) {
	p, err := k.KeySetPayload()
	if err != nil {
		return nil, err
	}
	return k.Seal(p)
}

// RevocationsEnvelope is RevocationsPayload sealed by the anchor.
func (k *Keys) RevocationsEnvelope() ([]byte, error) {
	p, err := k.RevocationsPayload()
	if err != nil {
		return nil, err
	}
	return k.Seal(p)
}

// Defect is one way NewCode can break a code, and the reason verification reports.
type Defect struct {
	Name   string
	Reason string
	What   string
}

// Defects NewCode knows, by name. The empty name is a valid code.
var Defects = map[string]Defect{}

// DefectNames lists Defects' names, sorted.
func DefectNames() []string {
	var n []string
	for k := range Defects {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func init() {
	for _, d := range []Defect{
		{"malformed", "malformed", "binary form one byte short"},
		{"bad-base45", "malformed", "a character outside the Base45 alphabet"},
		{"bad-prefix", "malformed", `"EHC2:" instead of "EHC1:"`},
		{"bad-validity", "malformed", "code validity 0 s"},
		{"long-extension", "malformed", "extension length 33"},
		{"unsupported-version", "unsupported_version", "version byte 2"},
		{"unsupported-type", "unsupported_version", "code type byte 2"},
		{"unknown-root", "unknown_root_key", "root key index not in the key set"},
		{"root-expired", "root_key_expired", "certificate signed by a root whose window is over"},
		{"bad-root-sig", "bad_issuer_signature", "root signature altered"},
		{"cert-expired", "issuer_cert_expired", "certificate not-after a day before At"},
		{"revoked-issuer", "revoked_issuer", "certificate serial on the revocation list"},
		{"bad-key", "bad_key", "issuer public key not on the curve (root-signed)"},
		{"bad-issuer-sig", "bad_credential_signature", "issuer signature altered"},
		{"credential-expired", "credential_expired", "credential not-after a day before At"},
		{"generated-after-credential", "credential_expired", "generated-at (At+10 s) after the credential's not-after (At)"},
		{"bad-holder-key", "bad_key", "holder public key not on the curve (issuer-signed)"},
		{"bad-holder-sig", "bad_code_signature", "holder signature altered"},
		{"zero-holder-sig", "bad_code_signature", "holder signature r = 0"},
		{"high-holder-sig", "bad_code_signature", "holder signature s = n (the curve order)"},
		{"future", "not_yet_valid", "generated 5 minutes after At"},
		{"expired", "code_expired", "generated an hour before At"},
		{"revoked", "revoked", "EHC ID on the revocation list"},
		{"revoked-holder-key", "revoked", "holder key's SM3 on the revocation list"},
	} {
		Defects[d.Name] = d
	}
}

// CodeOptions describe one code.
type CodeOptions struct {
	// At is when the code is to be verified (default: now). A code without defect
	// is generated at At.
	At time.Time
	// GeneratedAt, when set, overrides the generated-at that At and the defect imply.
	GeneratedAt time.Time
	Sequence    uint32
	// Validity in seconds; 0 means Params.Validity.
	Validity uint16
	// Category; 0 means Params.Category (0 itself cannot be asked for).
	Category  uint8
	Extension []byte
	Defect    string // a key of Defects, or "" for a valid code
}

var curveOrder = sm2.P256().Params().N.FillBytes(make([]byte, 32))

// NewCode returns the text form ("EHC1:…") of a code signed by these keys.
func (k *Keys) NewCode(o CodeOptions) (string, error) {
	if _, ok := Defects[o.Defect]; o.Defect != "" && !ok {
		return "", fmt.Errorf("issuer: unknown defect %q (known: %s)", o.Defect, strings.Join(DefectNames(), ", "))
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	at = at.Truncate(time.Second)
	validity := o.Validity
	if validity == 0 {
		validity = k.Validity
	}
	category := o.Category
	if category == 0 {
		category = k.Category
	}
	ehcID, err := hex32(k.EHCID)
	if err != nil {
		return "", err
	}
	gen := at
	rootIdx, rootKey := k.RootIndex, k.Roots[k.RootIndex]
	serial, certNotAfter, credNotAfter := k.CertSerial, k.CertNotAfter, k.CredNotAfter
	issuerKey := sm2sig.Public(k.Issuer).Compressed()
	holder := k.Holder
	holderKey := sm2sig.Public(holder).Compressed()
	version, typ := uint8(1), uint8(1)
	d := o.Defect
	switch d {
	case "bad-validity":
		validity = 0
	case "unsupported-version":
		version = 2
	case "unsupported-type":
		typ = 2
	case "unknown-root":
		rootIdx = k.UnknownRootIndex
	case "root-expired":
		rootIdx, rootKey = k.ExpiredRootIndex, k.Roots[k.ExpiredRootIndex]
	case "cert-expired":
		certNotAfter = at.AddDate(0, 0, -1)
	case "revoked-issuer":
		serial = k.RevokedCertSerial
	case "bad-key":
		issuerKey = sm2sig.OffCurveCompressed()
	case "credential-expired":
		credNotAfter = at.AddDate(0, 0, -1)
	case "generated-after-credential":
		credNotAfter, gen = at, at.Add(10*time.Second)
	case "bad-holder-key":
		holderKey = sm2sig.OffCurveCompressed()
	case "future":
		gen = at.Add(5 * time.Minute)
	case "expired":
		gen = at.Add(-time.Hour)
	case "revoked":
		if ehcID, err = hex32(k.RevokedEHCID); err != nil {
			return "", err
		}
	case "revoked-holder-key":
		holder = k.RevokedHolder
		holderKey = sm2sig.Public(holder).Compressed()
	}
	if !o.GeneratedAt.IsZero() {
		gen = o.GeneratedAt
	}
	ext := o.Extension
	if d == "long-extension" {
		ext = make([]byte, ehc1.MaxExtension+1)
	}
	c := &ehc1.Code{
		Version: version, Type: typ, RootIndex: rootIdx,
		IssuerID: k.IssuerID, CertSerial: serial, CertNotAfter: unix32(certNotAfter),
		IssuerKey: issuerKey, EHCID: ehcID, Category: category, HolderKey: holderKey,
		CredNotAfter: unix32(credNotAfter), Validity: validity, Extension: ext,
		GeneratedAt: unix32(gen), Sequence: o.Sequence,
	}
	// Each signature covers the ones before it, so each is made over the final bytes
	// of what it covers, and a defect in an earlier signature is applied before the
	// later ones sign over it: the later signatures stay valid.
	c.Marshal()
	sig, err := sm2sig.SignDeterministic(rootKey, c.CertSigned())
	if err != nil {
		return "", err
	}
	copy(c.RootSig[:], sig)
	if d == "bad-root-sig" {
		c.RootSig[20] ^= 0x01
	}
	c.Marshal()
	if d == "bad-key" {
		// The issuer key is no key, so no issuer signature can exist: any 64 bytes.
		copy(c.IssuerSig[:], sig)
	} else {
		if sig, err = sm2sig.SignDeterministic(k.Issuer, c.CredSigned()); err != nil {
			return "", err
		}
		copy(c.IssuerSig[:], sig)
	}
	if d == "bad-issuer-sig" {
		c.IssuerSig[40] ^= 0x01
	}
	c.Marshal()
	if sig, err = sm2sig.Sign(holder, c.CodeSigned()); err != nil {
		return "", err
	}
	copy(c.HolderSig[:], sig)
	switch d {
	case "bad-holder-sig":
		c.HolderSig[5] ^= 0x01
	case "zero-holder-sig":
		clear(c.HolderSig[:32])
	case "high-holder-sig":
		copy(c.HolderSig[32:], curveOrder)
	}
	text := c.Text()
	switch d {
	case "malformed":
		raw := c.Marshal()
		text = ehc1.Prefix + base45.Encode(raw[:len(raw)-1])
	case "bad-base45":
		b := []byte(text)
		b[len(ehc1.Prefix)+10] = '#'
		text = string(b)
	case "bad-prefix":
		text = "EHC2:" + text[len(ehc1.Prefix):]
	}
	return text, nil
}

func unix32(t time.Time) uint32 {
	u := t.Unix()
	if u < 0 {
		return 0
	}
	if u > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(u)
}
