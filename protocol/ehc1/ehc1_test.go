package ehc1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/base45"
)

// build returns a binary form with extension length l, laid out by hand from the
// offsets of the CODES.md table (not by Marshal), each field a recognisable value.
func build(l int) []byte {
	b := make([]byte, 321+l)
	be := binary.BigEndian
	b[0] = 0x01                          // version
	b[1] = 0x01                          // type
	b[2] = 0x07                          // root key index
	be.PutUint32(b[3:7], 4401)           // issuer id
	be.PutUint32(b[7:11], 17)            // certificate serial
	be.PutUint32(b[11:15], 1924992000)   // certificate not-after, 2031-01-01
	ramp(b[15:48], 0x15)                 // issuer key
	b[15] = 0x02                         //   SEC1 compressed prefix
	ramp(b[48:112], 0x48)                // root signature
	ramp(b[112:144], 0xe1)               // EHC ID
	b[144] = 0x01                        // category
	ramp(b[145:178], 0x45)               // holder key
	b[145] = 0x03                        //
	be.PutUint32(b[178:182], 1893456000) // credential not-after, 2030-01-01
	be.PutUint16(b[182:184], 60)         // validity
	b[184] = byte(l)                     // L
	for i := range l {                   // extension
		b[185+i] = byte(0xa0 + i)
	}
	ramp(b[185+l:249+l], 0x85)               // issuer signature
	be.PutUint32(b[249+l:253+l], 1793491200) // generated-at, 2026-10-31
	be.PutUint32(b[253+l:257+l], 42)         // sequence
	ramp(b[257+l:321+l], 0x57)               // holder signature
	return b
}

func ramp(b []byte, v byte) {
	for i := range b {
		b[i] = v + byte(i)
	}
}

func text(b []byte) []byte { return []byte(Prefix + base45.Encode(b)) }

func TestParseHandBuilt(t *testing.T) {
	for _, l := range []int{0, 1, 5, 31, 32} {
		b := build(l)
		c, err := Parse(b)
		if err != nil {
			t.Fatalf("L=%d: Parse: %v", l, err)
		}
		if c.Version != 1 || c.Type != 1 || c.RootIndex != 7 || c.IssuerID != 4401 ||
			c.CertSerial != 17 || c.CertNotAfter != 1924992000 || c.Category != 1 ||
			c.CredNotAfter != 1893456000 || c.Validity != 60 || c.GeneratedAt != 1793491200 ||
			c.Sequence != 42 {
			t.Errorf("L=%d: integer fields wrong: %+v", l, c)
		}
		for _, f := range []struct {
			name      string
			got, want []byte
		}{
			{"IssuerKey", c.IssuerKey[:], b[15:48]},
			{"RootSig", c.RootSig[:], b[48:112]},
			{"EHCID", c.EHCID[:], b[112:144]},
			{"HolderKey", c.HolderKey[:], b[145:178]},
			{"Extension", c.Extension, b[185 : 185+l]},
			{"IssuerSig", c.IssuerSig[:], b[185+l : 249+l]},
			{"HolderSig", c.HolderSig[:], b[257+l : 321+l]},
			{"CertSigned", c.CertSigned(), b[2:48]},
			{"IssuerCert", c.IssuerCert(), b[2:112]},
			{"CredSigned", c.CredSigned(), b[112 : 185+l]},
			{"CodeSigned", c.CodeSigned(), b[0 : 257+l]},
			{"Raw", c.Raw, b},
		} {
			if !bytes.Equal(f.got, f.want) {
				t.Errorf("L=%d: %s = %x, want %x", l, f.name, f.got, f.want)
			}
		}
		if len(c.Extension) != l {
			t.Errorf("L=%d: len(Extension) = %d", l, len(c.Extension))
		}
		if &c.Raw[0] != &b[0] {
			t.Errorf("L=%d: Raw does not alias the input", l)
		}
		if l > 0 && &c.Extension[0] != &b[185] {
			t.Errorf("L=%d: Extension does not alias the input", l)
		}
		if got := c.Marshal(); !bytes.Equal(got, b) {
			t.Errorf("L=%d: Marshal() = %x, want %x", l, got, b)
		}
	}
}

func TestParseValidityBounds(t *testing.T) {
	for _, v := range []uint16{1, 3600} {
		b := build(0)
		binary.BigEndian.PutUint16(b[182:], v)
		c, err := Parse(b)
		if err != nil || c.Validity != v {
			t.Errorf("validity %d: %v", v, err)
		}
	}
}

