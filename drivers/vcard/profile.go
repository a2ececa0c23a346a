package vcard

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ehc-agent/ehc-agent/protocol/apdu"
)

// Profile describes one virtual card. YAML, or JSON (which YAML reads as it is);
// unknown keys are refused. Every field has a default, so `kind: psam` is a whole
// profile; configs/profiles holds examples.
type Profile struct {
	Kind     string        `yaml:"kind"`      // resident_health_card | social_security_card | psam | transit | blank
	ATR      string        `yaml:"atr"`       // hex; default: one per kind (an RHC's bytes 5..12 are its card diversifier)
	T0       *bool         `yaml:"t0"`        // T=0 behaviour (61xx, 6Cxx); default true. false: answers like a T=1 card
	Key      string        `yaml:"key"`       // hex, 16 bytes: the internal-auth key an RHC and its PSAM share
	PIN      string        `yaml:"pin"`       // psam: hex digits, default 123456 (VERIFY data 12 34 56)
	PINTries int           `yaml:"pin_tries"` // psam: default 3; a wrong PIN that many times blocks it
	Holder   Holder        `yaml:"holder"`
	Card     CardInfo      `yaml:"card"`
	Photo    Photo         `yaml:"photo"`
	Delay    time.Duration `yaml:"delay"`  // before every answer: a slow card
	Faults   []Fault       `yaml:"faults"` // see Fault
}

// Holder is the person on an RHC or SSC.
type Holder struct {
	Name          string `yaml:"name"`           // GBK on the card: 30 bytes, 15 Chinese characters
	NameExtension string `yaml:"name_extension"` // SSC 2.0/3.0: the rest of a long name (EF06 tag 4E)
	Gender        string `yaml:"gender"`         // "1" male, "2" female
	Ethnicity     string `yaml:"ethnicity"`      // GB 3304 code, "01" Han
	BirthDate     string `yaml:"birth_date"`     // YYYYMMDD
	IDNumber      string `yaml:"id_number"`      // 18 characters
}

// CardInfo is what the card says about itself.
type CardInfo struct {
	Number      string `yaml:"number"`       // RHC: default the ID number (CARDS.md); SSC: AN9
	Version     string `yaml:"version"`      // RHC EF05 tag 02, default "0100"; SSC EF05 tag 03, default "3.00" ("1.00": a first-generation card, no name extension)
	IssuerName  string `yaml:"issuer_name"`  // RHC EF05 tag 03
	IssuerCode  string `yaml:"issuer_code"`  // RHC EF05 tag 04, up to 22 digits
	IssueDate   string `yaml:"issue_date"`   // YYYYMMDD
	Expiry      string `yaml:"expiry"`       // YYYYMMDD: RHC EF08, SSC EF05 tag 06
	CityCode    string `yaml:"city_code"`    // RHC EF05 tag 39, 6 digits; its first 4 are the city diversifier
	GenderASCII bool   `yaml:"gender_ascii"` // RHC: gender as the ASCII digit, not the binary value CARDS.md names
	ID          string `yaml:"id"`           // SSC EF05 tag 01, the card identification code: 16 bytes of hex (region, RID D156000005, …)
}

// Photo is the RHC's EF07.
type Photo struct {
	File           string `yaml:"file"`            // a JPEG (relative to the profile); default: a generated portrait
	None           bool   `yaml:"none"`            // an empty EF07 (length 0)
	DeclaredLength int    `yaml:"declared_length"` // EF07's length field when it should lie (photo_too_large tests)
}

// Fault is a misbehaviour of the card at one command. It fires at the At-th C-APDU since
// insertion, or at the first one that starts with Match (hex), or where both hold; with
// Repeat at every one that does.
type Fault struct {
	At     int           `yaml:"at"`
	Match  string        `yaml:"match"`
	Action string        `yaml:"action"` // remove | garbage | sw | short | slow
	SW     string        `yaml:"sw"`     // sw: the status word to answer instead, e.g. "6F00"
	Answer string        `yaml:"answer"` // garbage: the raw answer in hex; default DE AD BE EF 90 00
	Delay  time.Duration `yaml:"delay"`  // slow: before the answer
	Repeat bool          `yaml:"repeat"`

	match  []byte
	answer []byte
}

