// Package event is the identity event of PLATFORM.md ("Identity event"): the one object
// that goes to the local API and, through the outbox, to the platform.
//
// Fields that do not apply are left out (omitempty, pointers for sub-objects), never null.
// Some fields are for the local API only — the card photo (Identity.Photo), the resident
// ID card's address, issuing authority and validity, a card's own details (Card.CardID …):
// PLATFORM.md's identity object has none of them, and the outbox and the platform never
// see them. Use ForPlatform before anything leaves the terminal.
package event

import (
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/mask"
)

// Event is one identification attempt at this terminal.
type Event struct {
	EventID      string        `json:"event_id"` // UUIDv7, the idempotency key
	TerminalID   string        `json:"terminal_id"`
	Seq          uint64        `json:"seq"` // from 1, +1 per event, never repeats
	OccurredAt   time.Time     `json:"occurred_at"`
	Source       Source        `json:"source"`
	Code         *Code         `json:"code,omitempty"`
	Card         *Card         `json:"card,omitempty"`
	Verification *Verification `json:"verification,omitempty"`
	Identity     *Identity     `json:"identity,omitempty"`
	// Application is set, and only it, on a card application's event (source.kind
	// "card_application"): no device read it, the kiosk's application did.
	Application *Application `json:"application,omitempty"`
}

// Source says where the read came from.
type Source struct {
	Kind   string `json:"kind"`   // "qr" | "card" | "card_application"
	Device string `json:"device"` // configured device name; for an application see Application
	Driver string `json:"driver"` // "serial" | "usbhid" | "pcsc" | "idcard" | "sim" | "apply"
}

// A card application's event (PLATFORM.md, "Card application": "the identity event
// stream gets a card_application event"). One is recorded for every application the
// agent sent to the platform, whatever came of it — a hospital auditing its kiosks sees
// each attempt, the failed ones too; requests the agent refused itself before sending
// (no ID card on hold, a mistyped ID number, no consent) left nothing at the platform
// and are no event. A kiosk repeating an answered application_id is given the kept
// answer and makes no second event; a new attempt after platform_unreachable does.
//
// Its source is {"kind": "card_application", "device": <the ID card reader's name, or
// "local_api" for typed data>, "driver": "apply"}; it has no code, card, verification
// or identity.
const (
	SourceApplication = "card_application"
	DriverApply       = "apply"
	DeviceLocalAPI    = "local_api"
)

// Application results.
const (
	ApplicationCreated     = "created"              // a new card (platform 201)
	ApplicationExisting    = "existing"             // the resident had one: its code (200, created:false)
	ApplicationRefused     = "refused"              // the platform said 422; Reason is its reason
	ApplicationUnreachable = "platform_unreachable" // no answer within the timeout; nothing kept
	ApplicationFailed      = "failed"               // auth_failed, bad_answer, …: Reason says which
)

// Application is what became of one card application. The applicant is masked here,
// for every reader of the event, the local API included: the kiosk had the data
// unmasked when it showed it for confirmation, and the event is a record, not a way to
// pass it on.
type Application struct {
	ApplicationID string    `json:"application_id"` // UUIDv7, as sent to the platform
	Result        string    `json:"result"`         // created | existing | refused | platform_unreachable | failed
	Reason        string    `json:"reason,omitempty"`
	EHCID         string    `json:"ehc_id,omitempty"` // created and existing
	Source        string    `json:"source"`           // id_card_reader | manual
	CardSeq       uint64    `json:"card_seq,omitempty"`
	Applicant     Applicant `json:"applicant"`
}

// Applicant is the applicant, masked: construct it with MaskApplicant only.
type Applicant struct {
	IDType   string `json:"id_type"`
	IDNumber string `json:"id_number"` // masked: 1101**********1234
	Name     string `json:"name"`      // masked: 张*
}

// MaskApplicant masks an applicant's ID number and name (protocol/mask).
func MaskApplicant(idType, idNumber, name string) Applicant {
	return Applicant{IDType: idType, IDNumber: mask.Number(idNumber), Name: mask.Name(name)}
}

// Code describes a scanned code; the code itself is never in the event unmasked.
type Code struct {
	Type   string `json:"type"` // ehc_offline | ehc_online | payment | insurance | unknown
	Scheme string `json:"scheme,omitempty"`
	Masked string `json:"masked,omitempty"`
	AIM    string `json:"aim,omitempty"`
}

// Card describes a physical card read.
type Card struct {
	Kind   string `json:"kind"` // resident_health_card | social_security_card | resident_id_card | unknown
	Reader string `json:"reader,omitempty"`
	ATR    string `json:"atr,omitempty"`
	// ReaderStatus is the reader's status code (two hex digits) when the read failed
	// with reason reader_error: not personal data, so the platform gets it too.
	ReaderStatus string `json:"reader_status,omitempty"`

	// What the card says of itself (CARDS.md, EF05), for the local API only: the HIS
	// compatible output (/compat/v1/sscard) needs it, PLATFORM.md's card has none of it,
	// and ForPlatform leaves it out.
	CardID    string `json:"card_id,omitempty"`    // SSC card identification code, 32 hex digits
	Version   string `json:"version,omitempty"`    // the card's spec version, e.g. "3.00"
	IssueDate string `json:"issue_date,omitempty"` // YYYYMMDD
	Expiry    string `json:"expiry,omitempty"`     // YYYYMMDD
}