func setValidity(v uint16) func([]byte) []byte {
	return func(b []byte) []byte { binary.BigEndian.PutUint16(b[182:], v); return b }
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		in     []byte
		reason string
		offset int
	}{
		{"nil", nil, ReasonMalformed, 0},
		{"one byte", []byte{1}, ReasonMalformed, 1},
		{"no extension length", build(0)[:184], ReasonMalformed, 184},
		{"only header", build(0)[:185], ReasonMalformed, 185},
		{"one short", build(0)[:320], ReasonMalformed, 320},
		{"one short L=32", build(32)[:352], ReasonMalformed, 352},
		{"one long", append(build(0), 0), ReasonMalformed, 321},
		{"L=32 body with L=31", func() []byte { b := build(32); b[184] = 31; return b }(), ReasonMalformed, 352},
		{"L=33", func() []byte { b := build(32); b[184] = 33; return b }(), ReasonMalformed, 184},
		{"L=33 full length", func() []byte { b := build(32); b = append(b, 0); b[184] = 33; return b }(), ReasonMalformed, MaxLen},
		{"L=33 short", func() []byte { b := build(0); b[184] = 33; return b }(), ReasonMalformed, 184},
		{"L=255", func() []byte { b := build(0); b[184] = 255; return b }(), ReasonMalformed, 184},
		{"over MaxLen", make([]byte, 1000), ReasonMalformed, MaxLen},
		{"validity 0", setValidity(0)(build(0)), ReasonMalformed, 182},
		{"validity 3601", setValidity(3601)(build(3)), ReasonMalformed, 182},
		{"validity 65535", setValidity(65535)(build(0)), ReasonMalformed, 182},
		{"version 0", func() []byte { b := build(0); b[0] = 0; return b }(), ReasonUnsupportedVersion, 0},
		{"version 2", func() []byte { b := build(32); b[0] = 2; return b }(), ReasonUnsupportedVersion, 0},
		{"version 255", func() []byte { b := build(0); b[0] = 255; return b }(), ReasonUnsupportedVersion, 0},
		{"type 0", func() []byte { b := build(0); b[1] = 0; return b }(), ReasonUnsupportedVersion, 1},
		{"type 2", func() []byte { b := build(0); b[1] = 2; return b }(), ReasonUnsupportedVersion, 1},
		{"version and type 2", func() []byte { b := build(0); b[0], b[1] = 2, 2; return b }(), ReasonUnsupportedVersion, 0},
		// Malformed comes first (CODES.md step 1 order).
		{"version 2 too short", func() []byte { b := build(0); b[0] = 2; return b[:300] }(), ReasonMalformed, 300},
		{"version 2 one byte", []byte{2}, ReasonMalformed, 1},
		{"version 2 validity 0", func() []byte { b := setValidity(0)(build(0)); b[0] = 2; return b }(), ReasonMalformed, 182},
		{"type 2 L=40", func() []byte { b := build(0); b[1] = 2; b[184] = 40; return b }(), ReasonMalformed, 184},
	} {
		code, err := Parse(c.in)
		if code != nil {
			t.Errorf("%s: Parse returned a Code with error %v", c.name, err)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %v (%T), want *Error", c.name, err, err)
			continue
		}
		if e.Reason != c.reason || e.Offset != c.offset {
			t.Errorf("%s: %q at %d (%s), want %q at %d", c.name, e.Reason, e.Offset, e.Msg, c.reason, c.offset)
		}
		if e.Msg == "" || !strings.Contains(err.Error(), e.Reason) {
			t.Errorf("%s: uninformative error %q", c.name, err.Error())
		}
	}
}

func TestParseText(t *testing.T) {
	b := build(32)
	upper := text(b)
	for _, in := range [][]byte{
		upper,
		[]byte(strings.ToLower(string(upper))),
		append([]byte("eHc1:"), upper[5:]...),
		text(build(0)),
	} {
		c, err := ParseText(in)
		if err != nil {
			t.Errorf("ParseText(%.20q…): %v", in, err)
			continue
		}
		want := build(len(c.Extension))
		if !bytes.Equal(c.Raw, want) || c.IssuerID != 4401 {
			t.Errorf("ParseText(%.20q…) Raw = %x, want %x", in, c.Raw, want)
		}
		if got := c.Text(); got != strings.ToUpper(string(in)) {
			t.Errorf("Text() = %.20q…, want the input in upper case", got)
		}
	}
}

