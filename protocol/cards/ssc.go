package cards

import (
	"encoding/hex"
	"strings"

	"github.com/ehc-agent/ehc-agent/protocol/apdu"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Short file identifiers of the social security card: READ RECORD by record identifier
// through the SFI works across card generations, where record numbers do not.
const (
	sfiEF05 = 5
	sfiEF06 = 6
)

// readSSC reads a card whose social-security application is selected.
func readSSC(card apdu.Transmitter) Result {
	r := &rd{card: card}
	res := Result{Kind: KindSSC}
	// The card identification code is binary (B16); the national reader interface and
	// HIS systems show it as 32 hex digits, the first six being the issuing region.
	if v := r.item(readByID(0x01, sfiEF05, 16), 0x01, 16, true); len(v) > 0 {
		res.Info.CardID = strings.ToUpper(hex.EncodeToString(v))
	}
	res.Info.Version = r.text(r.item(readByID(0x03, sfiEF05, 4), 0x03, 4, true), 0x03, false)
	res.Info.IssueDate = r.date(r.item(readByID(0x05, sfiEF05, 4), 0x05, 4, true), 0x05)
	res.Info.Expiry = r.date(r.item(readByID(0x06, sfiEF05, 4), 0x06, 4, true), 0x06)
	var cardNo string
	if v := r.item(readByID(0x07, sfiEF05, 9), 0x07, 9, true); v != nil {
		cardNo = r.idNumber(v, 0x07)
	}
	ssn := r.idNumber(r.item(readByID(0x08, sfiEF06, 18), 0x08, 18, false), 0x08)
	name := r.text(r.item(readByID(0x09, sfiEF06, 30), 0x09, 30, false), 0x09, true)
	// First-generation cards have no name extension: "record not found" is no error.
	ext := r.text(r.item(readByID(0x4E, sfiEF06, 20), 0x4E, 20, true), 0x4E, false)
	gender := r.gender(r.item(readByID(0x0A, sfiEF06, 1), 0x0A, 1, true), 0x0A)
	eth := r.ethnicity(r.item(readByID(0x0B, sfiEF06, 1), 0x0B, 1, true), 0x0B)
	birth := r.date(r.item(readByID(0x0D, sfiEF06, 4), 0x0D, 4, true), 0x0D)
	if r.err != nil {
		return failed(KindSSC, r.err)
	}
	res.Identity = &event.Identity{IDType: IDTypeResident, IDNumber: ssn, Name: name + ext,
		Gender: gender, Ethnicity: eth, BirthDate: birth, CardNo: cardNo}
	return res
}
