// Package ehc1 decodes and encodes EHC1 offline dynamic codes (CODES.md, "EHC1 offline
// dynamic code": text form, binary form, and step 1 of verification).
//
// Parse checks only the shape of a code — length, extension length, validity range,
// version and type — and reports "malformed" or "unsupported_version". It verifies no
// signature and reads no clock or key: that is the verifier's job, which gets the
// signed byte ranges from CertSigned, CredSigned and CodeSigned.
//
// Bounds: a binary form is MinLen to MaxLen bytes and a text form at most MaxTextLen
// characters; longer input is rejected before any decoding. Parse allocates only the
// *Code (its slices alias the input) and ParseText one block holding the Code and the
// decoded bytes. All functions are pure and safe for concurrent use on distinct Codes.
package ehc1

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/ehc-agent/ehc-agent/protocol/base45"
)

// Prefix starts the text form; it is matched case-insensitively.
const Prefix = "EHC1:"

const (
	MinLen       = 321                   // binary form with no extension
	MaxExtension = 32                    // largest extension length L
	MaxLen       = MinLen + MaxExtension // binary form with the largest extension
	MaxValidity  = 3600                  // largest code validity, seconds

	// MaxTextLen is the longest text form: Prefix and base45.EncodedLen(MaxLen).
	MaxTextLen = len(Prefix) + MaxLen/2*3 + MaxLen%2*2
)

// Offsets in the binary form (CODES.md, "Binary form"). Those from offIssuerSig on
// move with the extension length L and are written here for L = 0.
const (
	version1     = 0x01 // the only version this package knows
	typeDynamic  = 0x01 // dynamic, holder-signed
	offValidity  = 182
	offExtLen    = 184
	fixedHead    = 185 // bytes before the extension
	offIssuerSig = fixedHead
	offGenerated = offIssuerSig + 64
	offHolderSig = offGenerated + 4 + 4
)

// Reason codes of Error (CODES.md, Verification step 1).
const (
	ReasonMalformed          = "malformed"
	ReasonUnsupportedVersion = "unsupported_version"
)

// Error is what Parse and ParseText return. Reason is ReasonMalformed or
// ReasonUnsupportedVersion. Offset is a byte offset into the binary form, except for
// errors in the text layer (prefix, Base45), where it is into the text and Msg begins
// with "text". Msg never quotes the code's content.
type Error struct {
	Reason string
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	return "ehc1: " + e.Reason + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Code is one EHC1 code. Field order and sizes are the binary form's; integers are
// big-endian in it and times are Unix seconds (UTC).
type Code struct {
	Version, Type uint8
	RootIndex     uint8
	IssuerID      uint32
	CertSerial    uint32
	CertNotAfter  uint32   // Unix seconds
	IssuerKey     [33]byte // SEC1 compressed; not checked here (bad_key is the verifier's)
	RootSig       [64]byte // r‖s
	EHCID         [32]byte
	Category      uint8 // 0x01 resident; other values are reserved, accepted and reported
	HolderKey     [33]byte
	CredNotAfter  uint32
	Validity      uint16 // seconds, 1..MaxValidity
	Extension     []byte // 0..MaxExtension bytes, aliasing Raw
	IssuerSig     [64]byte
	GeneratedAt   uint32
	Sequence      uint32
	HolderSig     [64]byte

	// Raw is the binary form this Code was parsed from or last marshalled to. After
	// Parse it aliases Parse's argument: the caller must not modify that while the
	// Code is in use.
	Raw []byte
}

// Parse decodes the binary form b.
//
// Precedence, as CODES.md step 1 lists it: every malformed condition is checked
// before version and type, so a code that is malformed under the version-1 layout is
// "malformed" whatever its version byte says — a code too short to hold the version
// byte included — and "unsupported_version" means a code of exactly the version-1
// shape whose version or type byte is not 1. Among malformed conditions the total
// length and the extension length L come first, since every later offset depends on
// them, then the validity; Offset says which.
func Parse(b []byte) (*Code, error) {
	if err := check(b); err != nil {
		return nil, err
	}
	c := new(Code)
	fill(c, b)
	return c, nil
}

// ParseText decodes the text form: Prefix (any case), then the Base45 of the binary
// form (lowercase letters accepted). The Code is in one allocation with the bytes its
// slices alias.
func ParseText(s []byte) (*Code, error) { return new(Buffer).ParseText(s) }

// Buffer holds a Code and the bytes its slices alias, for a caller that parses codes
// one after another and is done with each before the next (the verifier keeps them in
// a pool, so that a verification does not allocate them).
type Buffer struct {
	c   Code
	buf [MaxLen]byte
}

// ParseText is the package's ParseText into b: the Code it returns is b's and is
// valid until b parses again.
func (b *Buffer) ParseText(s []byte) (*Code, error) {
	if !HasPrefix(s) {
		return nil, &Error{ReasonMalformed, 0, "text does not start with " + Prefix}
	}
	if len(s) > MaxTextLen {
		return nil, &Error{ReasonMalformed, MaxTextLen, "text longer than " + strconv.Itoa(MaxTextLen) + " characters"}
	}
	raw, err := base45.AppendDecode(b.buf[:0], s[len(Prefix):])
	if err != nil {
		off := len(Prefix)
		var ce base45.CorruptInputError
		if errors.As(err, &ce) {
			off += int(ce)
		}
		return nil, &Error{ReasonMalformed, off, "text is not valid Base45"}
	}
	if err := check(raw); err != nil {
		return nil, err
	}
	b.c = Code{}
	fill(&b.c, raw)
	return &b.c, nil
}

// HasPrefix reports whether s starts with Prefix in any letter case, which is what
// makes a scan an EHC1 code (CODES.md, the type ehc_offline).
func HasPrefix(s []byte) bool {
	if len(s) < len(Prefix) {
		return false
	}
	for i := 0; i < len(Prefix); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != Prefix[i] {
			return false
		}
	}
	return true
}

