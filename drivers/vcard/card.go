// Package vcard plays the cards of CARDS.md — a resident health card, a social security
// card, the PSAM of an RHC reader, and cards the agent must refuse (a transit card that
// answers DDF1, a blank card) — to pcscd's vpcd driver, so that tests and the demo drive
// the real PC/SC stack (DESIGN.md, "Virtual devices", PC/SC).
//
// A Card is a small ISO 7816-4 file system built from a Profile (YAML or JSON), with the
// commands CARDS.md uses: SELECT by file ID and DF name, READ RECORD by number and by
// record identifier (through an SFI or the current EF), READ BINARY, GET RESPONSE, GET
// CHALLENGE, EXTERNAL AUTHENTICATE, VERIFY and the PSAM's 80 DE / 80 FA. With T=0
// behaviour on (the default) it answers like a T=0 card: `61xx` for the data of a case 3
// or 4 command, `6Cxx` for a wrong Le. Insert connects it to a vpcd reader over the
// protocol of DESIGN.md; faults (remove mid-read, garbage, wrong status words, slow
// answers) are applied there.
//
// The internal authentication is a stand-in for the real one, whose keys are the
// issuer's: the PSAM and the card share Profile.Key, the PSAM derives an SM4 session key
// from the card and city diversifiers and the card's challenge, the card checks the
// cryptogram the agent relays. It is enough to prove that the agent relays the right
// bytes in the right order, which is all the agent does (CARDS.md).
package vcard

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/apdu"
)

// Kinds of card a profile can describe.
const (
	KindRHC     = "resident_health_card"
	KindSSC     = "social_security_card"
	KindPSAM    = "psam"
	KindTransit = "transit" // answers DDF1 like Lingnan Pass or T-Union, has no EF05
	KindBlank   = "blank"   // an MF and nothing else
)

// file is a DF or an EF of the card.
type file struct {
	id       uint16
	name     []byte // DF name, for SELECT by name
	sfi      byte   // EF short file identifier, 0 for none
	df       bool
	parent   *file
	children []*file
	records  [][]byte // record EF: each `tag | length | value`
	binary   []byte   // transparent EF
	secured  bool     // reading needs the external authentication
	fci      []byte   // answer to SELECT (DF only)
}

func (f *file) child(id uint16) *file {
	for _, c := range f.children {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (f *file) add(c *file) *file {
	c.parent = f
	f.children = append(f.children, c)
	return c
}

// Card is one virtual card. Its methods are safe for concurrent use; a card is meant to
// be inserted in one reader at a time.
type Card struct {
	kind string
	atr  []byte
	t0   bool
	key  []byte // internal-auth key (RHC and PSAM)
	pin  []byte // PSAM

	mf     *file
	faults []Fault       // applied by Insert's session, per insertion
	delay  time.Duration // before every answer

	mu       sync.Mutex
	df, ef   *file
	pending  []byte // T=0: data waiting for GET RESPONSE
	chal     []byte // card: the last GET CHALLENGE, for EXTERNAL AUTHENTICATE
	authed   bool   // card: external authentication passed since power-on
	verified bool   // PSAM: PIN verified since power-on
	session  []byte // PSAM: key of the last 80 DE
	tries    int    // PSAM: PIN tries left; survives power cycles, as on a real PSAM
	maxTries int    // PSAM: what a right PIN restores
	cityDiv  []byte // card: city diversifier, from EF05 tag 39
	commands int
}

// Kind is the profile's kind.
func (c *Card) Kind() string { return c.kind }

// ATR is the card's answer to reset.
func (c *Card) ATR() []byte { return bytes.Clone(c.atr) }

// Commands counts the C-APDUs the card has answered.
func (c *Card) Commands() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commands
}

// PINTries is the PSAM's PIN tries left.
func (c *Card) PINTries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tries
}

// Reset is a power-on or a warm reset: the card forgets its selection and security state.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.df, c.ef = c.mf, nil
	c.pending, c.chal, c.session = nil, nil, nil
	c.authed, c.verified = false, false
}

