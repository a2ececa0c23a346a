package escpos

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/ehc-agent/ehc-agent/protocol/qrimage"
)

// Op is the kind of a command.
type Op uint8

const (
	OpText           Op = iota + 1 // printable bytes (≥ 0x20); Data
	OpLF                           // 0A: print the line and feed
	OpCR                           // 0D: ignored, as printers with auto line feed off do
	OpHT                           // 09: horizontal tab
	OpInit                         // ESC @
	OpPrintMode                    // ESC ! n
	OpUnderline                    // ESC - n
	OpLineSpacing                  // ESC 2 (Arg 0: default) or ESC 3 n
	OpBold                         // ESC E n
	OpDoubleStrike                 // ESC G n
	OpFeedLines                    // ESC d n
	OpAlign                        // ESC a n (Arg normalised to 0, 1, 2)
	OpCodeTable                    // ESC t n
	OpCharset                      // ESC R n
	OpSize                         // GS ! n
	OpChineseOn                    // FS &
	OpChineseOff                   // FS .
	OpQR                           // GS ( k with cn 49; Arg is the function, Data its parameters or payload
	OpSymbol                       // GS ( k with another cn (PDF417 …): skipped by its length
	OpCut                          // GS V m [n]; Arg m, Arg2 n
	OpRealtimeStatus               // DLE EOT n; Arg n
	OpTransmitStatus               // GS r n; Arg n
)

// QR functions (`GS ( k pL pH 31 fn …`).
const (
	QRModel    = 0x41 // 165: select the model
	QRSize     = 0x43 // 167: module size
	QRLevel    = 0x45 // 169: error correction level
	QRStore    = 0x50 // 180: store data
	QRPrint    = 0x51 // 181: print the stored symbol
	QRSizeInfo = 0x52 // 182: transmit the stored symbol's size (the printer answers)
)

// Command is one command of the stream. Data aliases the input.
type Command struct {
	Op   Op
	Arg  byte
	Arg2 byte
	Data []byte
}

// ErrIncomplete means the input ends inside a command: Next wants more bytes.
var ErrIncomplete = errors.New("escpos: incomplete command")

// SyntaxError is a command the parser does not know or that breaks its own rules, at
// Offset in the input.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("escpos: %s at offset %d", e.Msg, e.Offset)
}

