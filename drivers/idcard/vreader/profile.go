package vreader

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/ehc-agent/ehc-agent/protocol/ga467"
)

// Profile is one virtual card, as configs/profiles/idcard-*.yaml describe it: the
// fields of ga467.IDCard, and optionally a card-type mark for a card of another kind.
type Profile struct {
	Card ga467.IDCard
	// Type is 0 for a resident ID card, else the mark of another kind ('I', 'J'): see
	// Reader.PlaceUnsupported.
	Type rune
}

// profileFile is the YAML form. Every field is a string, so that 01 and 19900307 are
// kept as written, quoted or not.
type profileFile struct {
	Name      string `yaml:"name"`
	Gender    string `yaml:"gender"`
	Ethnicity string `yaml:"ethnicity"`
	BirthDate string `yaml:"birth_date"`
	Address   string `yaml:"address"`
	IDNumber  string `yaml:"id_number"`
	Authority string `yaml:"authority"`
	ValidFrom string `yaml:"valid_from"`
	ValidTo   string `yaml:"valid_to"`
	Photo     string `yaml:"photo"`     // base64 of the WLT bytes; empty: DefaultPhoto
	CardType  string `yaml:"card_type"` // "", or "I" / "J" for a card of another kind
}

// LoadProfile reads a profile file. Unknown keys and a record that the reader could not
// send (a field too long, a malformed date or ID number) are errors naming the file;
// they never quote the data.
func LoadProfile(path string) (Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, err
	}
	return ParseProfile(b, path)
}

// ParseProfile reads a profile from YAML; name is used in errors.
func ParseProfile(b []byte, name string) (Profile, error) {
	var f profileFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Profile{}, fmt.Errorf("%s: %w", name, err)
	}
	p := Profile{Card: ga467.IDCard{
		Name: f.Name, Gender: f.Gender, Ethnicity: f.Ethnicity, BirthDate: f.BirthDate,
		Address: f.Address, IDNumber: f.IDNumber, Authority: f.Authority,
		ValidFrom: f.ValidFrom, ValidTo: f.ValidTo,
	}}
	switch f.CardType {
	case "":
	case "I", "J":
		p.Type = rune(f.CardType[0])
	default:
		return Profile{}, fmt.Errorf("%s: card_type %q is not I or J", name, f.CardType)
	}
	p.Card.Photo = DefaultPhoto(f.IDNumber)
	if f.Photo != "" {
		var err error
		if p.Card.Photo, err = base64.StdEncoding.DecodeString(f.Photo); err != nil {
			return Profile{}, fmt.Errorf("%s: photo is not base64: %w", name, err)
		}
	}
	// The record must be one a host reads back as it is: encode, then decode.
	data, err := p.Card.AppendBinary(nil)
	if err == nil {
		_, err = ga467.ParseCard(data)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// Place puts the profile's card on r.
func (p Profile) Place(r *Reader) error {
	if p.Type != 0 {
		return r.PlaceUnsupported(p.Card, p.Type)
	}
	return r.Place(p.Card)
}

// DefaultPhoto is 1,024 bytes standing in for a WLT photo, the same for the same seed
// (the ID number). Like real compressed data it may hold any byte sequence, and it holds
// the frame preamble on purpose, several times: a host must never resynchronise inside a
// good frame.
func DefaultPhoto(seed string) []byte {
	h := fnv.New64a()
	h.Write([]byte(seed))
	r := rand.New(rand.NewPCG(h.Sum64(), 467))
	p := make([]byte, ga467.MaxPhotoLen)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	for _, at := range []int{0, 333, 700, ga467.MaxPhotoLen - ga467.PreambleLen - 2} {
		copy(p[at:], ga467.Preamble+"\x05\x08")
	}
	return p
}
