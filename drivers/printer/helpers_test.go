package printer

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// The code format the platform issues: 64 hex digits, ':' and a sequence number.
const testCode = "4F1C7A0E9B3D52A6C8E1F0B7D4A29C3E5F7081A2B3C4D5E6F708192A3B4C5D6E:1"

func testReceipt(t *testing.T) []byte {
	t.Helper()
	r := escpos.Receipt{Code: testCode, Name: "李小龙", IDNumber: "44030419800101123X",
		IssuedAt: time.Date(2026, 11, 24, 8, 0, 1, 0, time.FixedZone("CST", 8*3600)), TerminalID: "K-0042"}
	b, err := r.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, c Config) *Printer {
	t.Helper()
	p, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// checkPrinted reads the one job the virtual printer printed back: the bytes are the
// receipt's, the QR payload stored with GS ( k is the code, the GBK text decodes, and
// the page rendered from the parsed job (kept as artifact) decodes with gozxing, an
// independent QR decoder, to the code.
func checkPrinted(t *testing.T, vp *vprinter.Printer, receipt []byte, artifactName string) {
	t.Helper()
	jobs, err := vp.WaitJobs(ctxT(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	j := jobs[0]
	if j.Err != nil {
		t.Fatalf("job: %v", j.Err)
	}
	if !bytes.Equal(j.Bytes, receipt) {
		t.Fatalf("printed\n% X\nwant\n% X", j.Bytes, receipt)
	}
	qrs := j.Doc.QRs()
	if len(qrs) != 1 || string(qrs[0].Payload) != testCode {
		t.Fatalf("symbols %+v", qrs)
	}
	texts := strings.Join(j.Doc.Texts(), "\n")
	for _, want := range []string{escpos.DefaultTitle, "姓名：李**", "证件号码：4403**********123X", "终端编号：K-0042"} {
		if !strings.Contains(texts, want) {
			t.Errorf("no %q in the printed text:\n%s", want, texts)
		}
	}
	var font escpos.Font
	if data, err := os.ReadFile(escpos.UnifontPath); err == nil {
		runes := j.Doc.Runes()
		if font, err = escpos.ParseHexFont(data, func(r rune) bool { return runes[r] }); err != nil {
			t.Fatal(err)
		}
	}
	page, err := escpos.RenderPNG(j.Doc, escpos.Dots58mm, font)
	if err != nil {
		t.Fatal(err)
	}
	if artifactName != "" {
		if err := os.WriteFile(artifact(t, artifactName), page, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := png.Decode(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	if res.GetText() != testCode {
		t.Fatalf("the rendered receipt decodes to %q", res.GetText())
	}
}

// checkNothingPrinted: the printer got status requests only, and printed no job.
func checkNothingPrinted(t *testing.T, vp *vprinter.Printer) {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // anything sent would have arrived by now
	if jobs := vp.Jobs(); len(jobs) != 0 {
		t.Fatalf("%d jobs printed", len(jobs))
	}
	if n := vp.Discarded(); n != 0 {
		t.Fatalf("%d bytes sent while the printer could not print", n)
	}
	rx := vp.Received()
	d, err := escpos.Parse(rx)
	if err != nil || len(d.Blocks) != 0 || len(d.Requests) == 0 {
		t.Fatalf("the printer received more than status requests: % X", rx)
	}
}

// artifact is where a rendering is kept after the test: $EHC_TEST_ARTIFACTS, or a
// directory in the system's temporary directory.
func artifact(t *testing.T, name string) string {
	dir := os.Getenv("EHC_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ehc-agent-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

func listenTCP(t *testing.T, c vprinter.Config) *vprinter.Printer {
	t.Helper()
	vp, err := vprinter.ListenTCP("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vp.Close() })
	return vp
}