func syntax(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// Next reads the command at the start of b and says how many bytes it took. A run of
// printable bytes is one OpText command, which may end where b ends: a stream reader
// gets the rest of the text as the next command. At the end of b inside any other
// command it returns ErrIncomplete; an unknown or malformed command is a *SyntaxError
// with Offset 0.
func Next(b []byte) (Command, int, error) {
	if len(b) == 0 {
		return Command{}, 0, ErrIncomplete
	}
	c := b[0]
	if c >= 0x20 {
		n := 1
		for n < len(b) && b[n] >= 0x20 {
			n++
		}
		return Command{Op: OpText, Data: b[:n]}, n, nil
	}
	switch c {
	case LF:
		return Command{Op: OpLF}, 1, nil
	case CR:
		return Command{Op: OpCR}, 1, nil
	case HT:
		return Command{Op: OpHT}, 1, nil
	case DLE:
		if len(b) > 1 && b[1] != EOT {
			return Command{}, 0, syntax("unknown command DLE %02X", b[1])
		}
		if len(b) < 3 {
			return Command{}, 0, ErrIncomplete
		}
		if b[2] < 1 || b[2] > 4 {
			return Command{}, 0, syntax("DLE EOT %d: n is not 1-4", b[2])
		}
		return Command{Op: OpRealtimeStatus, Arg: b[2]}, 3, nil
	case ESC:
		return nextESC(b)
	case FS:
		if len(b) < 2 {
			return Command{}, 0, ErrIncomplete
		}
		switch b[1] {
		case '&':
			return Command{Op: OpChineseOn}, 2, nil
		case '.':
			return Command{Op: OpChineseOff}, 2, nil
		}
		return Command{}, 0, syntax("unknown command FS %02X", b[1])
	case GS:
		return nextGS(b)
	}
	return Command{}, 0, syntax("unknown control byte %02X", c)
}

func nextESC(b []byte) (Command, int, error) {
	if len(b) < 2 {
		return Command{}, 0, ErrIncomplete
	}
	one := func(op Op) (Command, int, error) {
		if len(b) < 3 {
			return Command{}, 0, ErrIncomplete
		}
		return Command{Op: op, Arg: b[2]}, 3, nil
	}
	switch b[1] {
	case '@':
		return Command{Op: OpInit}, 2, nil
	case '2':
		return Command{Op: OpLineSpacing}, 2, nil
	case '3':
		return one(OpLineSpacing)
	case '!':
		return one(OpPrintMode)
	case '-':
		return one(OpUnderline)
	case 'E':
		return one(OpBold)
	case 'G':
		return one(OpDoubleStrike)
	case 'd':
		return one(OpFeedLines)
	case 't':
		return one(OpCodeTable)
	case 'R':
		return one(OpCharset)
	case 'a':
		c, n, err := one(OpAlign)
		if err != nil {
			return c, n, err
		}
		switch c.Arg {
		case 0, 1, 2:
		case '0', '1', '2':
			c.Arg -= '0'
		default:
			return Command{}, 0, syntax("ESC a %d: n is not 0-2 or 48-50", c.Arg)
		}
		return c, n, nil
	}
	return Command{}, 0, syntax("unknown command ESC %02X", b[1])
}

func nextGS(b []byte) (Command, int, error) {
	if len(b) < 2 {
		return Command{}, 0, ErrIncomplete
	}
	switch b[1] {
	case '!':
		if len(b) < 3 {
			return Command{}, 0, ErrIncomplete
		}
		if b[2]&0x88 != 0 {
			return Command{}, 0, syntax("GS ! %02X: size beyond 8", b[2])
		}
		return Command{Op: OpSize, Arg: b[2]}, 3, nil
	case 'r':
		if len(b) < 3 {
			return Command{}, 0, ErrIncomplete
		}
		switch b[2] {
		case 1, 2, '1', '2':
			return Command{Op: OpTransmitStatus, Arg: b[2] &^ 0x30}, 3, nil
		}
		return Command{}, 0, syntax("GS r %d: n is not 1, 2, 49 or 50", b[2])
	case 'V':
		if len(b) < 3 {
			return Command{}, 0, ErrIncomplete
		}
		switch m := b[2]; m {
		case 0, 1, '0', '1':
			return Command{Op: OpCut, Arg: m}, 3, nil
		case 'A', 'B', 'a', 'b', 'g', 'h':
			if len(b) < 4 {
				return Command{}, 0, ErrIncomplete
			}
			return Command{Op: OpCut, Arg: m, Arg2: b[3]}, 4, nil
		default:
			return Command{}, 0, syntax("GS V %d: unknown cut", m)
		}
	case '(':
		return nextGSParen(b)
	}
	return Command{}, 0, syntax("unknown command GS %02X", b[1])
}

// nextGSParen reads `GS ( k pL pH cn fn …`; pL + 256·pH bytes follow pH.
func nextGSParen(b []byte) (Command, int, error) {
	if len(b) < 3 {
		return Command{}, 0, ErrIncomplete
	}
	if b[2] != 'k' {
		return Command{}, 0, syntax("unknown command GS ( %02X", b[2])
	}
	if len(b) < 5 {
		return Command{}, 0, ErrIncomplete
	}
	p := int(b[3]) | int(b[4])<<8
	if p < 2 {
		return Command{}, 0, syntax("GS ( k with %d parameter bytes", p)
	}
	total := 5 + p
	if len(b) < total {
		// Check what can be checked before waiting for the payload, so that a stray
		// length does not make a stream reader wait for 64 KiB that never come.
		if len(b) >= 7 && b[5] == 0x31 {
			if err := checkQR(b[6], p, nil); err != nil {
				return Command{}, 0, err
			}
		}
		return Command{}, 0, ErrIncomplete
	}
	cn, fn, data := b[5], b[6], b[7:total]
	if cn != 0x31 {
		return Command{Op: OpSymbol, Arg: fn, Arg2: cn, Data: data}, total, nil
	}
	if err := checkQR(fn, p, data); err != nil {
		return Command{}, 0, err
	}
	return Command{Op: OpQR, Arg: fn, Data: data}, total, nil
}

// checkQR checks a QR function's length and, once data (p − 2 bytes) is there, its
// parameters.
func checkQR(fn byte, p int, data []byte) error {
	want := 3
	switch fn {
	case QRStore:
		if p < 4 || p-3 > MaxQRData {
			return syntax("QR store with %d data bytes (1-%d)", p-3, MaxQRData)
		}
		want = p
	case QRModel:
		want = 4
	case QRSize, QRLevel, QRPrint, QRSizeInfo:
	default:
		return syntax("unknown QR function %02X", fn)
	}
	if p != want {
		return syntax("QR function %02X with %d parameter bytes, not %d", fn, p, want)
	}
	if data == nil {
		return nil
	}
	switch fn {
	case QRModel:
		if data[0] < 0x31 || data[0] > 0x33 || data[1] != 0 {
			return syntax("QR model %02X %02X", data[0], data[1])
		}
	case QRSize:
		if data[0] < 1 || data[0] > 16 {
			return syntax("QR module size %d (1-16)", data[0])
		}
	case QRLevel:
		if data[0] < 0x30 || data[0] > 0x33 {
			return syntax("QR error correction %02X (30-33)", data[0])
		}
	case QRStore, QRPrint, QRSizeInfo:
		if data[0] != 0x30 {
			return syntax("QR function %02X with m = %02X, not 30", fn, data[0])
		}
	}
	return nil
}

// MaxJob bounds what Parse reads: a receipt is a few KiB.
const MaxJob = 1 << 20

// BlockKind is what a Block is.
type BlockKind uint8

const (
	BlockText BlockKind = iota + 1 // one printed line (maybe empty: a blank line)
	BlockQR                        // a printed QR symbol
	BlockFeed                      // Lines blank lines (ESC d)
	BlockCut                       // the paper cut
)

// Block is one thing on the paper, top to bottom.
type Block struct {
	Kind  BlockKind
	Text  string // BlockText: UTF-8, GBK decoded where the Chinese mode was on
	Align Align  // BlockText, BlockQR
	Bold  bool   // BlockText: at the line's first character
	Width int    // BlockText: character width multiplier 1-8 at the line's first character
	High  int    // BlockText: character height multiplier 1-8
	QR    *QR    // BlockQR
	Lines int    // BlockFeed
}

// QR is a printed symbol as the printer was told to print it.
type QR struct {
	Model      int // 1, 2, or 3 for micro QR
	ModuleSize int // dots
	Level      qrimage.Level
	Payload    []byte
}

// Document is a parsed job.
type Document struct {
	Blocks []Block
	// Requests are the status requests (OpRealtimeStatus, OpTransmitStatus), in order.
	Requests []Command
}

// Texts are the document's text lines, blank ones included.
func (d *Document) Texts() []string {
	var s []string
	for _, b := range d.Blocks {
		if b.Kind == BlockText {
			s = append(s, b.Text)
		}
	}
	return s
}

// QRs are the document's printed symbols.
func (d *Document) QRs() []*QR {
	var q []*QR
	for _, b := range d.Blocks {
		if b.Kind == BlockQR {
			q = append(q, b.QR)
		}
	}
	return q
}

// Cuts counts the cuts.
func (d *Document) Cuts() int {
	n := 0
	for _, b := range d.Blocks {
		if b.Kind == BlockCut {
			n++
		}
	}
	return n
}

// Parse reads a whole job as a printer would print it. Any command Next refuses, or a
// job ending inside a command, is a *SyntaxError with the offset of that command.
func Parse(b []byte) (*Document, error) {
	if len(b) > MaxJob {
		return nil, &SyntaxError{Offset: MaxJob, Msg: fmt.Sprintf("job of %d bytes is over %d", len(b), MaxJob)}
	}
	var p Interpreter
	off := 0
	for off < len(b) {
		c, n, err := Next(b[off:])
		if errors.Is(err, ErrIncomplete) {
			return nil, &SyntaxError{Offset: off, Msg: "job ends inside a command"}
		}
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				se.Offset += off
			}
			return nil, err
		}
		if err := p.Apply(c); err != nil {
			return nil, &SyntaxError{Offset: off, Msg: err.Error()}
		}
		off += n
	}
	return p.Finish(), nil
}

