package codes

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	hex64  = "E1D1C0FFEE0123456789ABCDEF0123456789ABCDEF0123456789ABCDEFFBB180"
	hexLow = "e1d1c0ffee0123456789abcdef0123456789abcdef0123456789abcdeffbb180"
)

// insurance is a pattern of the kind a site configures: anchored, opaque token.
var insurance = &Options{Insurance: []*regexp.Regexp{
	nil, // skipped
	regexp.MustCompile(`^YB[0-9A-Z]{30}$`),
}}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name       string
		in         string
		typ        string
		scheme     string
		normalized string
		masked     string
		reason     string
	}{
		// ehc_offline: prefix only, any case; decoding happens elsewhere.
		{"ehc1", "EHC1:W50V50H", TypeEHCOffline, "", "", "", ""},
		{"ehc1 lowercase", "ehc1:w50v50h", TypeEHCOffline, "", "", "", ""},
		{"ehc1 mixed", "eHc1:", TypeEHCOffline, "", "", "", ""},
		{"ehc1 no colon", "EHC1W50", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"ehc2", "EHC2:W50", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"ehc1 not at start", " EHC1:W50", TypeUnknown, "", "", "", ReasonUnrecognised},

		// ehc_online
		{"online", hex64 + ":1", TypeEHCOnline, "", hex64 + ":1", "", ""},
		{"online lowercase hex", hexLow + ":12", TypeEHCOnline, "", hex64 + ":12", "", ""},
		{"online mixed hex", hexLow[:32] + hex64[32:] + ":0", TypeEHCOnline, "", hex64 + ":0", "", ""},
		{"online full-width colon", hex64 + "：7", TypeEHCOnline, "", hex64 + ":7", "", ""},
		{"online full-width lowercase", hexLow + "\uff1a0123456789", TypeEHCOnline, "", hex64 + ":0123456789", "", ""},
		{"online no digits", hex64 + ":", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online full-width no digits", hex64 + "：", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online 63 hex", hex64[1:] + ":1", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online 65 hex", hex64 + "0:1", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online non-hex", "G" + hex64[1:] + ":1", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online trailing letter", hex64 + ":1a", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online trailing space", hex64 + ":1 ", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online two colons", hex64 + "::1", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online semicolon", hex64 + ";1", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online full-width digit", hex64 + ":１", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"online other full-width", hex64 + "；1", TypeUnknown, "", "", "", ReasonUnrecognised},

		// payment: WeChat Pay, 18 digits starting 10-15
		{"wechat 10", "101234567890123456", TypePayment, SchemeWeChat, "", "1012**********3456", ""},
		{"wechat 15", "151234567890123456", TypePayment, SchemeWeChat, "", "1512**********3456", ""},
		{"wechat 17 digits", "13123456789012345", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"wechat 19 digits", "1312345678901234567", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"18 digits starting 09", "091234567890123456", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"18 digits starting 16", "161234567890123456", TypeUnknown, "", "", "", ReasonUnrecognised},
		// Alipay, 16-24 digits starting 25-30
		{"alipay 15 digits", "281234567890123", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"alipay 16 digits", "2812345678901234", TypePayment, SchemeAlipay, "", "2812********1234", ""},
		{"alipay 18 digits", "251234567890123456", TypePayment, SchemeAlipay, "", "2512**********3456", ""},
		{"alipay 24 digits", "301234567890123456789012", TypePayment, SchemeAlipay, "", "3012****************9012", ""},
		{"alipay 25 digits", "3012345678901234567890123", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"16 digits starting 24", "2412345678901234", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"16 digits starting 31", "3112345678901234", TypeUnknown, "", "", "", ReasonUnrecognised},
		// UnionPay, 19 digits starting 62
		{"unionpay", "6212345678901234567", TypePayment, SchemeUnionPay, "", "6212***********4567", ""},
		{"62 with 18 digits", "621234567890123456", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"62 with 20 digits", "62123456789012345678", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"19 digits starting 61", "6112345678901234567", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"payment with a space", "28123456 78901234", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"payment full-width digits", "２８12345678901234", TypeUnknown, "", "", "", ReasonUnrecognised},

		// insurance: only through a configured pattern
		{"insurance", "YB0123456789ABCDEFGHIJ0123456789", TypeInsurance, "", "", "YB01************************6789", ""},
		{"insurance pattern miss", "YB0123", TypeUnknown, "", "", "", ReasonUnrecognised},

		// unknown
		{"empty", "", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"text", "hello", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"chinese text", "电子健康卡", TypeUnknown, "", "", "", ReasonUnrecognised},
		{"url", "https://example.org/x?y=1", TypeUnknown, "", "", "", ReasonUnrecognised},

		// bad bytes, before any rule
		{"tab", "EHC1:\tW50", TypeUnknown, "", "", "", ReasonBadBytes},
		{"newline", "2812345678901234\n", TypeUnknown, "", "", "", ReasonBadBytes},
		{"carriage return", "\r", TypeUnknown, "", "", "", ReasonBadBytes},
		{"NUL", "EHC1:\x00", TypeUnknown, "", "", "", ReasonBadBytes},
		{"ESC", "\x1b[0m", TypeUnknown, "", "", "", ReasonBadBytes},
		{"DEL", "abc\x7f", TypeUnknown, "", "", "", ReasonBadBytes},
		{"invalid UTF-8", "EHC1:\xff", TypeUnknown, "", "", "", ReasonBadBytes},
		{"truncated UTF-8", hex64 + "\xef\xbc", TypeUnknown, "", "", "", ReasonBadBytes},
		{"GBK bytes", "\xb5\xe7\xd7\xd3", TypeUnknown, "", "", "", ReasonBadBytes},
		{"UTF-8 surrogate", "\xed\xa0\x80", TypeUnknown, "", "", "", ReasonBadBytes},
		{"overlong UTF-8", "\xc0\xaf", TypeUnknown, "", "", "", ReasonBadBytes},

		// too long, before bad bytes
		{"4096 bytes", strings.Repeat("A", 4096), TypeUnknown, "", "", "", ReasonUnrecognised},
		{"4096 bytes EHC1", "EHC1:" + strings.Repeat("A", 4091), TypeEHCOffline, "", "", "", ""},
		{"4097 bytes", strings.Repeat("A", 4097), TypeUnknown, "", "", "", ReasonTooLong},
		{"4097 bytes EHC1", "EHC1:" + strings.Repeat("A", 4092), TypeUnknown, "", "", "", ReasonTooLong},
		{"4097 control bytes", strings.Repeat("\x00", 4097), TypeUnknown, "", "", "", ReasonTooLong},
	} {
		got := Classify([]byte(c.in), insurance)
		want := Result{Type: c.typ, Scheme: c.scheme, Normalized: c.normalized, Masked: c.masked, Reason: c.reason}
		if got != want {
			t.Errorf("%s: Classify(%.40q) =\n\t%+v, want\n\t%+v", c.name, c.in, got, want)
		}
	}
}