// Fault actions.
const (
	FaultRemove  = "remove"  // the card is pulled: the connection closes instead of an answer
	FaultGarbage = "garbage" // Answer instead of the real answer
	FaultSW      = "sw"      // only SW instead of the real answer
	FaultShort   = "short"   // a 1-byte answer
	FaultSlow    = "slow"    // the real answer after Delay
)

// Defaults of a profile.
const (
	DefaultKey = "00112233445566778899AABBCCDDEEFF"
	DefaultPIN = "123456"
)

var defaultATR = map[string]string{
	KindRHC:     "3B 6D 00 00 00 86 88 45 48 43 31 32 33 34 35 36 37",
	KindSSC:     "3B 6D 00 00 00 81 54 4C 97 86 84 32 02 AD 93 2A 48", // CARDS.md's example
	KindPSAM:    "3B 6C 00 00 10 10 10 30 00 00 00 00 00 00 00 01",
	KindTransit: "3B 6B 00 00 80 65 B0 83 01 04 74 83 00 90 00",
	KindBlank:   "3B 02 14 50",
}

// LoadProfile reads a profile file; a photo file is found relative to it.
func LoadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParseProfile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if p.Photo.File != "" && !filepath.IsAbs(p.Photo.File) {
		p.Photo.File = filepath.Join(filepath.Dir(path), p.Photo.File)
	}
	return p, nil
}

// ParseProfile reads a profile from YAML or JSON.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return &p, nil
}

// New builds the card a profile describes.
func New(p *Profile) (*Card, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	atrHex := p.ATR
	if atrHex == "" {
		atrHex = defaultATR[p.Kind]
	}
	if atrHex == "" {
		return nil, fmt.Errorf("kind: %q is not one of %s, %s, %s, %s, %s", p.Kind, KindRHC, KindSSC, KindPSAM, KindTransit, KindBlank)
	}
	c := &Card{kind: p.Kind, t0: p.T0 == nil || *p.T0, mf: &file{id: 0x3F00, df: true}}
	var err error
	if c.atr, err = unhex(atrHex); err != nil || len(c.atr) < 2 || len(c.atr) > 33 {
		bad("atr", "not 2 to 33 bytes of hex")
	}
	if c.kind == KindRHC && len(c.atr) < 13 {
		bad("atr", "an RHC's ATR needs 13 bytes: bytes 5 to 12 are its card diversifier")
	}
	key := p.Key
	if key == "" {
		key = DefaultKey
	}
	if c.key, err = unhex(key); err != nil || len(c.key) != 16 {
		bad("key", "not 16 bytes of hex")
	}
	b := &builder{bad: bad}
	switch p.Kind {
	case KindRHC:
		b.rhc(c, p)
	case KindSSC:
		b.ssc(c, p)
	case KindPSAM:
		pin := p.PIN
		if pin == "" {
			pin = DefaultPIN
		}
		if c.pin, err = unhex(pin); err != nil || len(c.pin) == 0 || len(c.pin) > 8 {
			bad("pin", "not 2 to 16 hex digits")
		}
		c.maxTries = p.PINTries
		if c.maxTries == 0 {
			c.maxTries = 3
		}
		c.tries = c.maxTries
		c.mf.add(&file{id: 0xDF01, df: true, fci: fci(0xDF01, 0x18)})
	case KindTransit:
		ddf1 := c.mf.add(&file{id: 0xDDF1, df: true, fci: fci(0xDDF1, 0x20)})
		ddf1.add(&file{id: 0xEF15, sfi: 0x15, binary: bytes.Repeat([]byte{0x84}, 30)})
	case KindBlank:
	}
	for i := range p.Faults {
		f := &p.Faults[i]
		key := fmt.Sprintf("faults[%d]", i)
		if f.match, err = unhex(f.Match); err != nil {
			bad(key+".match", "not hex")
		}
		if f.At < 0 || f.At == 0 && f.Match == "" {
			bad(key, "needs at (a command number from 1) or match")
		}
		switch f.Action {
		case FaultRemove, FaultShort:
		case FaultGarbage:
			a := f.Answer
			if a == "" {
				a = "DEADBEEF9000"
			}
			if f.answer, err = unhex(a); err != nil {
				bad(key+".answer", "not hex")
			}
		case FaultSW:
			if f.answer, err = unhex(f.SW); err != nil || len(f.answer) != 2 {
				bad(key+".sw", "not a status word such as 6F00")
			}
		case FaultSlow:
			if f.Delay <= 0 {
				bad(key+".delay", "must be positive")
			}
		default:
			bad(key+".action", "%q is not one of remove, garbage, sw, short, slow", f.Action)
		}
	}
	c.faults, c.delay = p.Faults, p.Delay
	c.df = c.mf
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("profile %s: %w", p.Kind, err)
	}
	return c, nil
}

