// Package cards reads the two physical health cards of CARDS.md over APDUs and turns what
// they hold into the identity of PLATFORM.md ("Identity event"):
//
//   - detection (CARDS.md, "Card detection"): SELECT the social-security application by
//     DF name; else SELECT DDF1, EF05 and read its spec version; else the card is
//     unsupported. The ATR never decides the type.
//   - the resident health card (CARDS.md, "Resident health card"): EF05 by record
//     identifier without authentication; with a PSAM, the internal-authentication relay,
//     then EF06 by record number, EF08, and the photo of EF07 in 0x80-byte chunks.
//     Without a PSAM the identity comes from EF05 alone and says identity_partial.
//   - the social security card (CARDS.md, "Social security card"): EF05 and EF06 by
//     record identifier through their SFI, the name extension appended to the name.
//
// Every item is read by its own record and checked on its own (apdu.ParseRecord): a card
// that answers garbage, a record longer than its item, or a wrong status word ends the
// read with a Result whose Reason says which, and no identity — except where the
// identity is whole without what failed: the PSAM relay (then identity_partial, from
// EF05) and the photo (then no photo). The package talks to a card only through
// apdu.Transmitter, so it runs the same against pcscd, a virtual card or a test script;
// deadlines and card removal are the caller's (drivers/pcsc), which refines ReadFailed.
//
// Nothing here logs, and no error carries a record's value: errors name tags and status
// words only, so they may go to logs as they are.
package cards

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/apdu"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Card kinds, as in the identity event's card.kind.
const (
	KindRHC     = "resident_health_card"
	KindSSC     = "social_security_card"
	KindUnknown = "unknown"
)

// Reasons a Result gives; stable codes for events, logs and the kiosk.
const (
	// No identity:
	ReasonUnsupported = "unsupported_card" // neither card of CARDS.md; the ATR is reported
	ReasonBadAnswer   = "bad_answer"       // garbage: a malformed or overlong record, text or BCD that does not decode, a card going in circles
	ReasonBadStatus   = "bad_status"       // a status word other than the one the step needs
	ReasonReadFailed  = "read_failed"      // the transport failed (the caller refines: card_removed, timeout)
	// An identity, with something missing:
	ReasonPSAMAbsent    = "psam_absent"     // no PSAM: EF05 only, identity_partial
	ReasonPSAMFailed    = "psam_failed"     // the PSAM relay failed: EF05 only, identity_partial
	ReasonPhotoTooLarge = "photo_too_large" // EF07 declares more than 3,072 bytes: no photo
)

// IDTypeResident is the id_type of a resident ID number, which both cards carry.
const IDTypeResident = "01"

// MaxPhoto bounds EF07: the 2-byte length and the JPEG together (CARDS.md).
const MaxPhoto = 3072

// photoChunk is the READ BINARY size CARDS.md prescribes for EF07.
const photoChunk = 0x80

// Options say what the reader has besides the card.
type Options struct {
	// PSAM is the opened PSAM (OpenPSAM done since its power-on), or nil.
	PSAM apdu.Transmitter
	// NoPSAMReason is the reason reported for an RHC read without PSAM; "" means
	// psam_absent. The driver says psam_failed when its PSAM is there but unusable.
	NoPSAMReason string
	// NoPhoto skips EF07.
	NoPhoto bool
}

// Info is what a card says beyond the identity event's fields. Dates are YYYYMMDD.
type Info struct {
	CardID    string // SSC EF05 tag 01, the card identification code: upper-case hex (32 digits)
	Version   string // RHC EF05 tag 02, SSC EF05 tag 03
	IssueDate string
	Expiry    string // RHC EF08 (with a PSAM), SSC EF05 tag 06
	Photo     []byte // RHC EF07 JPEG, also base64 in Identity.Photo
}

// Result is the outcome of one card read.
type Result struct {
	Kind     string          // KindRHC, KindSSC or KindUnknown
	Identity *event.Identity // nil when no identity could be read
	Reason   string          // "" when read in full
	Err      error           // the cause behind Reason; tags and status words only
	Info     Info
}

// PSAMError wraps a failure of the PSAM side of the relay (PSAM answers, its transport,
// or the card refusing the PSAM's cryptogram), so the caller can tell it from a card
// failure and re-open its PSAM.
type PSAMError struct{ Err error }