func TestClassifyNoOptions(t *testing.T) {
	in := []byte("YB0123456789ABCDEFGHIJ0123456789")
	for _, opts := range []*Options{nil, {}, {Insurance: []*regexp.Regexp{nil}}} {
		if got := Classify(in, opts); got.Type != TypeUnknown || got.Reason != ReasonUnrecognised {
			t.Errorf("Classify with %+v = %+v, want unknown", opts, got)
		}
	}
}

// TestClassifyOrder checks that earlier rules win over an insurance pattern that
// would match everything.
func TestClassifyOrder(t *testing.T) {
	all := &Options{Insurance: []*regexp.Regexp{regexp.MustCompile(`.*`)}}
	for in, typ := range map[string]string{
		"EHC1:W50":            TypeEHCOffline,
		hex64 + ":1":          TypeEHCOnline,
		"6212345678901234567": TypePayment,
		"hello":               TypeInsurance,
		"":                    TypeInsurance,
		"\x00":                TypeUnknown,
	} {
		if got := Classify([]byte(in), all); got.Type != typ {
			t.Errorf("Classify(%q) = %s, want %s", in, got.Type, typ)
		}
	}
}

// TestClassifyDoesNotKeepInput checks that a Result does not alias the caller's buffer,
// which a driver reuses for the next scan.
func TestClassifyDoesNotKeepInput(t *testing.T) {
	buf := []byte("2812345678901234")
	r := Classify(buf, nil)
	copy(buf, "0000000000000000")
	if r.Masked != "2812********1234" {
		t.Errorf("Masked changed with the input buffer: %q", r.Masked)
	}
	buf = []byte(hexLow + "：12")
	r = Classify(buf, nil)
	copy(buf, strings.Repeat("0", len(buf)))
	if r.Normalized != hex64+":12" {
		t.Errorf("Normalized changed with the input buffer: %q", r.Normalized)
	}
}

var types = map[string]bool{TypeEHCOffline: true, TypeEHCOnline: true, TypePayment: true, TypeInsurance: true, TypeUnknown: true}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"EHC1:W50V50H", "ehc1:", hex64 + ":1", hexLow + "：42", hex64 + ":", "101234567890123456",
		"2812345678901234", "301234567890123456789012", "6212345678901234567", "YB0123456789ABCDEFGHIJ0123456789",
		"", "\x00", "\xff", "abc\x7f", "电子健康卡",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := isText(in), refText(in); got != want {
			t.Fatalf("isText(%q) = %v, want %v", in, got, want)
		}
		r := Classify(in, insurance)
		if !types[r.Type] {
			t.Fatalf("Type %q", r.Type)
		}
		if (r.Reason == "") == (r.Type == TypeUnknown) {
			t.Fatalf("Type %q with Reason %q", r.Type, r.Reason)
		}
		switch r.Type {
		case TypePayment:
			if r.Masked == "" || r.Masked == string(in) || r.Scheme == "" {
				t.Fatalf("payment %q: Masked %q, Scheme %q", in, r.Masked, r.Scheme)
			}
		case TypeInsurance:
			if r.Masked == string(in) {
				t.Fatalf("insurance %q not masked", in)
			}
		case TypeEHCOnline:
			if len(r.Normalized) < 66 || r.Normalized[64] != ':' || strings.ToUpper(r.Normalized) != r.Normalized {
				t.Fatalf("ehc_online %q normalised to %q", in, r.Normalized)
			}
		}
		if r.Type != TypePayment && r.Scheme != "" {
			t.Fatalf("%s with Scheme %q", r.Type, r.Scheme)
		}
		if r.Type != TypeEHCOnline && r.Normalized != "" {
			t.Fatalf("%s %q: Normalized %q, want none", r.Type, in, r.Normalized)
		}
	})
}

