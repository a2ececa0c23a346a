package framing

import "testing"

func TestSymbology(t *testing.T) {
	for aim, want := range map[string]string{
		"]Q1": "qr", "]Q2": "qr", "]d1": "datamatrix", "]C0": "code128", "]E0": "ean",
		"]L0": "pdf417", "]z0": "aztec", "]A0": "code39", "]e0": "gs1-databar", "]I0": "itf",
		"ssi:1C": "qr", "ssi:1c": "qr", "ssi:2C": "microqr", "ssi:1B": "datamatrix",
		"ssi:11": "pdf417", "ssi:03": "code128",
		"": "", "]": "", "]X0": "", "Q1": "", "ssi:": "", "ssi:1": "", "ssi:1CC": "", "ssi:ZZ": "", "ssi:FF": "",
	} {
		if got := Symbology(aim); got != want {
			t.Errorf("Symbology(%q) = %q, want %q", aim, got, want)
		}
	}
}

func TestSSIAIMRoundTrip(t *testing.T) {
	for typ := range 256 {
		s := ssiAIM(byte(typ))
		if len(s) != 6 || Symbology(s) != Symbology("ssi:"+s[4:]) {
			t.Fatalf("ssiAIM(%02X) = %q", typ, s)
		}
	}
	if ssiAIM(0x1C) != "ssi:1C" || ssiAIM(0x03) != "ssi:03" {
		t.Errorf("ssiAIM forms: %q %q", ssiAIM(0x1C), ssiAIM(0x03))
	}
}
