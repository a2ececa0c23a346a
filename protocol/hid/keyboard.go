package hid

import (
	"bytes"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/ehc-agent/ehc-agent/protocol/framing"
)

// ReasonBadAltCode: a keyboard scan with an Alt + keypad run over 65535, which no code
// page has.
const ReasonBadAltCode = "bad_alt_code"

// BootReportLen is the length of a boot keyboard report: [modifiers][reserved][k1..k6].
const BootReportLen = 8

// KeyboardConfig configures a keyboard-wedge decoder.
type KeyboardConfig struct {
	KeyMap *KeyMap // nil means US
	// HexDump: the scanner types every byte as two hex digits, separated by spaces
	// (Honeywell's "hex dump" keyboard mode); the scan is the bytes they spell.
	HexDump bool
	AIM     bool          // strip a leading AIM identifier and report it
	Gap     time.Duration // no report for this long ends a scan; required
	MaxScan int           // 1..framing.MaxScan; 0 means framing.MaxScan
}

// Keyboard turns boot keyboard reports into scans. It is not safe for concurrent use.
//
// Text is UTF-8, except what Alt + keypad runs without a leading zero carry: their value
// is the byte itself (up to 255) or a double-byte code page character (up to 65535, high
// byte first: how a Chinese Windows types GBK, Alt+45217 being B0 A1), so GBK data
// arrives as GBK. A run with a leading zero is Windows-1252 (Alt+0233 is é) and arrives
// as UTF-8. Dead keys compose as Windows composes them (see doc.go).
type Keyboard struct {
	c    KeyboardConfig
	prev [6]byte // keys down in the last report: a key counts when it goes down
	caps bool
	dead rune // the accent of a dead key waiting for the next character, or 0

	altRun  bool // an Alt + keypad digit run is open
	altANSI bool // it began with 0: Windows-1252
	altVal  int

	s       scan
	pending bool
	bad     string // reason the scan in progress will be dropped, if any
	hexHi   int    // hex dump: the first digit of a byte, or -1
}

// NewKeyboard validates c and returns its decoder.
func NewKeyboard(c KeyboardConfig) (*Keyboard, error) {
	if c.KeyMap == nil {
		c.KeyMap = keyMapUS
	}
	var err error
	if c.MaxScan, err = checkCommon(c.Gap, c.MaxScan); err != nil {
		return nil, err
	}
	// Room for the AIM identifier and one more character than MaxScan: a scan that needs
	// it is too long, which only its end can tell.
	return &Keyboard{c: c, s: newScan(c.MaxScan + framing.AIMLen + utf8.UTFMax), hexHi: -1}, nil
}

// Timeout is the idle gap after which Expire must be called while Pending.
func (k *Keyboard) Timeout() time.Duration { return k.c.Gap }

// Pending reports whether a scan is in progress.
func (k *Keyboard) Pending() bool { return k.pending }

// Feed consumes one report and appends what it completes to out.
func (k *Keyboard) Feed(r []byte, out []framing.Output) []framing.Output {
	if len(r) < BootReportLen {
		return append(out, framing.Output{Kind: framing.KindDrop, Reason: ReasonBadReport, Dropped: len(r)})
	}
	mods := r[0]
	var keys [6]byte
	copy(keys[:], r[2:BootReportLen])
	if keys[0] == 0x01 {
		return out // ErrorRollOver: too many keys at once; the next report says what is down
	}
	alt := mods&modLAlt != 0 || !k.c.KeyMap.altGr && mods&modRAlt != 0
	if k.altRun && !alt {
		k.endAlt()
	}
	for _, key := range keys {
		if key < keyA || bytes.IndexByte(k.prev[:], key) >= 0 {
			continue
		}
		out = k.down(key, mods, alt, out)
	}
	k.prev = keys
	return out
}

func (k *Keyboard) down(key, mods byte, alt bool, out []framing.Output) []framing.Output {
	if alt {
		if d := keypadDigit(key); d >= 0 {
			if !k.altRun {
				k.flushDead() // Windows types a waiting accent before the Alt code
				k.altANSI = d == 0
			}
			k.altRun, k.pending = true, true
			k.altVal = min(k.altVal*10+d, 1<<16) // past 65535 it is bad however it goes on
		}
		return out // Alt + another key is a shortcut, not text
	}
	switch key {
	case keyEnter, keyKPEnter, keyTab:
		return k.end(out)
	case keyCapsLock:
		k.caps = !k.caps
		return out
	}
	var r rune
	if mods&(modLCtrl|modRCtrl) != 0 {
		// Ctrl + key types a control character: Ctrl+] is GS, the GS1 separator.
		c := keyMapUS.keys[key][0]
		switch {
		case 'a' <= c && c <= 'z':
			r = c - 'a' + 1
		case c == '[' || c == '\\' || c == ']':
			r = c & 0x1F
		default:
			return out
		}
		if r == '\r' || r == '\n' || r == '\t' {
			return k.end(out) // Ctrl+M, Ctrl+J, Ctrl+I: Enter and Tab by other keys
		}
		k.flushDead()
	} else {
		var dead bool
		r, dead = k.c.KeyMap.lookup(key, mods)
		if r == 0 {
			return out
		}
		if k.caps && unicode.IsLetter(r) {
			if unicode.IsUpper(r) {
				r = unicode.ToLower(r)
			} else {
				r = unicode.ToUpper(r)
			}
		}
		switch {
		case dead && k.dead == 0:
			k.dead, k.pending = r, true // it types nothing until the next key
			return out
		case dead:
			k.flushDead() // two dead keys: Windows types both accents
		case k.dead != 0:
			accent := k.dead
			k.dead = 0
			if c, ok := compose(accent, r); ok {
				r = c
			} else if r == ' ' {
				r = accent // dead key then space: the accent itself
			} else {
				k.emit(accent) // no composition: the accent, then the character
			}
		}
	}
	k.pending = true
	k.emit(r)
	return out
}

