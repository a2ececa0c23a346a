package escpos

import (
	"errors"
	"fmt"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/mask"
	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

// Paper geometry. Thermal receipt printers print 8 dots per mm; a 58 mm roll has 48 mm
// (384 dots) of printable width, an 80 mm roll 72 mm (576 dots).
const (
	DotsPerMM    = 8
	Dots58mm     = 384
	Dots80mm     = 576
	QRMinDots    = 30 * DotsPerMM // PRINTERS.md: the symbol is 30–40 mm wide
	QRMaxDots    = 40 * DotsPerMM
	DefaultTitle = "居民电子健康卡"
	subtitle     = "申领凭证"
)

// ModuleSize chooses the QR module size (dots) for payload at level so that the symbol
// is 30–40 mm wide (PRINTERS.md) and, with its quiet zone, fits printWidth dots.
//
// Printers differ in how they encode: most pick the alphanumeric mode for a code such
// as "E1D1…FBB18:1", some always use the byte mode, which needs a bigger version. The
// size is chosen to suit both when one exists; otherwise the smaller (best) encoding
// within 30–40 mm, with the byte-mode symbol still on the paper; otherwise the best
// encoding as near 30–40 mm as fits. Bigger modules win ties: they read better.
func ModuleSize(payload []byte, level qrimage.Level, printWidth int) (int, error) {
	best, err := qrimage.Version(payload, level)
	if err != nil {
		return 0, err
	}
	worst, err := qrimage.ByteModeVersion(len(payload), level)
	if err != nil {
		worst = best
	}
	mb, mw := 17+4*best, 17+4*worst
	in := func(m, n int) bool { return m*n >= QRMinDots && m*n <= QRMaxDots }
	fits := func(m, n int) bool { return (m+2*qrimage.QuietZone)*n <= printWidth }
	for _, ok := range []func(n int) bool{
		func(n int) bool { return in(mb, n) && in(mw, n) && fits(mw, n) },
		func(n int) bool { return in(mb, n) && fits(mw, n) },
		func(n int) bool { return in(mb, n) && fits(mb, n) },
	} {
		for n := 16; n >= 1; n-- {
			if ok(n) {
				return n, nil
			}
		}
	}
	// No size within 30–40 mm: as near as fits.
	dist := func(n int) int {
		w := mb * n
		return max(QRMinDots-w, w-QRMaxDots, 0)
	}
	choice := 0
	for n := 16; n >= 1; n-- {
		if fits(mb, n) && (choice == 0 || dist(n) < dist(choice)) {
			choice = n
		}
	}
	if choice == 0 {
		return 0, fmt.Errorf("escpos: a version %d QR code does not fit %d dots", best, printWidth)
	}
	return choice, nil
}

// Receipt is the receipt of a card application (PRINTERS.md): the title, the code as a
// QR symbol, the holder's masked name and ID number, the issue time and the terminal.
type Receipt struct {
	Title      string    // "" is DefaultTitle
	Code       string    // the card's code: the QR payload, byte for byte
	Name       string    // the holder's name; masked here, whatever the caller passes
	IDNumber   string    // the holder's ID number; masked here
	IssuedAt   time.Time // printed in its own location, to the second
	TerminalID string
	PrintWidth int // printable dots per line; 0 is Dots58mm
}

// Bytes is the ESC/POS job of the receipt. Name and ID number are masked here so that
// no caller can print them in clear by mistake; characters GBK lacks print as '?'.
func (r *Receipt) Bytes() ([]byte, error) {
	if r.Code == "" {
		return nil, errors.New("escpos: receipt without a code")
	}
	width := r.PrintWidth
	if width == 0 {
		width = Dots58mm
	}
	n, err := ModuleSize([]byte(r.Code), qrimage.M, width)
	if err != nil {
		return nil, err
	}
	title := r.Title
	if title == "" {
		title = DefaultTitle
	}
	var b Builder
	b.Init()
	b.Chinese(true)
	b.Align(Center)
	b.Bold(true)
	b.Double(true)
	b.Line(gbkSafe(title))
	b.Double(false)
	b.Bold(false)
	b.Line(subtitle)
	b.Feed(1)
	b.QR([]byte(r.Code), n, qrimage.M)
	b.Feed(1)
	b.Align(Left)
	b.Line("姓名：" + gbkSafe(mask.Name(r.Name)))
	b.Line("证件号码：" + gbkSafe(mask.Number(r.IDNumber)))
	b.Line("发卡时间：" + r.IssuedAt.Format("2006-01-02 15:04:05"))
	b.Line("终端编号：" + gbkSafe(r.TerminalID))
	b.Feed(2)
	b.Chinese(false)
	b.Cut()
	return b.Bytes()
}