func (e *PSAMError) Error() string { return "psam: " + e.Err.Error() }
func (e *PSAMError) Unwrap() error { return e.Err }

// ValueError is a record that parsed but whose value is not what the item allows (an
// ID number with Chinese characters, a 13th month).
type ValueError struct {
	Tag  byte
	What string
}

func (e *ValueError) Error() string { return fmt.Sprintf("cards: record %02X: %s", e.Tag, e.What) }

// Read detects the card behind card (its ATR as the reader gave it) and reads it.
func Read(card apdu.Transmitter, atr []byte, o Options) Result {
	ssc, err := isSSC(card)
	if err != nil {
		return failed(KindUnknown, err)
	}
	if ssc {
		return readSSC(card)
	}
	version, rhc, err := isRHC(card)
	if err != nil {
		return failed(KindUnknown, err)
	}
	if rhc {
		return readRHC(card, atr, version, o)
	}
	return Result{Kind: KindUnknown, Reason: ReasonUnsupported}
}

func failed(kind string, err error) Result {
	return Result{Kind: kind, Reason: ReasonOf(err), Err: err}
}

// ReasonOf maps an error of a read to its reason code.
func ReasonOf(err error) string {
	var pe *PSAMError
	var se *apdu.StatusError
	var re *apdu.RecordError
	var ve *ValueError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return ReasonPSAMFailed
	case errors.As(err, &se):
		return ReasonBadStatus
	case errors.As(err, &re), errors.As(err, &ve), errors.Is(err, apdu.ErrTooLong), errors.Is(err, apdu.ErrLoop):
		return ReasonBadAnswer
	}
	return ReasonReadFailed
}

// Commands of CARDS.md.
var (
	// SELECT by DF name "sx1.sh.社会保障" (GBK).
	selectSSC = apdu.Command{INS: 0xA4, P1: 0x04, Data: []byte{
		0x73, 0x78, 0x31, 0x2E, 0x73, 0x68, 0x2E, 0xC9, 0xE7, 0xBB, 0xE1, 0xB1, 0xA3, 0xD5, 0xCF}}
	getChallenge = apdu.Command{INS: 0x84, Ne: 8}
	photoLength  = apdu.Command{INS: 0xB0, Ne: 2}
)

// selectFile is SELECT by file ID: DDF1, EF05 … (`00 A4 00 00 02 DD F1`).
func selectFile(id uint16) apdu.Command {
	return apdu.Command{INS: 0xA4, Data: []byte{byte(id >> 8), byte(id)}}
}

// readByID reads the first record with identifier tag in the current EF (P2 = 00) or in
// the EF of a short file identifier (P2 = SFI << 3), asking for exactly the item's
// length: Le = length + 2 for the tag and length bytes.
func readByID(tag, sfi byte, length int) apdu.Command {
	return apdu.Command{INS: 0xB2, P1: tag, P2: sfi << 3, Ne: length + 2}
}

// readByNumber reads record n of the current EF (P2 = 04), whatever its length (Le = 00).
func readByNumber(n byte) apdu.Command {
	return apdu.Command{INS: 0xB2, P1: n, P2: 0x04, Ne: 256}
}

// readBinary reads n bytes at offset of the current EF.
func readBinary(offset, n int) apdu.Command {
	return apdu.Command{INS: 0xB0, P1: byte(offset >> 8), P2: byte(offset), Ne: n}
}

// isSSC runs detection step 1. Any status but success means "not this application";
// only the transport can fail it.
func isSSC(card apdu.Transmitter) (bool, error) {
	r, err := apdu.Exchange(card, selectSSC)
	if err != nil {
		return false, err
	}
	return r.SW == apdu.SWOK, nil
}

// isRHC runs detection step 2: DDF1 alone proves nothing (transit and wallet cards
// answer it), EF05 with a four-character spec version does.
func isRHC(card apdu.Transmitter) (version string, ok bool, err error) {
	for _, id := range []uint16{0xDDF1, 0xEF05} {
		r, err := apdu.Exchange(card, selectFile(id))
		if err != nil || r.SW != apdu.SWOK {
			return "", false, err
		}
	}
	r, err := apdu.Exchange(card, readByID(0x02, 0, 4))
	if err != nil || r.SW != apdu.SWOK {
		return "", false, err
	}
	v, err := apdu.ParseRecord(r.Data, 0x02, 4)
	if err != nil || len(v) != 4 {
		return "", false, nil
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7E {
			return "", false, nil
		}
	}
	return string(v), true, nil
}