// Verification is the verdict on the code or card.
type Verification struct {
	Status     string `json:"status"` // valid | invalid | pending
	Reason     string `json:"reason,omitempty"`
	Offline    bool   `json:"offline"`
	TrustStale bool   `json:"trust_stale"`
	// A valid EHC1 code's facts (CODES.md): pointers, because 0 is a real root index,
	// issuer, serial and sequence, and only a field that does not apply is left out.
	RootIndex   *int       `json:"root_index,omitempty"`
	IssuerID    *uint32    `json:"issuer_id,omitempty"`
	CertSerial  *uint32    `json:"cert_serial,omitempty"`
	Sequence    *uint32    `json:"sequence,omitempty"`
	Extension   *string    `json:"extension,omitempty"` // hex; "" when the code has none
	GeneratedAt *time.Time `json:"generated_at,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// Identity is who the code or card says is here. Personal fields are sealed at rest and
// masked in logs.
type Identity struct {
	EHCID           string `json:"ehc_id,omitempty"`
	HolderCategory  *int   `json:"holder_category,omitempty"` // EHC1 codes only; 0 is a category
	IDType          string `json:"id_type,omitempty"`
	IDNumber        string `json:"id_number,omitempty"`
	Name            string `json:"name,omitempty"`
	Gender          string `json:"gender,omitempty"`
	Ethnicity       string `json:"ethnicity,omitempty"`
	BirthDate       string `json:"birth_date,omitempty"`
	CardNo          string `json:"card_no,omitempty"`
	IssuerOrg       string `json:"issuer_org,omitempty"`
	IdentityPartial bool   `json:"identity_partial,omitempty"`
	Photo           string `json:"photo,omitempty"` // base64 JPEG: local API only

	// The resident ID card's own fields (CARDS.md, GA 467), for a card application on
	// this terminal: local API only (ForPlatform leaves them out).
	Address     string `json:"address,omitempty"`
	IDAuthority string `json:"id_authority,omitempty"`
	IDValidFrom string `json:"id_valid_from,omitempty"` // YYYYMMDD
	IDValidTo   string `json:"id_valid_to,omitempty"`   // YYYYMMDD, or 长期 (no expiry)
}

// ForPlatform returns a copy fit to leave the terminal: PLATFORM.md's fields only. The
// photo, the card's own details and the resident ID card's address, authority and
// validity stay on the terminal (they are personal data the platform's identity object
// does not list, and the photo is never to leave).
func (e *Event) ForPlatform() *Event {
	c := *e
	if e.Card != nil {
		c.Card = &Card{Kind: e.Card.Kind, Reader: e.Card.Reader, ATR: e.Card.ATR, ReaderStatus: e.Card.ReaderStatus}
	}
	if id := e.Identity; id != nil && (id.Photo != "" || id.Address != "" || id.IDAuthority != "" || id.IDValidFrom != "" || id.IDValidTo != "") {
		p := *id
		p.Photo, p.Address, p.IDAuthority, p.IDValidFrom, p.IDValidTo = "", "", "", "", ""
		c.Identity = &p
	}
	if e.Application != nil {
		// Masked when made (MaskApplicant); masking is idempotent, so masking again
		// here makes sure an unmasked applicant can never leave.
		a := *e.Application
		a.Applicant = MaskApplicant(a.Applicant.IDType, a.Applicant.IDNumber, a.Applicant.Name)
		c.Application = &a
	}
	return &c
}

// Summary is a one-line, masked description of the event for logs and the demo console.
// It is the only way an identity reaches a log line.
func (e *Event) Summary() string {
	s := e.OccurredAt.Format("15:04:05.000") + " #" + itoa(e.Seq) + " " + e.Source.Device
	if e.Code != nil {
		s += " " + e.Code.Type
		if e.Code.Scheme != "" {
			s += "/" + e.Code.Scheme
		}
		// An EHC1 code's masked form tells a reader of the log nothing the verdict and
		// ehc_id do not; the line stays as the demo and INSTALL.md show it.
		if e.Code.Masked != "" && e.Code.Type != "ehc_offline" {
			s += " " + e.Code.Masked
		}
	}
	if e.Card != nil {
		s += " " + e.Card.Kind
	}
	if a := e.Application; a != nil {
		s += " card_application " + a.Result
		if a.Reason != "" {
			s += " (" + a.Reason + ")"
		}
		s += " " + a.Source + " name=" + mask.Name(a.Applicant.Name) + " id=" + mask.Number(a.Applicant.IDNumber)
		if a.EHCID != "" {
			s += " ehc_id=" + mask.Token(a.EHCID)
		}
	}
	if v := e.Verification; v != nil {
		s += " " + v.Status
		if v.Reason != "" {
			s += " (" + v.Reason + ")"
		}
		if v.TrustStale {
			s += " [trust stale]"
		}
	}
	if id := e.Identity; id != nil {
		if id.EHCID != "" {
			s += " ehc_id=" + mask.Token(id.EHCID)
		}
		if id.Name != "" {
			s += " name=" + mask.Name(id.Name)
		}
		if id.IDNumber != "" {
			s += " id=" + mask.Number(id.IDNumber)
		}
	}
	return s
}

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
