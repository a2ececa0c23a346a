package escpos

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

// The code format the platform issues: 64 hex digits, ':' and a sequence number.
const testCode = "E1D1A0B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5FBB18:1"

func testReceipt() Receipt {
	return Receipt{Code: testCode, Name: "张三丰", IDNumber: "110101198001011234",
		IssuedAt: time.Date(2026, 11, 24, 8, 0, 1, 0, time.FixedZone("CST", 8*3600)), TerminalID: "K-0001"}
}

// A receipt parses back to what PRINTERS.md lists: initialise, centred Chinese title,
// QR model 2 at level M holding the code byte for byte, masked name and ID number,
// issue time, terminal id, cut.
func TestReceiptRoundTrip(t *testing.T) {
	r := testReceipt()
	b, err := r.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{ESC, '@', FS, '&'}) || !bytes.HasSuffix(b, []byte{GS, 'V', 0x42, 0}) {
		t.Fatalf("receipt does not start with ESC @ FS & and end with the cut: % X", b)
	}
	if bytes.Contains(b, []byte{DLE, EOT}) {
		t.Fatal("receipt holds the real-time bytes 10 04")
	}
	if bytes.Contains(b, []byte("110101198001011234")) || bytes.Contains(b, []byte("三丰")) {
		t.Fatal("receipt holds personal data in clear")
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	qrs := d.QRs()
	if len(qrs) != 1 {
		t.Fatalf("%d symbols", len(qrs))
	}
	q := qrs[0]
	if string(q.Payload) != testCode || q.Model != 2 || q.Level != qrimage.M {
		t.Fatalf("symbol %+v", q)
	}
	// 30–40 mm at 8 dots/mm, whether the printer encodes alphanumerics or bytes.
	for _, v := range []func() (int, error){
		func() (int, error) { return qrimage.Version(q.Payload, qrimage.M) },
		func() (int, error) { return qrimage.ByteModeVersion(len(q.Payload), qrimage.M) },
	} {
		ver, err := v()
		if err != nil {
			t.Fatal(err)
		}
		if w := (17 + 4*ver) * q.ModuleSize; w < 240 || w > 320 {
			t.Errorf("version %d at %d dots a module is %d dots wide", ver, q.ModuleSize, w)
		}
	}
	var title, qrBlock *Block
	for i := range d.Blocks {
		switch {
		case d.Blocks[i].Kind == BlockText && d.Blocks[i].Text == DefaultTitle:
			title = &d.Blocks[i]
		case d.Blocks[i].Kind == BlockQR:
			qrBlock = &d.Blocks[i]
		}
	}
	if title == nil || title.Align != Center || !title.Bold || title.Width != 2 || title.High != 2 {
		t.Errorf("title block %+v", title)
	}
	if qrBlock.Align != Center {
		t.Errorf("symbol aligned %v", qrBlock.Align)
	}
	texts := strings.Join(d.Texts(), "\n")
	for _, want := range []string{"姓名：张**", "证件号码：1101**********1234", "发卡时间：2026-11-24 08:00:01", "终端编号：K-0001"} {
		if !strings.Contains(texts, want) {
			t.Errorf("no line %q in\n%s", want, texts)
		}
	}
	if d.Cuts() != 1 {
		t.Errorf("%d cuts", d.Cuts())
	}
}

// GBK text survives the trip in the Chinese mode, character for character.
func TestGBKRoundTrip(t *testing.T) {
	lines := []string{"居民电子健康卡", "申领凭证：ＡＢＣ１２３", "中文 mixed with ASCII 123", "龘靐齉爩", "〇一二三四五六七八九十"}
	var b Builder
	b.Init()
	b.Chinese(true)
	for _, l := range lines {
		b.Line(l)
	}
	b.Cut()
	job, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(job)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Texts(); strings.Join(got, "|") != strings.Join(lines, "|") {
		t.Fatalf("texts %q, want %q", got, lines)
	}
}

func TestBuilderRefuses(t *testing.T) {
	for name, f := range map[string]func(b *Builder){
		"Chinese text outside the Chinese mode": func(b *Builder) { b.Text("中") },
		"a control character":                   func(b *Builder) { b.Chinese(true); b.Text("a\x1bb") },
		"a character GBK lacks":                 func(b *Builder) { b.Chinese(true); b.Text("😀") },
		"invalid UTF-8":                         func(b *Builder) { b.Text("\xff") },
		"a payload with 10 04":                  func(b *Builder) { b.QR([]byte{'a', DLE, EOT, 4}, 4, qrimage.M) },
		"an empty payload":                      func(b *Builder) { b.QR(nil, 4, qrimage.M) },
		"module size 0":                         func(b *Builder) { b.QR([]byte("a"), 0, qrimage.M) },
		"module size 17":                        func(b *Builder) { b.QR([]byte("a"), 17, qrimage.M) },
		"level 4":                               func(b *Builder) { b.QR([]byte("a"), 4, qrimage.Level(4)) },
		"alignment 3":                           func(b *Builder) { b.Align(Align(3)) },
		"feed -1":                               func(b *Builder) { b.Feed(-1) },
	} {
		var b Builder
		f(&b)
		b.Line("after") // sticky: nothing after the error is written either
		if out, err := b.Bytes(); err == nil {
			t.Errorf("%s: accepted: % X", name, out)
		}
	}
}

// A name with a character GBK lacks still prints, with '?' for it.
func TestReceiptUnprintableName(t *testing.T) {
	r := testReceipt()
	r.Name = "𠀀小明" // U+20000 is outside GBK
	b, err := r.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(d.Texts(), "\n"), "姓名：?**") {
		t.Fatalf("texts %q", d.Texts())
	}
	r.Code = ""
	if _, err := r.Bytes(); err == nil {
		t.Fatal("receipt without a code accepted")
	}
}

func TestModuleSize(t *testing.T) {
	for _, c := range []struct {
		payload string
		width   int
		want    int
	}{
		// Version 4 (alphanumeric) / 5 (bytes): 8 dots gives 264 / 296 dots.
		{testCode, Dots58mm, 8},
		{testCode, Dots80mm, 8},
		// Version 1 (21 modules): 15 dots would be 315, but 435 with the quiet zone is
		// wider than 58 mm paper; 13 is 273 (377).
		{"1234", Dots58mm, 13},
		{"1234", Dots80mm, 15},
		// 200 bytes of lower case at M: version 10 (57 modules) both ways: 5 dots, 285.
		{strings.Repeat("a", 200), Dots58mm, 5},
	} {
		got, err := ModuleSize([]byte(c.payload), qrimage.M, c.width)
		if err != nil || got != c.want {
			t.Errorf("ModuleSize(%d bytes, %d) = %d, %v; want %d", len(c.payload), c.width, got, err, c.want)
		}
	}
	// Version 40 (177 modules) is never 30–40 mm; the nearest that fits 576 dots is 2.
	if got, err := ModuleSize(bytes.Repeat([]byte("a"), 2300), qrimage.M, Dots80mm); err != nil || got != 2 {
		t.Errorf("version 40 on 80 mm: %d, %v", got, err)
	}
	if _, err := ModuleSize(bytes.Repeat([]byte("a"), 2300), qrimage.M, 150); err == nil {
		t.Error("version 40 fits 150 dots")
	}
}
