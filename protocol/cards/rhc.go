package cards

import (
	"errors"

	"github.com/ehc-agent/ehc-agent/protocol/apdu"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// File IDs and PSAM constants of the resident health card (CARDS.md).
const (
	fileDDF1 = 0xDDF1
	fileEF05 = 0xEF05
	fileEF06 = 0xEF06
	fileEF07 = 0xEF07
	fileEF08 = 0xEF08
	filePSAM = 0xDF01 // the PSAM's application, selected after its power-on

	// dfDDF1 is P2 of the PSAM's 80 DE for the card's DDF1 (DF01..DF03: 32..34).
	dfDDF1 = 0x31
)

// authInput is the fixed half-block the PSAM encrypts and the card checks.
var authInput = []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}

// readRHC reads a card detection found to be an RHC; EF05 is the current file.
func readRHC(card apdu.Transmitter, atr []byte, version string, o Options) Result {
	r := &rd{card: card}
	res := Result{Kind: KindRHC, Info: Info{Version: version}}
	issuer := r.text(r.item(readByID(0x03, 0, 30), 0x03, 30, true), 0x03, false)
	res.Info.IssueDate = r.date(r.item(readByID(0x06, 0, 4), 0x06, 4, true), 0x06)
	cardNo := r.idNumber(r.item(readByID(0x08, 0, 18), 0x08, 18, false), 0x08)
	if r.err != nil {
		return failed(KindRHC, r.err)
	}
	// The card number equals the holder's ID number: without EF06 it is the ID.
	id := &event.Identity{IDType: IDTypeResident, IDNumber: cardNo, CardNo: cardNo, IssuerOrg: issuer}
	res.Identity = id
	partial := func(reason string, err error) Result {
		id.IdentityPartial = true
		res.Reason, res.Err = reason, err
		return res
	}
	if o.PSAM == nil {
		reason := o.NoPSAMReason
		if reason == "" {
			reason = ReasonPSAMAbsent
		}
		return partial(reason, nil)
	}
	city := r.item(readByID(0x39, 0, 3), 0x39, 3, false)
	if r.err != nil {
		return failed(KindRHC, r.err)
	}
	if err := authenticate(card, o.PSAM, atr, city, dfDDF1); err != nil {
		var pe *PSAMError
		if errors.As(err, &pe) {
			return partial(ReasonPSAMFailed, err)
		}
		return failed(KindRHC, err)
	}

	r.do(selectFile(fileEF06))
	id.Name = r.text(r.item(readByNumber(1), 0x0B, 30, false), 0x0B, true)
	id.Gender = r.gender(r.item(readByNumber(2), 0x0C, 1, true), 0x0C)
	id.Ethnicity = r.ethnicity(r.item(readByNumber(3), 0x0D, 1, true), 0x0D)
	id.BirthDate = r.date(r.item(readByNumber(4), 0x0E, 4, true), 0x0E)
	id.IDNumber = r.idNumber(r.item(readByNumber(5), 0x0F, 18, false), 0x0F)
	// EF08 before the photo: the photo is the longest read and the least needed.
	if r.selectOptional(fileEF08) {
		res.Info.Expiry = r.date(r.item(readByNumber(1), 0x07, 4, true), 0x07)
	}
	if r.err != nil {
		return failed(KindRHC, r.err)
	}
	if o.NoPhoto {
		return res
	}
	// The identity is complete without the photo: a photo that cannot be read is
	// reported in Reason, not a reason to drop what was read.
	photo, err := readPhoto(r)
	switch {
	case errors.As(err, new(*ValueError)):
		res.Reason, res.Err = ReasonPhotoTooLarge, err
	case err != nil:
		res.Reason, res.Err = ReasonOf(err), err
	default:
		res.Info.Photo = photo
		id.Photo = photoBase64(photo)
	}
	return res
}