// check reports why b is not a binary form this package accepts, or nil.
func check(b []byte) *Error {
	if len(b) > MaxLen {
		return &Error{ReasonMalformed, MaxLen, "longer than " + strconv.Itoa(MaxLen) + " bytes"}
	}
	if len(b) <= offExtLen {
		return &Error{ReasonMalformed, len(b), "truncated: " + strconv.Itoa(len(b)) + " bytes"}
	}
	l := int(b[offExtLen])
	if l > MaxExtension {
		return &Error{ReasonMalformed, offExtLen, "extension length " + strconv.Itoa(l) + " exceeds " + strconv.Itoa(MaxExtension)}
	}
	if want := MinLen + l; len(b) != want {
		return &Error{ReasonMalformed, min(len(b), want), "length " + strconv.Itoa(len(b)) + ", want " + strconv.Itoa(want) + " for extension length " + strconv.Itoa(l)}
	}
	if v := binary.BigEndian.Uint16(b[offValidity:]); v == 0 || v > MaxValidity {
		return &Error{ReasonMalformed, offValidity, "validity " + strconv.Itoa(int(v)) + " s outside 1.." + strconv.Itoa(MaxValidity)}
	}
	if b[0] != version1 {
		return &Error{ReasonUnsupportedVersion, 0, "version " + strconv.Itoa(int(b[0]))}
	}
	if b[1] != typeDynamic {
		return &Error{ReasonUnsupportedVersion, 1, "code type " + strconv.Itoa(int(b[1]))}
	}
	return nil
}

// fill sets c's fields from b, which check accepted.
func fill(c *Code, b []byte) {
	be := binary.BigEndian
	l := int(b[offExtLen])
	c.Version, c.Type, c.RootIndex = b[0], b[1], b[2]
	c.IssuerID = be.Uint32(b[3:])
	c.CertSerial = be.Uint32(b[7:])
	c.CertNotAfter = be.Uint32(b[11:])
	copy(c.IssuerKey[:], b[15:48])
	copy(c.RootSig[:], b[48:112])
	copy(c.EHCID[:], b[112:144])
	c.Category = b[144]
	copy(c.HolderKey[:], b[145:178])
	c.CredNotAfter = be.Uint32(b[178:])
	c.Validity = be.Uint16(b[offValidity:])
	c.Extension = b[fixedHead : fixedHead+l : fixedHead+l]
	copy(c.IssuerSig[:], b[offIssuerSig+l:])
	c.GeneratedAt = be.Uint32(b[offGenerated+l:])
	c.Sequence = be.Uint32(b[offGenerated+4+l:])
	copy(c.HolderSig[:], b[offHolderSig+l:])
	c.Raw = b[:len(b):len(b)]
}

