package cards

import (
	"testing"
)

// answers is a card whose answers come one by one from a fuzzer's bytes: a length byte,
// then that many bytes; it falls silent (0-byte answers) when they run out.
type answers struct {
	data []byte
	sent int
}

func (a *answers) Transmit([]byte) ([]byte, error) {
	a.sent++
	if len(a.data) == 0 {
		return nil, nil
	}
	n := min(int(a.data[0]), len(a.data)-1)
	out := a.data[1 : 1+n]
	a.data = a.data[1+n:]
	return out, nil
}

// seedAnswers turns a script's answers into the fuzzer's form.
func seedAnswers(steps [][2]string) []byte {
	var out []byte
	for _, s := range steps {
		b := h(s[1])
		out = append(out, byte(len(b)))
		out = append(out, b...)
	}
	return out
}

// FuzzRead plays a card and a PSAM whose every answer is the fuzzer's: Read must end
// with a consistent Result, within a bounded number of commands, whatever they say.
func FuzzRead(f *testing.F) {
	cardAuth, psamAuth := rhcAuth()
	p := photo(200)
	ef07 := [][2]string{
		{"", "90 00"},
		{"", "00 C8 90 00"},
		{"", x(p[:128], "90 00")},
		{"", x(p[128:], "90 00")},
	}
	f.Add(seedAnswers(cat(rhcHead(f), cardAuth, rhcEF06(f), ef07)), seedAnswers(psamAuth))
	f.Add(seedAnswers(rhcHead(f)), []byte{})
	f.Add(seedAnswers(sscSteps(f, true)), []byte{})
	f.Add(seedAnswers(sscSteps(f, false)), []byte{})
	f.Add([]byte{2, 0x6A, 0x82, 2, 0x90, 0x00, 2, 0x6A, 0x82}, []byte{})
	f.Fuzz(func(t *testing.T, cardData, psamData []byte) {
		card := &answers{data: cardData}
		psam := &answers{data: psamData}
		res := Read(card, h(atrHex), Options{PSAM: psam})
		switch res.Kind {
		case KindRHC, KindSSC, KindUnknown:
		default:
			t.Fatalf("kind %q", res.Kind)
		}
		if res.Identity == nil && res.Reason == "" {
			t.Fatal("no identity and no reason")
		}
		if res.Identity != nil && (res.Identity.IDNumber == "" || res.Kind == KindUnknown) {
			t.Fatalf("identity %+v of kind %s", res.Identity, res.Kind)
		}
		if (res.Reason == "") != (res.Err == nil) && res.Reason != ReasonUnsupported && res.Reason != ReasonPSAMAbsent {
			t.Fatalf("reason %q with error %v", res.Reason, res.Err)
		}
		if len(res.Info.Photo) > MaxPhoto {
			t.Fatalf("photo of %d bytes", len(res.Info.Photo))
		}
		// Detection, EF05, relay, EF06, EF08 and a full photo, each with its 61xx/6Cxx.
		if card.sent > 64*16 || psam.sent > 4*16 {
			t.Fatalf("%d card and %d PSAM commands", card.sent, psam.sent)
		}
	})
}