func TestParseTextErrors(t *testing.T) {
	valid := text(build(0))
	badVersion := build(0)
	badVersion[0] = 9
	for _, c := range []struct {
		name   string
		in     []byte
		reason string
		offset int
		isText bool
	}{
		{"empty", nil, ReasonMalformed, 0, true},
		{"prefix only", []byte("EHC1:"), ReasonMalformed, 0, false},
		{"short prefix", []byte("EHC1"), ReasonMalformed, 0, true},
		{"no colon", append([]byte("EHC1"), valid[5:]...), ReasonMalformed, 0, true},
		{"full-width colon", append([]byte("EHC1\uff1a"), valid[5:]...), ReasonMalformed, 0, true},
		{"other version prefix", append([]byte("EHC2:"), valid[5:]...), ReasonMalformed, 0, true},
		{"leading space", append([]byte(" "), valid...), ReasonMalformed, 0, true},
		{"bad character", func() []byte { s := bytes.Clone(valid); s[100] = '#'; return s }(), ReasonMalformed, 100, true},
		{"trailing newline", append(bytes.Clone(valid), '\n'), ReasonMalformed, len(valid), true},
		{"length 1 mod 3", append(bytes.Clone(valid), 'A', 'A'), ReasonMalformed, len(valid) + 1, true},
		{"triple out of range", append(append([]byte(nil), valid[:8]...), append([]byte("GGW"), valid[11:]...)...), ReasonMalformed, 8, true},
		{"too long", append([]byte("EHC1:"), make([]byte, MaxTextLen)...), ReasonMalformed, MaxTextLen, true},
		{"binary too short", text(build(0)[:320]), ReasonMalformed, 320, false},
		{"binary L=33", text(func() []byte { b := build(32); b[184] = 33; return b }()), ReasonMalformed, 184, false},
		{"version 9", text(badVersion), ReasonUnsupportedVersion, 0, false},
	} {
		code, err := ParseText(c.in)
		var e *Error
		if code != nil || !errors.As(err, &e) {
			t.Errorf("%s: ParseText = %v, %v; want *Error", c.name, code, err)
			continue
		}
		if e.Reason != c.reason || e.Offset != c.offset {
			t.Errorf("%s: %q at %d (%s), want %q at %d", c.name, e.Reason, e.Offset, e.Msg, c.reason, c.offset)
		}
		if got := strings.HasPrefix(e.Msg, "text"); got != c.isText {
			t.Errorf("%s: Msg %q: text-layer = %v, want %v", c.name, e.Msg, got, c.isText)
		}
	}
}

func TestMaxTextLen(t *testing.T) {
	if want := len(Prefix) + base45.EncodedLen(MaxLen); MaxTextLen != want {
		t.Fatalf("MaxTextLen = %d, want %d", MaxTextLen, want)
	}
	if n := len(text(build(MaxExtension))); n != MaxTextLen {
		t.Fatalf("longest code is %d characters, MaxTextLen %d", n, MaxTextLen)
	}
}