// Interpreter is the state of a printer reading commands: what Parse uses, and what a
// stream reader (a virtual printer) feeds with Next's commands one by one. The zero
// value is a printer just switched on.
type Interpreter struct {
	doc Document

	chinese      bool
	align        Align
	bold         bool
	width, high  int
	qrModel      int
	qrSize       int
	qrLevel      qrimage.Level
	qrData       []byte
	line         []byte
	lineChinese  []bool // per byte of line: was the Chinese mode on
	lineAlign    Align
	lineBold     bool
	lineW, lineH int
}

func (p *Interpreter) reset() {
	doc := p.doc
	*p = Interpreter{doc: doc}
}

// Apply acts on one command. Its error is the printer refusing it (a symbol printed
// with nothing stored); the state is unchanged then.
func (p *Interpreter) Apply(c Command) error {
	switch c.Op {
	case OpText:
		if len(p.line)+len(c.Data) > MaxJob {
			return errors.New("line too long")
		}
		if len(p.line) == 0 {
			p.lineAlign, p.lineBold, p.lineW, p.lineH = p.align, p.bold, mult(p.width), mult(p.high)
		}
		p.line = append(p.line, c.Data...)
		for range c.Data {
			p.lineChinese = append(p.lineChinese, p.chinese)
		}
	case OpHT:
		return p.Apply(Command{Op: OpText, Data: []byte("    ")})
	case OpLF:
		p.flush(true)
	case OpCR:
	case OpInit:
		// ESC @ clears the print buffer: a line not yet ended is never printed.
		p.reset()
	case OpChineseOn:
		p.chinese = true
	case OpChineseOff:
		p.chinese = false
	case OpAlign:
		// Printers act on ESC a only at the start of a line and ignore it elsewhere.
		if len(p.line) == 0 {
			p.align = Align(c.Arg)
		}
	case OpBold:
		p.bold = c.Arg&1 == 1
	case OpPrintMode:
		p.bold = c.Arg&0x08 != 0
		p.width, p.high = 0, 0
		if c.Arg&0x20 != 0 {
			p.width = 1
		}
		if c.Arg&0x10 != 0 {
			p.high = 1
		}
	case OpSize:
		p.width, p.high = int(c.Arg>>4), int(c.Arg&7)
	case OpFeedLines:
		p.flush(false)
		if c.Arg > 0 {
			p.doc.Blocks = append(p.doc.Blocks, Block{Kind: BlockFeed, Lines: int(c.Arg)})
		}
	case OpCut:
		p.flush(false)
		p.doc.Blocks = append(p.doc.Blocks, Block{Kind: BlockCut})
	case OpRealtimeStatus, OpTransmitStatus:
		p.doc.Requests = append(p.doc.Requests, Command{Op: c.Op, Arg: c.Arg})
	case OpQR:
		return p.qr(c)
	case OpUnderline, OpLineSpacing, OpDoubleStrike, OpCodeTable, OpCharset, OpSymbol:
		// Accepted and not drawn: they change how text looks, not what it says.
	default:
		return fmt.Errorf("unknown op %d", c.Op)
	}
	return nil
}

