package escpos

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Every byte example of PRINTERS.md, written by the Builder and read back by Next.
func TestSpecBytes(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(b *Builder)
		bytes string
		want  Command
	}{
		{"initialise", func(b *Builder) { b.Init() }, "1B 40", Command{Op: OpInit}},
		{"Chinese mode on", func(b *Builder) { b.Chinese(true) }, "1C 26", Command{Op: OpChineseOn}},
		{"Chinese mode off", func(b *Builder) { b.Chinese(false) }, "1C 2E", Command{Op: OpChineseOff}},
		{"align left", func(b *Builder) { b.Align(Left) }, "1B 61 00", Command{Op: OpAlign, Arg: 0}},
		{"align centre", func(b *Builder) { b.Align(Center) }, "1B 61 01", Command{Op: OpAlign, Arg: 1}},
		{"bold on", func(b *Builder) { b.Bold(true) }, "1B 45 01", Command{Op: OpBold, Arg: 1}},
		{"bold off", func(b *Builder) { b.Bold(false) }, "1B 45 00", Command{Op: OpBold, Arg: 0}},
		{"double", func(b *Builder) { b.Double(true) }, "1D 21 11", Command{Op: OpSize, Arg: 0x11}},
		{"normal", func(b *Builder) { b.Double(false) }, "1D 21 00", Command{Op: OpSize, Arg: 0}},
		{"feed and partial cut", func(b *Builder) { b.Cut() }, "1D 56 42 00", Command{Op: OpCut, Arg: 0x42, Arg2: 0}},
	} {
		var b Builder
		c.build(&b)
		got, err := b.Bytes()
		if err != nil || !bytes.Equal(got, h(c.bytes)) {
			t.Errorf("%s: wrote % X, %v; want %s", c.name, got, err, c.bytes)
			continue
		}
		cmd, n, err := Next(got)
		if err != nil || n != len(got) || cmd.Op != c.want.Op || cmd.Arg != c.want.Arg || cmd.Arg2 != c.want.Arg2 {
			t.Errorf("%s: Next(% X) = %+v, %d, %v; want %+v", c.name, got, cmd, n, err, c.want)
		}
	}
}

// The QR rows of PRINTERS.md: model 2, module size n, level M (and L, Q, H), store with
// pL + 256·pH = k + 3, print.
func TestSpecQRBytes(t *testing.T) {
	payload := []byte("E1D1:1")
	var b Builder
	b.QR(payload, 8, qrimage.M)
	got, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := h("1D 28 6B 04 00 31 41 32 00" + "1D 28 6B 03 00 31 43 08" + "1D 28 6B 03 00 31 45 31" +
		"1D 28 6B 09 00 31 50 30" + hex.EncodeToString(payload) + "1D 28 6B 03 00 31 51 30")
	if !bytes.Equal(got, want) {
		t.Fatalf("wrote\n% X\nwant\n% X", got, want)
	}
	for level, n := range []byte{0x30, 0x31, 0x32, 0x33} {
		var b Builder
		b.QR(payload, 1, qrimage.Level(level))
		got, _ := b.Bytes()
		if !bytes.Contains(got, []byte{0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, n}) {
			t.Errorf("level %v: no 1D 28 6B 03 00 31 45 %02X in % X", qrimage.Level(level), n, got)
		}
	}
	for _, size := range []int{1, 16} {
		var b Builder
		b.QR(payload, size, qrimage.M)
		got, _ := b.Bytes()
		if !bytes.Contains(got, []byte{0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, byte(size)}) {
			t.Errorf("module size %d not written: % X", size, got)
		}
	}
	// pH counts: a 300-byte payload has pL pH = 0x2F 0x01 (303).
	long := bytes.Repeat([]byte("A"), 300)
	var lb Builder
	lb.QR(long, 3, qrimage.M)
	got, _ = lb.Bytes()
	if !bytes.Contains(got, h("1D 28 6B 2F 01 31 50 30")) {
		t.Errorf("no 1D 28 6B 2F 01 31 50 30 for 300 bytes")
	}

	// Read back: each function is one OpQR command; the store carries the payload.
	d, err := Parse(append(append(h("1B 40"), want...), h("1D 56 42 00")...))
	if err != nil {
		t.Fatal(err)
	}
	qrs := d.QRs()
	if len(qrs) != 1 || !bytes.Equal(qrs[0].Payload, payload) || qrs[0].Model != 2 || qrs[0].ModuleSize != 8 || qrs[0].Level != qrimage.M {
		t.Fatalf("parsed %+v", qrs)
	}
	if d.Cuts() != 1 {
		t.Errorf("%d cuts", d.Cuts())
	}
}

// `10 04 04` → one byte; bits 2–3 set: paper near end, bits 5–6 set: paper out.
func TestSpecPaperStatus(t *testing.T) {
	if cmd, n, err := Next(PaperStatusRequest); err != nil || n != 3 || cmd.Op != OpRealtimeStatus || cmd.Arg != 4 {
		t.Fatalf("Next(10 04 04) = %+v %d %v", cmd, n, err)
	}
	if !bytes.Equal(PaperStatusRequest, h("10 04 04")) {
		t.Fatalf("request % X", PaperStatusRequest)
	}
	for _, c := range []struct {
		reply byte
		want  PaperStatus
	}{
		{0x12, PaperStatus{}},
		{0x12 | 0x0C, PaperStatus{NearEnd: true}},
		{0x12 | 0x04, PaperStatus{NearEnd: true}},
		{0x12 | 0x08, PaperStatus{NearEnd: true}},
		{0x12 | 0x60, PaperStatus{Out: true}},
		{0x12 | 0x20, PaperStatus{Out: true}},
		{0x12 | 0x40, PaperStatus{Out: true}},
		{0x12 | 0x6C, PaperStatus{NearEnd: true, Out: true}},
		{0x00, PaperStatus{}},
	} {
		got, err := ParsePaperStatus(c.reply)
		if err != nil || got != c.want {
			t.Errorf("ParsePaperStatus(%02X) = %+v, %v; want %+v", c.reply, got, err, c.want)
		}
	}
	for _, s := range []PaperStatus{{}, {NearEnd: true}, {Out: true}, {NearEnd: true, Out: true}} {
		if got, err := ParsePaperStatus(s.Byte()); err != nil || got != s {
			t.Errorf("%+v: byte %02X reads back as %+v, %v", s, s.Byte(), got, err)
		}
		if got, err := ParsePaperSensor(s.SensorByte()); err != nil || got != s {
			t.Errorf("%+v: GS r byte %02X reads back as %+v, %v", s, s.SensorByte(), got, err)
		}
	}
	for _, bad := range []byte{0xFF, 0x80, 0x13} {
		if _, err := ParsePaperStatus(bad); err == nil {
			t.Errorf("%02X accepted as a status reply", bad)
		}
	}
	if s, err := ParsePrinterStatus(0x12 | 0x08); err != nil || !s.Offline {
		t.Errorf("DLE EOT 1 reply 1A: %+v %v", s, err)
	}
	if s, err := ParsePrinterStatus(0x12); err != nil || s.Offline {
		t.Errorf("DLE EOT 1 reply 12: %+v %v", s, err)
	}
}
