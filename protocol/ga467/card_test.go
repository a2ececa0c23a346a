package ga467

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// testPhoto is 1,024 opaque bytes that contain the preamble several times, as a WLT image
// may: a decoder must never resynchronise inside a good frame.
func testPhoto(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	p := make([]byte, MaxPhotoLen)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	for _, at := range []int{0, 100, 517, MaxPhotoLen - PreambleLen - 2} {
		copy(p[at:], Preamble+"\x05\x08")
	}
	return p
}

// testCard is a fictional resident: a name with characters that GBK has and GB 2312 has
// not (喆, 堃), which UCS-2 carries like any other.
func testCard() IDCard {
	return IDCard{
		Name:      "欧阳喆堃",
		Gender:    "1",
		Ethnicity: "01",
		BirthDate: "19900307",
		Address:   "北京市海淀区中关村大街27号院3号楼2单元501室",
		IDNumber:  "11010819900307123X",
		Authority: "北京市公安局海淀分局",
		ValidFrom: "20150307",
		ValidTo:   "20350307",
		Photo:     testPhoto(7),
	}
}

func equalCard(a, b IDCard) bool {
	return a.Name == b.Name && a.Gender == b.Gender && a.Ethnicity == b.Ethnicity &&
		a.BirthDate == b.BirthDate && a.Address == b.Address && a.IDNumber == b.IDNumber &&
		a.Authority == b.Authority && a.ValidFrom == b.ValidFrom && a.ValidTo == b.ValidTo &&
		bytes.Equal(a.Photo, b.Photo)
}

func encode(t testing.TB, c IDCard) []byte {
	t.Helper()
	b, err := c.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setText overwrites a text field of encoded record data with s (UCS-2), space-padded.
func setText(data []byte, f field, s string) {
	text := data[lensLen : lensLen+TextLen]
	for i := f.off; i < f.off+f.len; i += 2 {
		text[i], text[i+1] = ' ', 0
	}
	at := f.off
	for _, r := range s {
		binary.LittleEndian.PutUint16(text[at:], uint16(r))
		at += 2
	}
}

func TestCardRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*IDCard)
	}{
		{"gbk-only characters", func(*IDCard) {}},
		{"longest name, address and authority fill their fields", func(c *IDCard) {
			c.Name = "穆罕默德·阿卜杜热合曼·吐尔逊"                        // 15 characters, no padding left
			c.Address = "新疆维吾尔自治区乌鲁木齐市天山区解放北路街道人民路社区幸福巷十八号院内" // 35
			c.Authority = "乌鲁木齐市公安局天山分局户政科"                   // 15
			c.Ethnicity = "05"
			c.Gender = "2"
		}},
		{"no expiry", func(c *IDCard) { c.ValidTo = LongTerm }},
		{"no photo", func(c *IDCard) { c.Photo = nil }},
		{"short photo", func(c *IDCard) { c.Photo = c.Photo[:300] }},
		{"one-character name", func(c *IDCard) { c.Name = "琰" }},
		{"outside the BMP, as UTF-16", func(c *IDCard) { c.Name = "王𠀀" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCard()
			tc.edit(&c)
			data := encode(t, c)
			if len(data) != lensLen+TextLen+len(c.Photo) {
				t.Fatalf("%d bytes", len(data))
			}
			got, err := ParseCard(data)
			if err != nil {
				t.Fatal(err)
			}
			if c.Photo == nil {
				c.Photo = []byte{}
			}
			if !equalCard(got, c) {
				t.Fatalf("decoded %+v\nwant %+v", got, c)
			}
			data[len(data)-1] ^= 0xFF // the photo is a copy
			if len(c.Photo) > 0 && got.Photo[len(got.Photo)-1] == data[len(data)-1] {
				t.Fatal("photo aliases the input")
			}
		})
	}
}

// Field widths in characters: 15 name, 35 address, 15 authority.
func TestFieldWidths(t *testing.T) {
	c := testCard()
	c.Name = "穆罕默德·阿卜杜热合曼·吐尔逊"
	c.Address = "新疆维吾尔自治区乌鲁木齐市天山区解放北路街道人民路社区幸福巷十八号院内"
	c.Authority = "乌鲁木齐市公安局天山分局户政科"
	for _, s := range []struct {
		v string
		n int
	}{{c.Name, 15}, {c.Address, 35}, {c.Authority, 15}} {
		if n := len([]rune(s.v)); n != s.n {
			t.Fatalf("%q has %d characters, want %d", s.v, n, s.n)
		}
	}
	encode(t, c)
	c.Name += "江"
	if _, err := c.AppendBinary(nil); err != (DataError{"name"}) {
		t.Fatalf("16-character name: %v", err)
	}
	c = testCard()
	c.Address = string(bytes.Repeat([]byte("路"), 36))
	if _, err := c.AppendBinary(nil); err != (DataError{"address"}) {
		t.Fatalf("36-character address: %v", err)
	}
	c = testCard()
	c.Name = "\xff王" // not UTF-8
	if _, err := c.AppendBinary(nil); err != (DataError{"name"}) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	c = testCard()
	c.Name = "穆罕默德·阿卜杜热合曼·吐尔𠀀" // 15 characters, but 16 code units
	if _, err := c.AppendBinary(nil); err != (DataError{"name"}) {
		t.Fatalf("surrogate pair past the width: %v", err)
	}
	c = testCard()
	c.Photo = make([]byte, MaxPhotoLen+1)
	if _, err := c.AppendBinary(nil); err != (DataError{"photo_length"}) {
		t.Fatalf("long photo: %v", err)
	}
}