// builder encodes a profile's values into records, collecting what does not fit.
type builder struct {
	bad func(key, format string, args ...any)
}

func (b *builder) text(key, s string, n int, pad byte) []byte {
	v, err := apdu.EncodeText(s, n, pad)
	if err != nil {
		b.bad(key, "%v", err)
		return make([]byte, n)
	}
	return v
}

func (b *builder) bcd(key, digits string, n int) []byte {
	v, err := apdu.EncodeBCD(digits, n)
	if err != nil {
		b.bad(key, "%v", err)
		return make([]byte, n)
	}
	return v
}

func (b *builder) date(key, s string) []byte {
	if _, err := time.Parse("20060102", s); err != nil {
		b.bad(key, "%q is not a date YYYYMMDD", s)
	}
	return b.bcd(key, s, 4)
}

func rec(tag byte, v []byte) []byte { return append([]byte{tag, byte(len(v))}, v...) }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fci is a plausible answer to SELECT of a DF: FCI template with its file ID, n bytes.
func fci(id uint16, n int) []byte {
	f := append([]byte{0x6F, byte(n - 2), 0x83, 0x02, byte(id >> 8), byte(id)}, make([]byte, n-6)...)
	return f
}

// holder fills the defaults of a holder so that `kind: …` alone is a working card.
func holder(h Holder) Holder {
	h.Name = or(h.Name, "张三")
	h.Gender = or(h.Gender, "1")
	h.Ethnicity = or(h.Ethnicity, "01")
	h.BirthDate = or(h.BirthDate, "19800101")
	h.IDNumber = or(h.IDNumber, "110101198001011232")
	return h
}

func (b *builder) rhc(c *Card, p *Profile) {
	h, ci := holder(p.Holder), p.Card
	city := b.bcd("card.city_code", or(ci.CityCode, "440100"), 3)
	c.cityDiv = append(bytes.Clone(city[:2]), 0x30, 0x30, 0x30, 0x30, 0x30, 0x30)
	gender := b.bcd("holder.gender", h.Gender, 1)[0] >> 4
	if ci.GenderASCII {
		gender += '0'
	}
	cert := make([]byte, 180)
	for i := range cert {
		cert[i] = byte(i*31 + 7)
	}
	ddf1 := c.mf.add(&file{id: 0xDDF1, df: true, fci: fci(0xDDF1, 0x1C)})
	// The record order is a real card's: the card number, tag 08, is record 7 (CARDS.md).
	ddf1.add(&file{id: 0xEF05, sfi: 5, records: [][]byte{
		rec(0x01, b.text("card.category", "1", 1, 0)),
		rec(0x02, b.text("card.version", or(ci.Version, "0100"), 4, 0)),
		rec(0x03, b.text("card.issuer_name", or(ci.IssuerName, "广州市卫生健康委员会"), 30, 0)),
		rec(0x04, b.bcd("card.issuer_code", or(ci.IssuerCode, "44010000000"), 11)),
		rec(0x05, cert),
		rec(0x06, b.date("card.issue_date", or(ci.IssueDate, "20200115"))),
		rec(0x08, b.text("card.number", or(ci.Number, h.IDNumber), 18, 0)),
		rec(0x09, b.text("", "123", 3, 0)),
		rec(0x0A, b.text("", "0000000001", 10, 0)),
		rec(0x39, city),
	}})
	ddf1.add(&file{id: 0xEF06, sfi: 6, secured: true, records: [][]byte{
		rec(0x0B, b.text("holder.name", h.Name, 30, 0)),
		rec(0x0C, []byte{gender}),
		rec(0x0D, b.bcd("holder.ethnicity", h.Ethnicity, 1)),
		rec(0x0E, b.date("holder.birth_date", h.BirthDate)),
		rec(0x0F, b.text("holder.id_number", h.IDNumber, 18, 0)),
	}})
	ddf1.add(&file{id: 0xEF07, sfi: 7, secured: true, binary: b.photo(p.Photo)})
	ddf1.add(&file{id: 0xEF08, sfi: 8, secured: true, records: [][]byte{
		rec(0x07, b.date("card.expiry", or(ci.Expiry, "20400115"))),
	}})
}