func benchmarkClassify(b *testing.B, in string, typ string) {
	p := []byte(in)
	if got := Classify(p, insurance); got.Type != typ {
		b.Fatalf("Classify(%q) = %s, want %s", in, got.Type, typ)
	}
	b.ReportAllocs()
	for b.Loop() {
		Classify(p, insurance)
	}
}

func BenchmarkEHCOffline(b *testing.B) {
	benchmarkClassify(b, "EHC1:"+strings.Repeat("W50V50H00", 53), TypeEHCOffline)
}
func BenchmarkEHCOnline(b *testing.B) { benchmarkClassify(b, hexLow+"：1234", TypeEHCOnline) }
func BenchmarkPayment(b *testing.B)   { benchmarkClassify(b, "6212345678901234567", TypePayment) }
func BenchmarkInsurance(b *testing.B) {
	benchmarkClassify(b, "YB0123456789ABCDEFGHIJ0123456789", TypeInsurance)
}
func BenchmarkUnknown(b *testing.B) { benchmarkClassify(b, "https://example.org/x?y=1", TypeUnknown) }
func BenchmarkTooLong(b *testing.B) { benchmarkClassify(b, strings.Repeat("A", 4097), TypeUnknown) }
func BenchmarkLongestUnknown(b *testing.B) {
	benchmarkClassify(b, strings.Repeat("电", 1365), TypeUnknown)
}

// refText is the rule isText implements, a byte at a time.
func refText(p []byte) bool {
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(p)
}

// TestIsTextRandom compares isText with refText on strings drawn from the byte
// values around each boundary.
func TestIsTextRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pick := []byte{0x00, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xe0, 0xe7, 0xed, 0xef, 0xf0, 0xff, 'a', 'a', 'a'}
	for i := 0; i < 200000; i++ {
		p := make([]byte, r.IntN(24))
		for j := range p {
			p[j] = pick[r.IntN(len(pick))]
		}
		if got, want := isText(p), refText(p); got != want {
			t.Fatalf("isText(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestIsText checks the word-at-a-time scan against the byte-at-a-time rule for every
// byte value at every position of a word and in the tail.
func TestIsText(t *testing.T) {
	for n := 1; n <= 17; n++ {
		for pos := 0; pos < n; pos++ {
			for v := 0; v < 0x80; v++ {
				p := []byte(strings.Repeat("a", n))
				p[pos] = byte(v)
				want := v >= 0x20 && v != 0x7f
				if got := isText(p); got != want {
					t.Fatalf("isText(%q) = %v, want %v", p, got, want)
				}
			}
		}
	}
	// Multi-byte runes next to ASCII, in and across words.
	for _, s := range []string{"电子健康卡", "a电子健康卡b", "1234567电", "\u00a0\u0080\u009f", "\U0001F600abcdefgh"} {
		if !isText([]byte(s)) {
			t.Errorf("isText(%q) = false", s)
		}
	}
}

// BenchmarkIsTextCJK is the scan alone over the worst case of BenchmarkLongestUnknown
// (4 KiB of 3-byte runes), against utf8.Valid's own pass as the reference.
func BenchmarkIsTextCJK(b *testing.B) {
	p := []byte(strings.Repeat("电", 1365))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if !isText(p) {
			b.Fatal("not text")
		}
	}
}

func BenchmarkRefTextCJK(b *testing.B) {
	p := []byte(strings.Repeat("电", 1365))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if !refText(p) {
			b.Fatal("not text")
		}
	}
}

// TestIsTextThreeByte runs the two-runes-a-load path over every lead and second byte of a
// 3-byte sequence, in both places of a pair and at every offset, against refText: the
// overlong (E0 80..9F) and surrogate (ED A0..BF) forms must be refused there too.
func TestIsTextThreeByte(t *testing.T) {
	for lead := 0xe0; lead <= 0xef; lead++ {
		for second := 0x80; second <= 0xbf; second++ {
			bad := []byte{byte(lead), byte(second), 0x80}
			for _, pre := range []string{"", "a", "ab", "电", "电a"} {
				for slot := 0; slot < 3; slot++ {
					var p []byte
					p = append(p, pre...)
					for k := 0; k < 3; k++ {
						if k == slot {
							p = append(p, bad...)
						} else {
							p = append(p, "电"...)
						}
					}
					p = append(p, "xyz电电"...)
					if got, want := isText(p), refText(p); got != want {
						t.Fatalf("isText(% x) = %v, want %v", p, got, want)
					}
				}
			}
		}
	}
}