// Marshal returns the binary form of c's fields, signatures copied as they are, and
// sets c.Raw to it and c.Extension to the extension inside it. It does not validate:
// Parse does. An Extension longer than MaxExtension gives an extension length byte
// above MaxExtension (so Parse rejects the result as malformed) rather than a
// silently shortened code.
func (c *Code) Marshal() []byte {
	l := len(c.Extension)
	b := make([]byte, MinLen+l)
	be := binary.BigEndian
	b[0], b[1], b[2] = c.Version, c.Type, c.RootIndex
	be.PutUint32(b[3:], c.IssuerID)
	be.PutUint32(b[7:], c.CertSerial)
	be.PutUint32(b[11:], c.CertNotAfter)
	copy(b[15:48], c.IssuerKey[:])
	copy(b[48:112], c.RootSig[:])
	copy(b[112:144], c.EHCID[:])
	b[144] = c.Category
	copy(b[145:178], c.HolderKey[:])
	be.PutUint32(b[178:], c.CredNotAfter)
	be.PutUint16(b[offValidity:], c.Validity)
	b[offExtLen] = uint8(min(l, 0xff))
	copy(b[fixedHead:], c.Extension)
	copy(b[offIssuerSig+l:], c.IssuerSig[:])
	be.PutUint32(b[offGenerated+l:], c.GeneratedAt)
	be.PutUint32(b[offGenerated+4+l:], c.Sequence)
	copy(b[offHolderSig+l:], c.HolderSig[:])
	c.Raw = b
	c.Extension = b[fixedHead : fixedHead+l : fixedHead+l]
	return b
}

// Text returns the text form of c: Prefix and the Base45 of Marshal(), which it calls.
func (c *Code) Text() string {
	b := c.Marshal()
	t := make([]byte, 0, len(Prefix)+base45.EncodedLen(len(b)))
	t = append(t, Prefix...)
	return string(base45.AppendEncode(t, b))
}

// span returns c.Raw[from : to+L] (L the extension length in Raw), capped so that an
// append cannot write into Raw, or nil if Raw's length and L do not fit the layout.
func (c *Code) span(from, to int) []byte {
	if len(c.Raw) <= offExtLen {
		return nil
	}
	l := int(c.Raw[offExtLen])
	if l > MaxExtension || len(c.Raw) != MinLen+l {
		return nil
	}
	if to >= fixedHead {
		to += l
	}
	return c.Raw[from:to:to]
}

// CertSigned returns bytes [2, 48) of Raw, the issuer certificate the root key signs.
// Like the other signed ranges it is nil unless Parse or Marshal set Raw.
func (c *Code) CertSigned() []byte { return c.span(2, 48) }

// IssuerCert returns bytes [2, 112) of Raw, the certificate with its root signature:
// the verifier caches root-signature results under it.
func (c *Code) IssuerCert() []byte { return c.span(2, 112) }

// CredSigned returns bytes [112, 185+L) of Raw, the holder credential the issuer key signs.
func (c *Code) CredSigned() []byte { return c.span(112, fixedHead) }

// CodeSigned returns bytes [0, 257+L) of Raw, what the holder key signs.
func (c *Code) CodeSigned() []byte { return c.span(0, offHolderSig) }

// ExpiresAt returns GeneratedAt + Validity. It saturates at the largest uint32 rather
// than wrap to a time before the code was generated.
func (c *Code) ExpiresAt() uint32 {
	e := uint64(c.GeneratedAt) + uint64(c.Validity)
	return uint32(min(e, 1<<32-1))
}

// EHCIDHex returns the EHC ID as 64 uppercase hex digits, the form CODES.md reports
// and revocation lists hold.
func (c *Code) EHCIDHex() string {
	const digits = "0123456789ABCDEF"
	var buf [2 * len(c.EHCID)]byte
	for i, v := range c.EHCID {
		buf[2*i], buf[2*i+1] = digits[v>>4], digits[v&0x0f]
	}
	return string(buf[:])
}