// emit adds one typed character to the scan.
func (k *Keyboard) emit(r rune) {
	if k.c.HexDump {
		k.hex(r)
	} else {
		k.s.add(utf8.AppendRune(nil, r)...)
	}
}

// flushDead types the accent of a dead key that nothing composed with.
func (k *Keyboard) flushDead() {
	if k.dead != 0 {
		r := k.dead
		k.dead = 0
		k.emit(r)
	}
}

func (k *Keyboard) hex(r rune) {
	if r == ' ' {
		if k.hexHi >= 0 {
			k.fail(ReasonBadHex)
		}
		return
	}
	n := -1
	if r < utf8.RuneSelf {
		n = unhex(byte(r))
	}
	switch {
	case n < 0:
		k.fail(ReasonBadHex)
	case k.hexHi < 0:
		k.hexHi = n
	default:
		k.s.add(byte(k.hexHi<<4 | n))
		k.hexHi = -1
	}
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

// endAlt closes an Alt + keypad run: Alt was released.
func (k *Keyboard) endAlt() {
	v, ansi := k.altVal, k.altANSI
	k.altRun, k.altVal, k.altANSI = false, 0, false
	switch {
	case k.c.HexDump:
		k.fail(ReasonBadHex)
	case v > 0xFFFF:
		k.fail(ReasonBadAltCode)
	case ansi && v <= 0xFF:
		r := charmap.Windows1252.DecodeByte(byte(v))
		if r == utf8.RuneError {
			r = rune(v) // 81 8D 8F 90 9D, which 1252 leaves out: Windows gives U+0081 and so on
		}
		k.s.add(utf8.AppendRune(nil, r)...)
	case v > 0xFF:
		k.s.add(byte(v>>8), byte(v))
	default:
		k.s.add(byte(v))
	}
}

func (k *Keyboard) fail(reason string) {
	if k.bad == "" {
		k.bad = reason
	}
}

// Expire ends the scan in progress: no report came for Timeout().
func (k *Keyboard) Expire(out []framing.Output) []framing.Output {
	if !k.pending {
		return out
	}
	if k.altRun {
		k.endAlt()
	}
	return k.end(out)
}

// Reset forgets the scan in progress and the keys down (the device went away), and
// reports a partial scan as a drop.
func (k *Keyboard) Reset(out []framing.Output) []framing.Output {
	if k.pending {
		out = k.drop(out, framing.ReasonDisconnected)
	}
	k.prev, k.caps, k.dead, k.altRun, k.altANSI, k.altVal = [6]byte{}, false, 0, false, false, 0
	return out
}

// end delivers the scan in progress (Enter, Tab or the gap). A lone Enter is no scan
// and no loss: nothing is reported.
func (k *Keyboard) end(out []framing.Output) []framing.Output {
	if !k.pending {
		return out
	}
	k.flushDead() // a dead key last in the scan: its accent
	if k.c.HexDump && k.hexHi >= 0 {
		k.fail(ReasonBadHex)
	}
	switch {
	case k.s.over > 0:
		return k.drop(out, framing.ReasonTooLong)
	case k.bad != "":
		return k.drop(out, k.bad)
	}
	data, aim := k.s.buf, ""
	if k.c.AIM && framing.IsAIM(data) {
		aim, data = string(data[:framing.AIMLen]), data[framing.AIMLen:]
	}
	switch {
	case len(data) == 0 && aim == "":
		k.clear()
		return out
	case len(data) == 0:
		return k.drop(out, framing.ReasonEmpty)
	case len(data) > k.c.MaxScan:
		return k.drop(out, framing.ReasonTooLong)
	}
	o := framing.Output{Kind: framing.KindScan, Data: bytes.Clone(data), AIM: aim}
	k.clear()
	return append(out, o)
}

func (k *Keyboard) drop(out []framing.Output, reason string) []framing.Output {
	n := k.s.size()
	k.clear()
	return append(out, framing.Output{Kind: framing.KindDrop, Reason: reason, Dropped: n})
}

func (k *Keyboard) clear() {
	k.s.reset()
	k.pending, k.bad, k.hexHi, k.dead = false, "", -1, 0
}
