package vcard_test

import (
	"bytes"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/drivers/vcard"
	"github.com/ehc-agent/ehc-agent/protocol/apdu"
	"github.com/ehc-agent/ehc-agent/protocol/cards"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func load(t *testing.T, name string) *vcard.Card {
	t.Helper()
	p, err := vcard.LoadProfile(filepath.Join("..", "..", "configs", "profiles", name))
	if err != nil {
		t.Fatal(err)
	}
	c, err := vcard.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openPSAM(t *testing.T, p *vcard.Card) *vcard.Card {
	t.Helper()
	p.Reset()
	if err := cards.OpenPSAM(p, h("12 34 56")); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every example profile plays the card it says, read as the agent reads it.
func TestExampleProfiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "profiles", "card-*.yaml"))
	if len(files) < 6 {
		t.Fatalf("%d card profiles", len(files))
	}
	psam := load(t, "card-psam.yaml")
	for _, f := range files {
		c := load(t, filepath.Base(f))
		if c.Kind() == vcard.KindPSAM {
			continue
		}
		c.Reset()
		res := cards.Read(c, c.ATR(), cards.Options{PSAM: openPSAM(t, psam)})
		if res.Identity != nil {
			t.Logf("%s: %s %q %s %s", filepath.Base(f), res.Kind, res.Reason, res.Identity.Name, res.Identity.IDNumber)
		}
		switch c.Kind() {
		case vcard.KindTransit:
			if res.Reason != cards.ReasonUnsupported {
				t.Errorf("%s: %+v", f, res)
			}
		case vcard.KindRHC, vcard.KindSSC:
			if res.Kind != c.Kind() || res.Reason != "" || res.Identity == nil || res.Identity.Name == "" {
				t.Errorf("%s: %+v", f, res)
			}
		}
	}
	ssc := load(t, "card-ssc.yaml")
	if res := cards.Read(ssc, ssc.ATR(), cards.Options{}); res.Identity.Name != "买买提明·艾合买提江·阿不都热合曼" || res.Identity.IDNumber != "650103197801020018" {
		t.Errorf("%+v", res.Identity)
	}
	his := load(t, "card-ssc-his.yaml")
	if res := cards.Read(his, his.ATR(), cards.Options{}); res.Identity.Name != "阿依古丽·艾合买提江·阿不都热依木" ||
		res.Info.CardID != "650100D1560000050012A3B4C5D6E7F8" || res.Identity.CardNo != "B12345678" || res.Info.Expiry != "20330301" {
		t.Errorf("%+v %+v", res.Identity, res.Info)
	}
	if _, err := vcard.New(&vcard.Profile{Kind: vcard.KindSSC, Card: vcard.CardInfo{ID: "65 01 00"}}); err == nil || !strings.Contains(err.Error(), "card.id") {
		t.Errorf("a 3-byte card identification code: %v", err)
	}
	gen1 := load(t, "card-ssc-gen1.yaml")
	if res := cards.Read(gen1, gen1.ATR(), cards.Options{}); res.Identity.Name != "李四" || res.Identity.Gender != "2" || res.Info.Version != "1.00" {
		t.Errorf("%+v", res.Identity)
	}
	rhc := load(t, "card-rhc-minority.yaml")
	res := cards.Read(rhc, rhc.ATR(), cards.Options{PSAM: openPSAM(t, psam)})
	if id := res.Identity; id.Name != "阿依努尔·买买提艾力江·吐尔逊" || id.Gender != "2" || id.Ethnicity != "05" || id.BirthDate != "19920229" {
		t.Errorf("%+v", id)
	}
	if !bytes.Equal(res.Info.Photo, vcard.Portrait()) || len(vcard.Portrait()) > cards.MaxPhoto-2 {
		t.Errorf("photo of %d bytes", len(res.Info.Photo))
	}
}

// The card behaves as a T=0 card: 61xx for data of a case 3 or 4 command, 6Cxx for a
// wrong Le; with t0: false it answers directly.
func TestT0(t *testing.T) {
	c, _ := vcard.New(&vcard.Profile{Kind: vcard.KindSSC})
	for _, step := range [][2]string{
		{"00 A4 04 00 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF", "61 1E"}, // as CARDS.md says real cards do
		{"00 C0 00 00 10", strings.Repeat("XX ", 16) + "61 0E"},
		{"00 C0 00 00 20", "6C 0E"},
		{"00 C0 00 00 0E", strings.Repeat("XX ", 14) + "90 00"},
		{"00 C0 00 00 0E", "69 85"},
		{"00 B2 0A 30 00", "6C 03"},
		{"00 B2 0A 30 03", "0A 01 31 90 00"},
		{"00 B2 0A 30 03", "0A 01 31 90 00"},
		{"00 B2 4E 38 03", "6A 82"},
		{"00 B2 99 30 03", "6A 83"},
		{"00 84 00 00 08", "6D 00"},
		{"84 B2 0A 30 03", "6E 00"},
		{"00 B2", "67 00"},
	} {
		got := c.Process(h(step[0]))
		want := step[1]
		if strings.Contains(want, "XX") {
			got, want = got[len(got)-2:], want[strings.LastIndex(want, "XX")+3:]
		}
		if !bytes.Equal(got, h(want)) {
			t.Errorf("% X: got % X, want %s", h(step[0]), got, step[1])
		}
	}
	f := false
	c, _ = vcard.New(&vcard.Profile{Kind: vcard.KindSSC, T0: &f})
	if got := c.Process(h("00 A4 04 00 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF")); !bytes.Equal(got, h("90 00")) {
		t.Errorf("T=1 select: % X", got)
	}
	if got := c.Process(h("00 B2 0A 30 00")); !bytes.Equal(got, h("0A 01 31 90 00")) {
		t.Errorf("T=1 Le 00: % X", got)
	}
}

