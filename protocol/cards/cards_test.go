package cards

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/apdu"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// h decodes hex written as CARDS.md writes it ("00 B2 08 00 14").
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// x is h for answers: the hex of bytes followed by a status word.
func x(b []byte, sw string) string { return fmt.Sprintf("% X ", b) + sw }

// rec is a record `tag | length | value`.
func rec(tag byte, v []byte) []byte { return append([]byte{tag, byte(len(v))}, v...) }

func gbk(t testing.TB, s string, n int, pad byte) []byte {
	b, err := apdu.EncodeText(s, n, pad)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ascii(s string, n int) []byte { return append([]byte(s), make([]byte, n-len(s))...) }

// script is a card (or PSAM) that expects exactly these commands in order. An answer
// "error" is a transport failure (the card pulled), "" an answer of 0 bytes.
type script struct {
	t     testing.TB
	name  string
	steps [][2]string
	i     int
}

var errPulled = errors.New("card pulled")

func (s *script) Transmit(cmd []byte) ([]byte, error) {
	s.t.Helper()
	if s.i >= len(s.steps) {
		s.t.Fatalf("%s: unexpected command % X after the script", s.name, cmd)
	}
	st := s.steps[s.i]
	s.i++
	if !bytes.Equal(cmd, h(st[0])) {
		s.t.Fatalf("%s step %d: sent % X, want %s", s.name, s.i, cmd, st[0])
	}
	if st[1] == "error" {
		return nil, errPulled
	}
	return h(st[1]), nil
}

func (s *script) done() {
	s.t.Helper()
	if s.i != len(s.steps) {
		s.t.Fatalf("%s: stopped at step %d of %d (next: %s)", s.name, s.i, len(s.steps), s.steps[s.i][0])
	}
}

// The real social security card ATR of CARDS.md; bytes 5 to 12 are the card diversifier.
const atrHex = "3B 6D 00 00 00 81 54 4C 97 86 84 32 02 AD 93 2A 48"

const selectSSCHex = "00 A4 04 00 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF"

var (
	challenge = "A1 A2 A3 A4 A5 A6 A7 A8"
	psamMAC   = "01 02 03 04 05 06 07 08 10 20 30 40 50 60 70 80"
	// T = the two halves of the PSAM's answer XORed.
	cryptogram = "11 22 33 44 55 66 77 88"
)

// rhcHead is detection and EF05 of a resident health card, as CARDS.md prescribes.
func rhcHead(t testing.TB) [][2]string {
	return [][2]string{
		{selectSSCHex, "6A 82"},
		{"00 A4 00 00 02 DD F1", "90 00"},
		{"00 A4 00 00 02 EF 05", "90 00"},
		{"00 B2 02 00 06", x(rec(0x02, []byte("0100")), "90 00")},
		{"00 B2 03 00 20", x(rec(0x03, gbk(t, "广州市卫生健康委员会", 30, 0)), "90 00")},
		{"00 B2 06 00 06", x(rec(0x06, h("20 20 01 15")), "90 00")},
		{"00 B2 08 00 14", x(rec(0x08, []byte("44010619800101123X")), "90 00")},
	}
}

// rhcAuth is the PSAM relay of CARDS.md for that card; psam gets its half.
func rhcAuth() (card, psam [][2]string) {
	card = [][2]string{
		{"00 B2 39 00 05", x(rec(0x39, h("44 01 00")), "90 00")},
		{"00 84 00 00 08", challenge + " 90 00"},
		{"00 82 00 04 11 " + cryptogram + " 11 22 33 44 55 66 77 88 01", "90 00"},
	}
	psam = [][2]string{
		{"80 DE 47 31 18 81 54 4C 97 86 84 32 02 44 01 30 30 30 30 30 30 " + challenge, "90 00"},
		{"80 FA 00 00 10 11 22 33 44 55 66 77 88 00 00 00 00 00 00 00 00", "61 10"},
		{"00 C0 00 00 10", psamMAC + " 90 00"},
	}
	return card, psam
}

// rhcEF06 is EF06 and EF08 of a T=0 card: each READ RECORD with Le 00 answered 6Cxx.
func rhcEF06(t testing.TB) [][2]string {
	name := rec(0x0B, gbk(t, "张三", 30, 0))
	return [][2]string{
		{"00 A4 00 00 02 EF 06", "90 00"},
		{"00 B2 01 04 00", "6C 20"},
		{"00 B2 01 04 20", x(name, "90 00")},
		{"00 B2 02 04 00", x(rec(0x0C, h("01")), "90 00")},
		{"00 B2 03 04 00", x(rec(0x0D, h("01")), "90 00")},
		{"00 B2 04 04 00", x(rec(0x0E, h("19 80 01 01")), "90 00")},
		{"00 B2 05 04 00", "6C 14"},
		{"00 B2 05 04 14", x(rec(0x0F, []byte("44010619800101123X")), "90 00")},
		{"00 A4 00 00 02 EF 08", "90 00"},
		{"00 B2 01 04 00", x(rec(0x07, h("20 40 01 15")), "90 00")},
	}
}

// photo is a JPEG-looking EF07 body of n bytes.
func photo(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 7)
	}
	copy(p, []byte{0xFF, 0xD8})
	copy(p[n-2:], []byte{0xFF, 0xD9})
	return p
}