// Process answers one C-APDU with an R-APDU.
func (c *Card) Process(capdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commands++
	cmd, err := apdu.ParseCommand(capdu)
	if err != nil {
		return sw(apdu.SWWrongLength)
	}
	if cmd.CLA == 0x00 && cmd.INS == 0xC0 {
		return c.getResponse(cmd.Ne)
	}
	c.pending = nil
	data, status := c.handle(cmd)
	if status != apdu.SWOK || len(data) == 0 {
		return sw(status)
	}
	caseTwo := len(cmd.Data) == 0 && cmd.Ne > 0
	switch {
	case c.t0 && caseTwo && cmd.Ne != len(data):
		return sw(0x6C00 | uint16(len(data)&0xFF))
	case c.t0 && !caseTwo:
		// T=0 carries no data with a command that sends data: the answer waits for
		// GET RESPONSE.
		c.pending = data
		return sw(0x6100 | uint16(len(data)&0xFF))
	case !c.t0 && cmd.Ne == 0:
		return sw(apdu.SWOK)
	case !c.t0 && cmd.Ne < len(data):
		return sw(0x6C00 | uint16(len(data)&0xFF))
	}
	return append(data, 0x90, 0x00)
}

func (c *Card) getResponse(ne int) []byte {
	p := c.pending
	switch {
	case len(p) == 0:
		return sw(apdu.SWConditionsNotSatisfied)
	case ne < len(p) && ne != 256:
		c.pending = p[ne:]
		return append(bytes.Clone(p[:ne]), 0x61, byte(len(c.pending)))
	case ne > len(p) && !(ne == 256 && len(p) < 256):
		return sw(0x6C00 | uint16(len(p)))
	}
	c.pending = nil
	return append(bytes.Clone(p), 0x90, 0x00)
}

// Transmit makes the card an apdu.Transmitter in-process, without vpcd: what it answers
// is Process's, without the profile's delay and faults (those belong to an insertion).
func (c *Card) Transmit(capdu []byte) ([]byte, error) { return c.Process(capdu), nil }

func sw(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }

func (c *Card) handle(cmd apdu.Command) ([]byte, uint16) {
	switch {
	case cmd.CLA == 0x00 && cmd.INS == 0xA4:
		return c.selectFile(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0xB2:
		return c.readRecord(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0xB0:
		return c.readBinary(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0x84 && c.kind == KindRHC:
		return c.getChallenge(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0x82 && c.kind == KindRHC:
		return c.externalAuth(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0x20 && c.kind == KindPSAM:
		return c.verify(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0xDE && c.kind == KindPSAM:
		return c.diversify(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0xFA && c.kind == KindPSAM:
		return c.encrypt(cmd)
	case cmd.CLA != 0x00 && cmd.CLA != 0x80:
		return nil, apdu.SWCLANotSupported
	}
	return nil, apdu.SWINSNotSupported
}

func (c *Card) selectFile(cmd apdu.Command) ([]byte, uint16) {
	var f *file
	switch {
	case cmd.P1 == 0x04:
		f = findName(c.mf, cmd.Data)
	case cmd.P1 == 0x00 && len(cmd.Data) == 2:
		id := uint16(cmd.Data[0])<<8 | uint16(cmd.Data[1])
		switch {
		case id == 0x3F00:
			f = c.mf
		case c.df.child(id) != nil:
			f = c.df.child(id)
		case c.mf.child(id) != nil:
			f = c.mf.child(id)
		}
	default:
		return nil, apdu.SWWrongP1P2
	}
	if f == nil {
		return nil, apdu.SWFileNotFound
	}
	if f.df {
		c.df, c.ef = f, nil
		return bytes.Clone(f.fci), apdu.SWOK
	}
	c.df, c.ef = f.parent, f
	return nil, apdu.SWOK
}

func findName(f *file, name []byte) *file {
	if f.df && f.name != nil && bytes.Equal(f.name, name) {
		return f
	}
	for _, ch := range f.children {
		if g := findName(ch, name); g != nil {
			return g
		}
	}
	return nil
}

// readRecord: P2 = SFI << 3 | mode; mode 4 reads record number P1, mode 0 the first
// record whose tag is P1. SFI 0 is the current EF.
func (c *Card) readRecord(cmd apdu.Command) ([]byte, uint16) {
	ef := c.ef
	if sfi := cmd.P2 >> 3; sfi != 0 {
		ef = nil
		for _, ch := range c.df.children {
			if ch.sfi == sfi {
				ef = ch
			}
		}
		if ef == nil {
			return nil, apdu.SWFileNotFound
		}
		c.ef = ef
	}
	if ef == nil || ef.df || ef.records == nil {
		return nil, 0x6981 // command incompatible with file structure
	}
	if ef.secured && !c.authed {
		return nil, apdu.SWSecurityNotSatisfied
	}
	var r []byte
	switch cmd.P2 & 7 {
	case 4:
		if n := int(cmd.P1); n >= 1 && n <= len(ef.records) {
			r = ef.records[n-1]
		}
	case 0:
		for _, rec := range ef.records {
			if rec[0] == cmd.P1 {
				r = rec
				break
			}
		}
	default:
		return nil, apdu.SWWrongP1P2
	}
	if r == nil {
		return nil, apdu.SWRecordNotFound
	}
	return bytes.Clone(r), apdu.SWOK
}

func (c *Card) readBinary(cmd apdu.Command) ([]byte, uint16) {
	ef := c.ef
	if ef == nil || ef.binary == nil || cmd.P1&0x80 != 0 {
		return nil, 0x6981
	}
	if ef.secured && !c.authed {
		return nil, apdu.SWSecurityNotSatisfied
	}
	off := int(cmd.P1)<<8 | int(cmd.P2)
	if off >= len(ef.binary) {
		return nil, 0x6B00
	}
	end := min(off+cmd.Ne, len(ef.binary))
	return bytes.Clone(ef.binary[off:end]), apdu.SWOK
}

func (c *Card) getChallenge(cmd apdu.Command) ([]byte, uint16) {
	if cmd.Ne != 8 {
		return nil, apdu.SWWrongLength
	}
	c.chal = make([]byte, 8)
	rand.Read(c.chal)
	return bytes.Clone(c.chal), apdu.SWOK
}

// externalAuth checks `T ‖ M ‖ key id`: T must be the cryptogram of M ‖ 00×8 under the
// session key the PSAM derived for this card and challenge.
func (c *Card) externalAuth(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P2 != 0x04 || len(cmd.Data) != 17 {
		return nil, apdu.SWWrongP1P2
	}
	chal := c.chal
	c.chal = nil // one try per challenge
	if chal == nil {
		return nil, apdu.SWConditionsNotSatisfied
	}
	block := append(bytes.Clone(cmd.Data[8:16]), make([]byte, 8)...)
	want := cryptogram(sessionKey(c.key, c.atr[5:13], c.cityDiv, chal), block)
	if !bytes.Equal(want, cmd.Data[:8]) {
		return nil, 0x6300
	}
	c.authed = true
	return nil, apdu.SWOK
}

func (c *Card) verify(cmd apdu.Command) ([]byte, uint16) {
	switch {
	case c.df.id != 0xDF01:
		return nil, apdu.SWConditionsNotSatisfied
	case c.tries == 0:
		return nil, apdu.SWAuthBlocked
	case !bytes.Equal(cmd.Data, c.pin):
		c.tries--
		if c.tries == 0 {
			return nil, apdu.SWAuthBlocked
		}
		return nil, 0x63C0 | uint16(c.tries)
	}
	c.tries = c.maxTries
	c.verified = true
	return nil, apdu.SWOK
}

// diversify is 80 DE 47 3x: card diversifier ‖ city diversifier ‖ challenge.
func (c *Card) diversify(cmd apdu.Command) ([]byte, uint16) {
	switch {
	case !c.verified:
		return nil, apdu.SWSecurityNotSatisfied
	case cmd.P1 != 0x47 || cmd.P2 < 0x31 || cmd.P2 > 0x34:
		return nil, apdu.SWWrongP1P2
	case len(cmd.Data) != 24:
		return nil, apdu.SWWrongLength
	}
	c.session = sessionKey(c.key, cmd.Data[:8], cmd.Data[8:16], cmd.Data[16:24])
	return nil, apdu.SWOK
}

// encrypt is 80 FA 00 00 10: the block under the session key.
func (c *Card) encrypt(cmd apdu.Command) ([]byte, uint16) {
	switch {
	case c.session == nil:
		return nil, apdu.SWConditionsNotSatisfied
	case len(cmd.Data) != 16:
		return nil, apdu.SWWrongLength
	}
	return sm4Encrypt(c.session, cmd.Data), apdu.SWOK
}

func (c *Card) String() string { return fmt.Sprintf("vcard %s (ATR % X)", c.kind, c.atr) }