func TestSecurity(t *testing.T) {
	rhc, _ := vcard.New(&vcard.Profile{Kind: vcard.KindRHC})
	for _, cmd := range []string{"00 A4 00 00 02 DD F1", "00 A4 00 00 02 EF 06"} {
		rhc.Process(h(cmd))
	}
	// EF06 without the external authentication.
	if got := rhc.Process(h("00 B2 01 04 00")); !bytes.Equal(got, h("69 82")) {
		t.Errorf("% X", got)
	}
	// A PSAM with another key: the card refuses its cryptogram, the read is partial.
	other, _ := vcard.New(&vcard.Profile{Kind: vcard.KindPSAM, Key: "FFEEDDCCBBAA99887766554433221100"})
	rhc.Reset()
	res := cards.Read(rhc, rhc.ATR(), cards.Options{PSAM: openPSAM(t, other)})
	if res.Reason != cards.ReasonPSAMFailed || !res.Identity.IdentityPartial || !strings.Contains(res.Err.Error(), "6300") {
		t.Fatalf("%+v", res)
	}
	// The PSAM counts wrong PINs, and a right one restores them; three wrong block it.
	psam, _ := vcard.New(&vcard.Profile{Kind: vcard.KindPSAM})
	psam.Process(h("00 A4 00 00 02 DF 01"))
	if got := psam.Process(h("80 DE 47 31 18" + strings.Repeat(" 00", 24))); !bytes.Equal(got, h("69 82")) {
		t.Errorf("80 DE before VERIFY: % X", got)
	}
	for i, want := range []string{"63 C2", "63 C1", "90 00", "63 C2", "63 C1", "69 83", "69 83"} {
		pin := "00 20 00 00 03 99 99 99"
		if want == "90 00" {
			pin = "00 20 00 00 03 12 34 56"
		}
		if got := psam.Process(h(pin)); !bytes.Equal(got, h(want)) {
			t.Errorf("VERIFY %d: % X, want %s", i, got, want)
		}
	}
	if err := cards.OpenPSAM(psam, h("12 34 56")); err == nil {
		t.Fatal("a blocked PSAM opened")
	}
	if psam.PINTries() != 0 {
		t.Fatal(psam.PINTries())
	}
}

func TestProfileErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"kind: passport", "kind: \"passport\" is not one of"},
		{"kind: psam\npim: 1234", "field pim not found"},
		{"kind: resident_health_card\nholder: {name: 阿依努尔买买提艾力江吐尔逊阿不都}", "holder.name: apdu: text of 32 GBK bytes does not fit in 30"},
		{"kind: resident_health_card\nholder: {birth_date: 19801301}", "holder.birth_date: \"19801301\" is not a date"},
		{"kind: resident_health_card\natr: 3B 02 14 50", "atr: an RHC's ATR needs 13 bytes"},
		{"kind: psam\nkey: 0011", "key: not 16 bytes of hex"},
		{"kind: psam\npin: 12x4", "pin: not 2 to 16 hex digits"},
		{"kind: social_security_card\ncard: {version: \"1.00\"}\nholder: {name_extension: ·艾力}", "holder.name_extension: a first-generation card"},
		{"kind: blank\nfaults: [{at: 1, action: explode}]", "faults[0].action: \"explode\" is not one of"},
		{"kind: blank\nfaults: [{action: remove}]", "faults[0]: needs at"},
		{"kind: blank\nfaults: [{at: 2, action: sw, sw: 6F}]", "faults[0].sw: not a status word"},
		{"kind: blank\nfaults: [{at: 2, action: slow}]", "faults[0].delay: must be positive"},
		{"kind: resident_health_card\nholder: {name: \"\U0001F600\"}", "holder.name: apdu: \"\U0001F600\" is not GBK text"},
	} {
		p, err := vcard.ParseProfile([]byte(c.yaml))
		if err == nil {
			_, err = vcard.New(p)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
	// JSON is a profile too.
	p, err := vcard.ParseProfile([]byte(`{"kind": "social_security_card", "holder": {"name": "赵六"}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := vcard.New(p)
	if err != nil {
		t.Fatal(err)
	}
	if res := cards.Read(c, c.ATR(), cards.Options{}); res.Identity.Name != "赵六" {
		t.Fatalf("%+v", res)
	}
	var _ apdu.Transmitter = c
}