func cat(parts ...[][2]string) [][2]string {
	var out [][2]string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestRHCWithPSAM(t *testing.T) {
	p := photo(200)
	ef07 := [][2]string{
		{"00 A4 00 00 02 EF 07", "90 00"},
		{"00 B0 00 00 02", "00 C8 90 00"},
		{"00 B0 00 02 80", x(p[:128], "90 00")},
		{"00 B0 00 82 48", x(p[128:], "90 00")},
	}
	cardAuth, psamAuth := rhcAuth()
	card := &script{t: t, name: "card", steps: cat(rhcHead(t), cardAuth, rhcEF06(t), ef07)}
	psam := &script{t: t, name: "psam", steps: psamAuth}
	res := Read(card, h(atrHex), Options{PSAM: psam})
	card.done()
	psam.done()
	want := &event.Identity{IDType: "01", IDNumber: "44010619800101123X", Name: "张三", Gender: "1",
		Ethnicity: "01", BirthDate: "19800101", CardNo: "44010619800101123X",
		IssuerOrg: "广州市卫生健康委员会", Photo: base64.StdEncoding.EncodeToString(p)}
	if res.Kind != KindRHC || res.Reason != "" || res.Err != nil || *res.Identity != *want {
		t.Fatalf("%+v\nidentity %+v", res, res.Identity)
	}
	if res.Info.Version != "0100" || res.Info.IssueDate != "20200115" || res.Info.Expiry != "20400115" || !bytes.Equal(res.Info.Photo, p) {
		t.Fatalf("info %+v", res.Info)
	}
}

func TestRHCWithoutPSAM(t *testing.T) {
	card := &script{t: t, name: "card", steps: rhcHead(t)}
	res := Read(card, h(atrHex), Options{})
	card.done()
	want := &event.Identity{IDType: "01", IDNumber: "44010619800101123X", CardNo: "44010619800101123X",
		IssuerOrg: "广州市卫生健康委员会", IdentityPartial: true}
	if res.Kind != KindRHC || res.Reason != ReasonPSAMAbsent || *res.Identity != *want {
		t.Fatalf("%+v %+v", res, res.Identity)
	}
	card = &script{t: t, name: "card", steps: rhcHead(t)}
	if res = Read(card, h(atrHex), Options{NoPSAMReason: ReasonPSAMFailed}); res.Reason != ReasonPSAMFailed || !res.Identity.IdentityPartial {
		t.Fatalf("%+v", res)
	}
}

func TestRHCPSAMFailures(t *testing.T) {
	cardAuth, psamAuth := rhcAuth()
	// The PSAM refuses (not verified since its power-on): EF05 only, partial.
	card := &script{t: t, name: "card", steps: cat(rhcHead(t), cardAuth[:2])}
	psam := &script{t: t, name: "psam", steps: [][2]string{{psamAuth[0][0], "69 82"}}}
	res := Read(card, h(atrHex), Options{PSAM: psam})
	var pe *PSAMError
	if res.Reason != ReasonPSAMFailed || !errors.As(res.Err, &pe) || !res.Identity.IdentityPartial || res.Identity.IDNumber == "" {
		t.Fatalf("%+v", res)
	}
	card.done()

	// The card refuses the PSAM's cryptogram (keys of another issuer).
	refused := cat(rhcHead(t), cardAuth)
	refused[len(refused)-1][1] = "63 00"
	card = &script{t: t, name: "card", steps: refused}
	psam = &script{t: t, name: "psam", steps: psamAuth}
	if res = Read(card, h(atrHex), Options{PSAM: psam}); res.Reason != ReasonPSAMFailed || !res.Identity.IdentityPartial {
		t.Fatalf("%+v", res)
	}

	// An ATR too short to hold the card diversifier cannot be relayed.
	card = &script{t: t, name: "card", steps: cat(rhcHead(t), cardAuth[:1])}
	if res = Read(card, h("3B 02 14 50"), Options{PSAM: &script{t: t, name: "psam"}}); res.Reason != ReasonPSAMFailed {
		t.Fatalf("%+v", res)
	}
}

func TestRHCPhotoTooLarge(t *testing.T) {
	cardAuth, psamAuth := rhcAuth()
	// A length + 2 above 3,072 is refused before any of the photo is read.
	card := &script{t: t, name: "card", steps: cat(rhcHead(t), cardAuth, rhcEF06(t), [][2]string{
		{"00 A4 00 00 02 EF 07", "90 00"},
		{"00 B0 00 00 02", "0B FF 90 00"},
	})}
	res := Read(card, h(atrHex), Options{PSAM: &script{t: t, name: "psam", steps: psamAuth}})
	card.done()
	if res.Reason != ReasonPhotoTooLarge || res.Identity == nil || res.Identity.Name != "张三" || res.Identity.Photo != "" || res.Identity.IdentityPartial {
		t.Fatalf("%+v %+v", res, res.Identity)
	}
	// 3,070 bytes of JPEG + 2 of length is the largest EF07 (24 chunks).
	p := photo(3070)
	steps := [][2]string{{"00 A4 00 00 02 EF 07", "90 00"}, {"00 B0 00 00 02", "0B FE 90 00"}}
	for off := 2; off < 3072; off += 0x80 {
		n := min(0x80, 3072-off)
		steps = append(steps, [2]string{fmt.Sprintf("00 B0 %02X %02X %02X", off>>8, off&0xFF, n), x(p[off-2:off-2+n], "90 00")})
	}
	card = &script{t: t, name: "card", steps: cat(rhcHead(t), cardAuth, rhcEF06(t), steps)}
	res = Read(card, h(atrHex), Options{PSAM: &script{t: t, name: "psam", steps: psamAuth}})
	card.done()
	if res.Reason != "" || !bytes.Equal(res.Info.Photo, p) {
		t.Fatalf("%+v", res)
	}
}

// sscCardID is a card identification code: region 150100, RID D156000005, then the card's own.
const sscCardID = "15 01 00 D1 56 00 00 05 00 A1 B2 C3 D4 E5 F6 07"

func sscSteps(t testing.TB, ext bool) [][2]string {
	steps := [][2]string{
		// CARDS.md: real cards answer the SELECT with 61 1E, the FCI through GET RESPONSE.
		{selectSSCHex, "61 1E"},
		{"00 C0 00 00 1E", strings.Repeat("6F ", 30) + "90 00"},
		{"00 B2 01 28 12", x(rec(0x01, h(sscCardID)), "90 00")},
		{"00 B2 03 28 06", x(rec(0x03, []byte("3.00")), "90 00")},
		{"00 B2 05 28 06", x(rec(0x05, h("20 21 06 01")), "90 00")},
		{"00 B2 06 28 06", x(rec(0x06, h("20 31 06 01")), "90 00")},
		{"00 B2 07 28 0B", x(rec(0x07, []byte("A12345678")), "90 00")},
		{"00 B2 08 30 14", x(rec(0x08, []byte("150102198507070021")), "90 00")},
		{"00 B2 09 30 20", x(rec(0x09, gbk(t, "阿依古丽·买买提", 30, 0x20)), "90 00")},
		{"00 B2 4E 30 16", "6A 83"},
		{"00 B2 0A 30 03", x(rec(0x0A, []byte("2")), "90 00")},
		{"00 B2 0B 30 03", x(rec(0x0B, h("05")), "90 00")},
		{"00 B2 0D 30 06", x(rec(0x0D, h("19 85 07 07")), "90 00")},
	}
	if ext {
		steps[9][1] = x(rec(0x4E, gbk(t, "·艾力", 20, 0x00)), "90 00")
	}
	return steps
}

func TestSSC(t *testing.T) {
	for _, ext := range []bool{false, true} {
		card := &script{t: t, name: "ssc", steps: sscSteps(t, ext)}
		res := Read(card, h(atrHex), Options{})
		card.done()
		name := "阿依古丽·买买提"
		if ext {
			name += "·艾力"
		}
		want := &event.Identity{IDType: "01", IDNumber: "150102198507070021", Name: name, Gender: "2",
			Ethnicity: "05", BirthDate: "19850707", CardNo: "A12345678"}
		if res.Kind != KindSSC || res.Reason != "" || *res.Identity != *want {
			t.Fatalf("ext %v: %+v %+v", ext, res, res.Identity)
		}
		if i := res.Info; i.CardID != strings.ReplaceAll(sscCardID, " ", "") || i.Version != "3.00" || i.IssueDate != "20210601" || i.Expiry != "20310601" || i.Photo != nil {
			t.Fatalf("%+v", res.Info)
		}
	}
}

// A Lingnan Pass or T-Union card answers DDF1 but has no EF05: unsupported, never an RHC.
func TestTransitCardIsUnsupported(t *testing.T) {
	card := &script{t: t, name: "transit", steps: [][2]string{
		{selectSSCHex, "6A 82"},
		{"00 A4 00 00 02 DD F1", "61 20"},
		{"00 C0 00 00 20", strings.Repeat("84 ", 32) + "90 00"},
		{"00 A4 00 00 02 EF 05", "6A 82"},
	}}
	res := Read(card, h("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68"), Options{})
	card.done()
	if res.Kind != KindUnknown || res.Reason != ReasonUnsupported || res.Identity != nil {
		t.Fatalf("%+v", res)
	}
	// A version that is not four printable characters proves nothing either.
	card = &script{t: t, name: "odd", steps: [][2]string{
		{selectSSCHex, "6D 00"},
		{"00 A4 00 00 02 DD F1", "90 00"},
		{"00 A4 00 00 02 EF 05", "90 00"},
		{"00 B2 02 00 06", "02 04 01 02 03 04 90 00"},
	}}
	if res = Read(card, nil, Options{}); res.Reason != ReasonUnsupported {
		t.Fatalf("%+v", res)
	}
}

func TestFailuresEndTheRead(t *testing.T) {
	head := rhcHead(t)
	for _, c := range []struct {
		name   string
		at     int    // step of rhcHead whose answer is replaced
		answer string // the replacement
		reason string
	}{
		{"pulled during detection", 0, "error", ReasonReadFailed},
		{"0-byte answer (pcscd's view of a pull)", 6, "", ReasonReadFailed},
		{"1-byte answer", 6, "90", ReasonReadFailed},
		{"wrong tag", 6, x(rec(0x09, []byte("44010619800101123X")), "90 00"), ReasonBadAnswer},
		{"record longer than its item", 6, x(rec(0x08, []byte("44010619800101123X9")), "90 00"), ReasonBadAnswer},
		{"record longer than declared", 6, x(append(rec(0x08, []byte("44010619800101123X")), 0), "90 00"), ReasonBadAnswer},
		{"garbage", 6, "DE AD BE EF 90 00", ReasonBadAnswer},
		{"Chinese in an ID number", 6, x(rec(0x08, gbk(t, "张三", 18, 0)), "90 00"), ReasonBadAnswer},
		{"text that is not GBK", 4, x(rec(0x03, h("C9 0A")), "90 00"), ReasonBadAnswer},
		{"date that is not BCD", 5, x(rec(0x06, h("20 2A 01 15")), "90 00"), ReasonBadAnswer},
		{"13th month", 5, x(rec(0x06, h("20 20 13 15")), "90 00"), ReasonBadAnswer},
		{"wrong status word", 6, "6F 00", ReasonBadStatus},
		{"card number missing", 6, "6A 83", ReasonBadStatus},
	} {
		steps := cat(head[:c.at], [][2]string{{head[c.at][0], c.answer}})
		card := &script{t: t, name: c.name, steps: steps}
		res := Read(card, h(atrHex), Options{})
		card.done()
		if res.Reason != c.reason || res.Identity != nil || res.Err == nil {
			t.Errorf("%s: %+v, want reason %s", c.name, res, c.reason)
		}
		if strings.Contains(res.Err.Error(), "4401") {
			t.Errorf("%s: error carries the value: %v", c.name, res.Err)
		}
	}
	// Pulled after the PSAM relay, in EF06: no identity at all, not a partial one.
	cardAuth, psamAuth := rhcAuth()
	card := &script{t: t, name: "card", steps: cat(head, cardAuth, rhcEF06(t)[:2], [][2]string{{"00 B2 01 04 20", "error"}})}
	res := Read(card, h(atrHex), Options{PSAM: &script{t: t, name: "psam", steps: psamAuth}})
	card.done()
	if res.Reason != ReasonReadFailed || res.Identity != nil || !errors.Is(res.Err, errPulled) {
		t.Fatalf("%+v", res)
	}
}

func TestOpenPSAM(t *testing.T) {
	psam := &script{t: t, name: "psam", steps: [][2]string{
		{"00 A4 00 00 02 DF 01", "61 1A"},
		{"00 C0 00 00 1A", strings.Repeat("00 ", 26) + "90 00"},
		{"00 20 00 00 03 12 34 56", "90 00"},
	}}
	if err := OpenPSAM(psam, h("12 34 56")); err != nil {
		t.Fatal(err)
	}
	psam.done()
	for _, c := range []struct {
		sw    string
		tries int
	}{{"63 C2", 2}, {"69 83", 0}, {"63 00", -1}} {
		psam = &script{t: t, name: "psam", steps: [][2]string{
			{"00 A4 00 00 02 DF 01", "90 00"},
			{"00 20 00 00 03 12 34 56", c.sw},
		}}
		err := OpenPSAM(psam, h("12 34 56"))
		tries, ok := PINRejected(err)
		if !ok || tries != c.tries || strings.Contains(err.Error(), "123456") || strings.Contains(err.Error(), "12 34 56") {
			t.Errorf("%s: %v %d %v", c.sw, ok, tries, err)
		}
	}
	if _, ok := PINRejected(&apdu.StatusError{INS: 0xA4, SW: 0x63C2}); ok {
		t.Error("a SELECT is no PIN")
	}
}

// A photo that cannot be read costs the photo, not the identity read before it.
func TestRHCPhotoFailureKeepsIdentity(t *testing.T) {
	cardAuth, psamAuth := rhcAuth()
	for _, c := range []struct {
		answer, reason string
	}{{"error", ReasonReadFailed}, {"", ReasonReadFailed}, {"6F 00", ReasonBadStatus}, {"01 02 90 00", ReasonBadAnswer}} {
		card := &script{t: t, name: "card", steps: cat(rhcHead(t), cardAuth, rhcEF06(t), [][2]string{
			{"00 A4 00 00 02 EF 07", "90 00"},
			{"00 B0 00 00 02", "00 C8 90 00"},
			{"00 B0 00 02 80", c.answer},
		})}
		res := Read(card, h(atrHex), Options{PSAM: &script{t: t, name: "psam", steps: psamAuth}})
		card.done()
		if res.Reason != c.reason || res.Identity == nil || res.Identity.Name != "张三" || res.Identity.Photo != "" || res.Info.Photo != nil {
			t.Errorf("%q: %+v %+v", c.answer, res, res.Identity)
		}
	}
}