// rd reads items one by one and keeps the first error: after it, every read is a no-op
// that returns zero values, so a read is written as the list of its items.
type rd struct {
	card apdu.Transmitter
	err  error
}

func (r *rd) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// do sends cmd and needs 9000.
func (r *rd) do(cmd apdu.Command) []byte {
	if r.err != nil {
		return nil
	}
	data, err := apdu.Do(r.card, cmd)
	r.fail(err)
	return data
}

// selectOptional selects a file the card may lack: false when it does, or on an error.
func (r *rd) selectOptional(id uint16) bool {
	if r.err != nil {
		return false
	}
	_, err := apdu.Do(r.card, selectFile(id))
	var se *apdu.StatusError
	if errors.As(err, &se) && se.NotFound() {
		return false
	}
	r.fail(err)
	return err == nil
}

// item reads one record, checks its tag and length, and returns its value. An optional
// item the card does not have (file, record or data not found) is nil without an error.
func (r *rd) item(cmd apdu.Command, tag byte, max int, optional bool) []byte {
	if r.err != nil {
		return nil
	}
	data, err := apdu.Do(r.card, cmd)
	var se *apdu.StatusError
	if optional && errors.As(err, &se) && se.NotFound() {
		return nil
	}
	if err != nil {
		r.fail(err)
		return nil
	}
	v, err := apdu.ParseRecord(data, tag, max)
	r.fail(err)
	return v
}

// text decodes an AN value; required means it may not be empty.
func (r *rd) text(v []byte, tag byte, required bool) string {
	if r.err != nil {
		return ""
	}
	s, err := apdu.Text(v)
	if err != nil {
		tagged(err, tag)
		r.fail(err)
		return ""
	}
	if required && s == "" {
		r.fail(&ValueError{Tag: tag, What: "empty"})
	}
	return s
}

// idNumber decodes an ID or card number: ASCII letters and digits only (an ID number
// may end in X), never empty.
func (r *rd) idNumber(v []byte, tag byte) string {
	s := r.text(v, tag, true)
	for i := 0; r.err == nil && i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			r.fail(&ValueError{Tag: tag, What: "not letters and digits"})
		}
	}
	if r.err != nil {
		return ""
	}
	return s
}

func (r *rd) bcd(v []byte, tag byte) string {
	if r.err != nil {
		return ""
	}
	s, err := apdu.BCD(v)
	if err != nil {
		tagged(err, tag)
		r.fail(err)
	}
	return s
}

// tagged names the record a value error came from: apdu's decoders see values only.
func tagged(err error, tag byte) {
	if re, ok := err.(*apdu.RecordError); ok {
		re.Tag = tag
	}
}

// date decodes a CN4 date, YYYYMMDD; "" when never written.
func (r *rd) date(v []byte, tag byte) string {
	s := r.bcd(v, tag)
	if s == "" {
		return ""
	}
	if _, err := time.Parse("20060102", s); err != nil {
		r.fail(&ValueError{Tag: tag, What: "not a date"})
		return ""
	}
	return s
}

// ethnicity decodes a CN1 GB 3304 code: two digits, or "" when never written.
func (r *rd) ethnicity(v []byte, tag byte) string {
	s := r.bcd(v, tag)
	if s != "" && len(s) != 2 {
		r.fail(&ValueError{Tag: tag, What: "not a two-digit code"})
		return ""
	}
	return s
}

// gender maps a gender item to GB/T 2261.1 ("1" male, "2" female, "0" unknown, "9"
// unspecified). The RHC codes it as B1, the SSC as AN1; as cards of either kind are met
// with the binary value or its ASCII digit, both are taken. Absent: "".
func (r *rd) gender(v []byte, tag byte) string {
	if r.err != nil || v == nil {
		return ""
	}
	if len(v) == 1 {
		switch c := v[0]; c {
		case 0, 1, 2, 9:
			return string(rune('0' + c))
		case '0', '1', '2', '9':
			return string(rune(c))
		}
	}
	r.fail(&ValueError{Tag: tag, What: "not a gender code"})
	return ""
}

func photoBase64(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}