func mult(n int) int { return n + 1 }

func (p *Interpreter) qr(c Command) error {
	switch c.Arg {
	case QRModel:
		p.qrModel = int(c.Data[0] - 0x30)
	case QRSize:
		p.qrSize = int(c.Data[0])
	case QRLevel:
		p.qrLevel = qrimage.Level(c.Data[0] - 0x30)
	case QRStore:
		p.qrData = append(p.qrData[:0], c.Data[1:]...)
	case QRPrint:
		if len(p.qrData) == 0 {
			return errors.New("QR print with no data stored")
		}
		p.flush(false)
		q := &QR{Model: p.qrModel, ModuleSize: p.qrSize, Level: p.qrLevel, Payload: append([]byte(nil), p.qrData...)}
		// Printers' defaults when a job sets nothing: model 2, 3 dots, level L.
		if q.Model == 0 {
			q.Model = 2
		}
		if q.ModuleSize == 0 {
			q.ModuleSize = 3
		}
		p.doc.Blocks = append(p.doc.Blocks, Block{Kind: BlockQR, Align: p.align, QR: q})
	}
	return nil
}

// flush prints the line buffer; with lf, an empty buffer still prints a blank line.
func (p *Interpreter) flush(lf bool) {
	if len(p.line) == 0 {
		if lf {
			p.doc.Blocks = append(p.doc.Blocks, Block{Kind: BlockText, Align: p.align, Bold: p.bold, Width: mult(p.width), High: mult(p.high)})
		}
		return
	}
	p.doc.Blocks = append(p.doc.Blocks, Block{Kind: BlockText, Text: decodeLine(p.line, p.lineChinese),
		Align: p.lineAlign, Bold: p.lineBold, Width: p.lineW, High: p.lineH})
	p.line, p.lineChinese = p.line[:0], p.lineChinese[:0]
}

// decodeLine decodes each run of bytes written in one mode: GBK in the Chinese mode;
// outside it, ASCII, and U+FFFD for bytes ≥ 0x80 (code page glyphs a receipt should
// never rely on).
func decodeLine(b []byte, chinese []bool) string {
	var out []byte
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && chinese[j] == chinese[i] {
			j++
		}
		if chinese[i] {
			s, err := simplifiedchinese.GBK.NewDecoder().Bytes(b[i:j])
			if err != nil {
				s = []byte("\uFFFD")
			}
			out = append(out, s...)
		} else {
			for _, c := range b[i:j] {
				if c < 0x80 {
					out = append(out, c)
				} else {
					out = utf8.AppendRune(out, utf8.RuneError)
				}
			}
		}
		i = j
	}
	return string(out)
}

// Finish prints what is left in the line buffer (a printer prints it at the cut or
// on the next LF; a job without either leaves it there) and returns the document.
func (p *Interpreter) Finish() *Document {
	p.flush(false)
	d := p.doc
	p.doc = Document{}
	return &d
}