func (b *builder) photo(p Photo) []byte {
	var jpeg []byte
	switch {
	case p.None:
	case p.File != "":
		var err error
		if jpeg, err = os.ReadFile(p.File); err != nil {
			b.bad("photo.file", "%v", err)
		}
	default:
		jpeg = Portrait()
	}
	n := len(jpeg)
	if p.DeclaredLength != 0 {
		n = p.DeclaredLength
	}
	if n > 0xFFFF {
		b.bad("photo", "%d bytes do not fit EF07's 2-byte length", n)
	}
	return append([]byte{byte(n >> 8), byte(n)}, jpeg...)
}

// dfNameSSC is the social-security application's DF name, "sx1.sh.社会保障" in GBK.
var dfNameSSC = []byte{0x73, 0x78, 0x31, 0x2E, 0x73, 0x68, 0x2E, 0xC9, 0xE7, 0xBB, 0xE1, 0xB1, 0xA3, 0xD5, 0xCF}

func (b *builder) ssc(c *Card, p *Profile) {
	h, ci := holder(p.Holder), p.Card
	version := or(ci.Version, "3.00")
	id := make([]byte, 16) // region code, RID D156000005, …
	copy(id, []byte{0x44, 0x01, 0x00, 0xD1, 0x56, 0x00, 0x00, 0x05})
	if ci.ID != "" {
		var err error
		if id, err = unhex(ci.ID); err != nil || len(id) != 16 {
			b.bad("card.id", "not 16 bytes of hex")
			id = make([]byte, 16)
		}
	}
	gender := h.Gender
	app := c.mf.add(&file{id: 0x1001, name: dfNameSSC, df: true, fci: fci(0x1001, 0x1E)})
	app.add(&file{id: 0xEF05, sfi: 5, records: [][]byte{
		rec(0x01, id),
		rec(0x02, []byte{'3'}),
		rec(0x03, b.text("card.version", version, 4, 0x20)),
		rec(0x04, b.text("", "440100D15600", 12, 0x20)),
		rec(0x05, b.date("card.issue_date", or(ci.IssueDate, "20210601"))),
		rec(0x06, b.date("card.expiry", or(ci.Expiry, "20310601"))),
		rec(0x07, b.text("card.number", or(ci.Number, "A12345678"), 9, 0x20)),
	}})
	ef06 := [][]byte{
		rec(0x08, b.text("holder.id_number", h.IDNumber, 18, 0x20)),
		rec(0x09, b.text("holder.name", h.Name, 30, 0x20)),
	}
	// Later generations put the name extension third, pushing gender to record 4: why
	// CARDS.md reads by record identifier.
	if !strings.HasPrefix(version, "1") {
		ef06 = append(ef06, rec(0x4E, b.text("holder.name_extension", h.NameExtension, 20, 0x00)))
	} else if h.NameExtension != "" {
		b.bad("holder.name_extension", "a first-generation card (version %s) has none", version)
	}
	birthplace := "110101"
	if len(h.IDNumber) >= 6 {
		birthplace = h.IDNumber[:6]
	}
	ef06 = append(ef06,
		rec(0x0A, b.text("holder.gender", gender, 1, 0x20)),
		rec(0x0B, b.bcd("holder.ethnicity", h.Ethnicity, 1)),
		rec(0x0C, b.bcd("", birthplace, 3)),
		rec(0x0D, b.date("holder.birth_date", h.BirthDate)),
	)
	app.add(&file{id: 0xEF06, sfi: 6, records: ef06})
}

func unhex(s string) ([]byte, error) {
	return hex.DecodeString(strings.NewReplacer(" ", "", ":", "").Replace(s))
}