func TestMarshalFromFields(t *testing.T) {
	c := &Code{
		Version: 1, Type: 1, RootIndex: 3, IssuerID: 0xfffffffe, CertSerial: 1,
		CertNotAfter: 2000000000, Category: 9, CredNotAfter: 1900000000, Validity: 3600,
		Extension: []byte{1, 2, 3}, GeneratedAt: 1800000000, Sequence: 0xffffffff,
	}
	c.IssuerKey[0], c.HolderKey[0], c.EHCID[31] = 2, 3, 0xab
	c.RootSig[63], c.IssuerSig[0], c.HolderSig[32] = 1, 2, 3
	ext := c.Extension
	b := c.Marshal()
	if len(b) != 324 || !bytes.Equal(c.Raw, b) || &c.Extension[0] != &b[185] {
		t.Fatalf("Marshal: len %d, Raw/Extension not pointing into the result", len(b))
	}
	if &ext[0] == &c.Extension[0] {
		t.Fatal("Marshal kept the caller's Extension slice")
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	p.Raw, p.Extension, c.Raw, c.Extension = nil, nil, nil, nil
	if !reflect.DeepEqual(p, c) {
		t.Errorf("Parse(Marshal()) = %+v, want %+v", p, c)
	}
	// The signed ranges follow Raw, whichever set it.
	c.Extension = ext
	c.Marshal()
	if !bytes.Equal(c.CodeSigned(), b[:260]) || !bytes.Equal(c.CredSigned(), b[112:188]) {
		t.Error("signed ranges after Marshal")
	}
}

func TestMarshalLongExtension(t *testing.T) {
	for _, n := range []int{33, 255, 256, 1000} {
		c, _ := Parse(build(0))
		c.Extension = make([]byte, n)
		b := c.Marshal()
		if len(b) != 321+n {
			t.Errorf("L=%d: Marshal gave %d bytes", n, len(b))
		}
		if _, err := Parse(b); err == nil {
			t.Errorf("L=%d: Parse(Marshal()) accepted an over-long extension", n)
		}
		if c.CodeSigned() != nil {
			t.Errorf("L=%d: CodeSigned() of an invalid Raw is not nil", n)
		}
	}
}

func TestSpansWithoutRaw(t *testing.T) {
	var c Code
	if c.CertSigned() != nil || c.IssuerCert() != nil || c.CredSigned() != nil || c.CodeSigned() != nil {
		t.Error("signed ranges of a Code with no Raw are not nil")
	}
	c.Raw = build(0)[:200]
	if c.CodeSigned() != nil {
		t.Error("signed range of a truncated Raw is not nil")
	}
}

func TestSpanCapped(t *testing.T) {
	b := build(2)
	c, _ := Parse(b)
	orig := bytes.Clone(b)
	for _, s := range [][]byte{c.CertSigned(), c.IssuerCert(), c.CredSigned(), c.CodeSigned(), c.Extension, c.Raw} {
		_ = append(s, 0xee)
	}
	if !bytes.Equal(b, orig) {
		t.Error("appending to a signed range wrote into Raw")
	}
}

func TestExpiresAt(t *testing.T) {
	c := Code{GeneratedAt: 1793491200, Validity: 60}
	if got := c.ExpiresAt(); got != 1793491260 {
		t.Errorf("ExpiresAt() = %d", got)
	}
	c = Code{GeneratedAt: 0xffffff00, Validity: 3600}
	if got := c.ExpiresAt(); got != 0xffffffff {
		t.Errorf("ExpiresAt() near the end of uint32 = %#x, want saturation", got)
	}
}

func TestEHCIDHex(t *testing.T) {
	c, _ := Parse(build(0))
	want := "E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF00"
	if got := c.EHCIDHex(); got != want {
		t.Errorf("EHCIDHex() = %s, want %s", got, want)
	}
}

func TestAllocs(t *testing.T) {
	b := build(32)
	s := text(b)
	if n := testing.AllocsPerRun(100, func() { Parse(b) }); n != 1 {
		t.Errorf("Parse: %v allocs, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { ParseText(s) }); n != 1 {
		t.Errorf("ParseText: %v allocs, want 1", n)
	}
}

func seeds() [][]byte {
	v2 := build(0)
	v2[0] = 2
	return [][]byte{build(0), build(1), build(32), v2, setValidity(0)(build(0)), setValidity(3601)(build(0)),
		func() []byte { b := build(32); b[184] = 33; return b }(), build(0)[:184], {}, {1, 1}}
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		c, err := Parse(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			checkError(t, c, err, max(len(in), MaxLen))
			return
		}
		if got := c.Marshal(); !bytes.Equal(got, in) {
			t.Fatalf("Marshal(Parse(%x)) = %x", in, got)
		}
		if c.Validity < 1 || c.Validity > MaxValidity || len(c.Extension) > MaxExtension {
			t.Fatalf("Parse accepted out-of-range fields: %+v", c)
		}
		if len(c.CodeSigned()) != len(in)-64 || len(c.CredSigned()) != 73+len(c.Extension) {
			t.Fatalf("signed ranges of %d-byte code: %d, %d", len(in), len(c.CodeSigned()), len(c.CredSigned()))
		}
		back, err := ParseText([]byte(c.Text()))
		if err != nil || !bytes.Equal(back.Raw, in) {
			t.Fatalf("ParseText(Text()) = %v", err)
		}
	})
}

func FuzzParseText(f *testing.F) {
	for _, s := range seeds() {
		t := text(s)
		f.Add(t)
		f.Add([]byte(strings.ToLower(string(t))))
	}
	f.Add([]byte("EHC1:GGW"))
	f.Add([]byte("ehc1:BB8"))
	f.Add([]byte("EHC1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseText(in)
		if err != nil {
			checkError(t, c, err, max(len(in), MaxTextLen, MaxLen))
			return
		}
		if got := c.Text(); got != strings.ToUpper(string(in)) {
			t.Fatalf("Text(ParseText(%q)) = %q", in, got)
		}
	})
}

func checkError(t *testing.T, c *Code, err error, maxOffset int) {
	t.Helper()
	var e *Error
	if c != nil || !errors.As(err, &e) {
		t.Fatalf("got %v, %v; want nil and *Error", c, err)
	}
	if e.Reason != ReasonMalformed && e.Reason != ReasonUnsupportedVersion {
		t.Fatalf("reason %q", e.Reason)
	}
	if e.Offset < 0 || e.Offset > maxOffset {
		t.Fatalf("offset %d out of [0, %d]", e.Offset, maxOffset)
	}
}

func BenchmarkParseText(b *testing.B) {
	s := text(build(0)) // a 321-byte code
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseText(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	raw := build(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkText(b *testing.B) {
	c, _ := Parse(build(0))
	b.ReportAllocs()
	for b.Loop() {
		c.Text()
	}
}

func TestHasPrefix(t *testing.T) {
	for in, want := range map[string]bool{
		"EHC1:": true, "ehc1:x": true, "eHc1:": true, "EHC1": false, "EHC2:": false,
		"EHC1：": false, " EHC1:": false, "": false, "EHCI:": false,
	} {
		if got := HasPrefix([]byte(in)); got != want {
			t.Errorf("HasPrefix(%q) = %v, want %v", in, got, want)
		}
	}
}