// Padding with NUL instead of spaces, and a lower-case check digit, are read as a
// reader means them.
func TestCardTolerance(t *testing.T) {
	c := testCard()
	data := encode(t, c)
	text := data[lensLen : lensLen+TextLen]
	for i := fName.off + 2*len([]rune(c.Name)); i < fName.off+fName.len; i++ {
		text[i] = 0
	}
	setText(data, fIDNumber, "11010819900307123x")
	got, err := ParseCard(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != c.Name || got.IDNumber != c.IDNumber {
		t.Fatalf("name %q id %q", got.Name, got.IDNumber)
	}
}

func TestCardErrors(t *testing.T) {
	good := encode(t, testCard())
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		want error
	}{
		{"empty", func([]byte) []byte { return nil }, DataError{"length"}},
		{"text length", func(b []byte) []byte { b[1] = 0xFF; return b }, DataError{"text_length"}},
		{"photo length over 1024", func(b []byte) []byte { b[2], b[3] = 0x04, 0x01; return append(b, 0) }, DataError{"photo_length"}},
		{"photo length beyond the data", func(b []byte) []byte { return b[:len(b)-1] }, DataError{"length"}},
		{"bytes after the photo", func(b []byte) []byte { return append(b, 0) }, DataError{"length"}},
		{"no name", func(b []byte) []byte { setText(b, fName, ""); return b }, DataError{"name"}},
		{"control character", func(b []byte) []byte { setText(b, fName, "王\x01"); return b }, DataError{"name"}},
		{"lone surrogate", func(b []byte) []byte { setText(b, fAddress, ""); putUnit(b, fAddress, 0xD800); return b }, DataError{"address"}},
		{"gender", func(b []byte) []byte { setText(b, fGender, "M"); return b }, DataError{"gender"}},
		{"ethnicity", func(b []byte) []byte { setText(b, fEthnicity, "1"); return b }, DataError{"ethnicity"}},
		{"birth date", func(b []byte) []byte { setText(b, fBirthDate, "19901307"); return b }, DataError{"birth_date"}},
		{"id number", func(b []byte) []byte { setText(b, fIDNumber, "1101081990030712"); return b }, DataError{"id_number"}},
		{"id number letter", func(b []byte) []byte { setText(b, fIDNumber, "1101081990030712Y3"); return b }, DataError{"id_number"}},
		{"authority", func(b []byte) []byte { setText(b, fAuthority, ""); return b }, DataError{"authority"}},
		{"valid from", func(b []byte) []byte { setText(b, fValidFrom, "2015030"); return b }, DataError{"valid_from"}},
		{"valid to", func(b []byte) []byte { setText(b, fValidTo, "长"); return b }, DataError{"valid_to"}},
		{"foreign permanent resident card", func(b []byte) []byte { setText(b, fCardType, "I"); return b }, UnsupportedError{'I'}},
		{"residence card", func(b []byte) []byte { setText(b, fCardType, "J"); return b }, UnsupportedError{'J'}},
	} {
		_, err := ParseCard(tc.edit(bytes.Clone(good)))
		if err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		var de DataError
		var ue UnsupportedError
		if !errors.As(err, &de) && !errors.As(err, &ue) {
			t.Errorf("%s: error type %T", tc.name, err)
		}
	}
}

// putUnit writes one raw UCS-2 code unit at the start of a field.
func putUnit(data []byte, f field, u uint16) {
	binary.LittleEndian.PutUint16(data[lensLen+f.off:], u)
}

// A surrogate pair (UTF-16, which no card writes) still decodes to its character.
func TestSurrogatePair(t *testing.T) {
	data := encode(t, testCard())
	setText(data, fAddress, "")
	putUnit(data, fAddress, 0xD840)
	binary.LittleEndian.PutUint16(data[lensLen+fAddress.off+2:], 0xDC00)
	c, err := ParseCard(data)
	if err != nil || c.Address != "𠀀" {
		t.Fatalf("%q, %v", c.Address, err)
	}
}

// Errors name the field, never the data in it.
func TestErrorsCarryNoData(t *testing.T) {
	data := encode(t, testCard())
	setText(data, fBirthDate, "1990")
	_, err := ParseCard(data)
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("1990")) {
		t.Fatalf("%v", err)
	}
}