// readPhoto reads EF07: a 2-byte big-endian length, then the JPEG in 0x80-byte chunks.
// A declared size beyond MaxPhoto is refused before any of it is read (a *ValueError).
func readPhoto(r *rd) ([]byte, error) {
	r.do(selectFile(fileEF07))
	head := r.do(photoLength)
	if r.err != nil {
		return nil, r.err
	}
	if len(head) != 2 {
		return nil, &apdu.RecordError{Problem: "photo length is not 2 bytes"}
	}
	n := int(head[0])<<8 | int(head[1])
	if n+2 > MaxPhoto {
		return nil, &ValueError{What: "photo over 3072 bytes"}
	}
	photo := make([]byte, 0, n)
	for off := 2; off < n+2 && r.err == nil; {
		size := min(photoChunk, n+2-off)
		chunk := r.do(readBinary(off, size))
		if r.err == nil && len(chunk) != size {
			return nil, &apdu.RecordError{Offset: off, Problem: "short photo chunk"}
		}
		photo = append(photo, chunk...)
		off += size
	}
	return photo, r.err
}

// authenticate relays the card's internal authentication through the PSAM (CARDS.md,
// the four steps under "Resident health card"). Only bytes pass through here; the keys
// are in the PSAM and the card. Failures on the PSAM side, and the card refusing the
// PSAM's cryptogram, are *PSAMError; a card transport failure is returned as it is.
func authenticate(card, psam apdu.Transmitter, atr, city []byte, df byte) error {
	if len(atr) < 13 {
		return &PSAMError{Err: &ValueError{What: "ATR shorter than 13 bytes: no card diversifier"}}
	}
	if len(city) < 2 {
		return &PSAMError{Err: &ValueError{Tag: 0x39, What: "city code shorter than 2 bytes"}}
	}
	challenge, err := apdu.Do(card, getChallenge)
	if err != nil {
		return err
	}
	if len(challenge) != 8 {
		return &apdu.RecordError{Problem: "challenge is not 8 bytes"}
	}
	div := make([]byte, 0, 24)
	div = append(div, atr[5:13]...)                                         // card diversifier
	div = append(div, city[0], city[1], 0x30, 0x30, 0x30, 0x30, 0x30, 0x30) // city diversifier
	div = append(div, challenge...)
	if _, err := apdu.Do(psam, apdu.Command{CLA: 0x80, INS: 0xDE, P1: 0x47, P2: df, Data: div}); err != nil {
		return &PSAMError{Err: err}
	}
	mac, err := apdu.Do(psam, apdu.Command{CLA: 0x80, INS: 0xFA, Data: append(authInput[:8:8], make([]byte, 8)...)})
	if err != nil {
		return &PSAMError{Err: err}
	}
	if len(mac) != 16 {
		return &PSAMError{Err: &apdu.RecordError{Problem: "PSAM cryptogram is not 16 bytes"}}
	}
	auth := make([]byte, 0, 17)
	for i := range 8 {
		auth = append(auth, mac[i]^mac[i+8])
	}
	auth = append(auth, authInput...)
	auth = append(auth, 0x01)
	p2 := byte(0x84) // a DFxx
	if df == dfDDF1 {
		p2 = 0x04
	}
	ans, err := apdu.Exchange(card, apdu.Command{INS: 0x82, P2: p2, Data: auth})
	if err != nil {
		return err
	}
	if err := ans.Check(0x82); err != nil {
		return &PSAMError{Err: err} // the card refused the PSAM's cryptogram
	}
	return nil
}

// OpenPSAM readies a PSAM after its power-on (CARDS.md, step 2): SELECT DF01, then
// VERIFY with the PIN. The PIN goes nowhere else: no error here carries it.
func OpenPSAM(psam apdu.Transmitter, pin []byte) error {
	if _, err := apdu.Do(psam, selectFile(filePSAM)); err != nil {
		return err
	}
	_, err := apdu.Do(psam, apdu.Command{INS: 0x20, Data: pin})
	return err
}

// PINRejected reports whether err is the PSAM refusing its PIN, with the tries it has
// left (0: blocked; -1: it does not say). A caller must not try that PIN again: a few
// tries block the PSAM for good.
func PINRejected(err error) (tries int, ok bool) {
	var se *apdu.StatusError
	if !errors.As(err, &se) || se.INS != 0x20 {
		return 0, false
	}
	switch {
	case se.SW&0xFFF0 == 0x63C0:
		return int(se.SW & 0xF), true
	case se.SW == apdu.SWAuthBlocked:
		return 0, true
	case se.SW == 0x6300:
		return -1, true
	}
	return 0, false
}
