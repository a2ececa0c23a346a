package hid

import (
	"errors"
	"strconv"
	"strings"
)

// Boot keyboard usage ids (HID Usage Tables, keyboard page) this package acts on.
const (
	keyA        = 0x04
	keyZ        = 0x1D
	key1        = 0x1E
	key0        = 0x27
	keyEnter    = 0x28
	keyTab      = 0x2B
	keyCapsLock = 0x39
	keyKPEnter  = 0x58
	keyKP1      = 0x59
	keyKP0      = 0x62
)

// Modifier bits of byte 0 of a boot keyboard report.
const (
	modLCtrl  = 0x01
	modLShift = 0x02
	modLAlt   = 0x04
	modRCtrl  = 0x10
	modRShift = 0x20
	modRAlt   = 0x40
)

// KeyMap is a keyboard layout: the character each key types, plain, with Shift, and
// with AltGr, and which of those are dead keys. Layouts with AltGr treat right Alt as
// AltGr, so only left Alt starts an Alt + keypad run on them.
type KeyMap struct {
	name  string
	altGr bool
	keys  [256][3]rune // [usage][plain, shift, altgr]; 0: the key types nothing
	dead  [256]uint8   // bit 1<<level set: that level of the key is a dead key
}

// Levels of a key: the index into KeyMap.keys[usage].
const (
	levelPlain = iota
	levelShift
	levelAltGr
)

// deadKey is one level of one key that types nothing itself but accents the next
// character (Windows' DEADKEY tables; the rune in keys is the accent it types alone).
type deadKey struct {
	usage byte
	level int
}

// Name is the layout's name as ParseKeyMap takes it.
func (m *KeyMap) Name() string { return m.name }

// KeyMapNames lists the layouts ParseKeyMap knows.
func KeyMapNames() []string { return []string{"us", "uk", "de", "fr"} }

// ParseKeyMap returns a layout by name: "us" (also ""), "uk", "de", "fr".
func ParseKeyMap(name string) (*KeyMap, error) {
	switch n := strings.ToLower(strings.TrimSpace(name)); n {
	case "", "us":
		return keyMapUS, nil
	case "uk":
		return keyMapUK, nil
	case "de":
		return keyMapDE, nil
	case "fr":
		return keyMapFR, nil
	default:
		return nil, errors.New("hid: keyboard layout " + strconv.Quote(name) + " is not one of " + strings.Join(KeyMapNames(), ", "))
	}
}

// Built once at start and never changed after: shared by every decoder.
var (
	keyMapUS = newKeyMap("us", false, nil, nil)
	keyMapUK = newKeyMap("uk", true, map[byte][3]rune{
		0x1F: {'2', '"'}, 0x20: {'3', '£'}, 0x21: {'4', '$', '€'},
		0x32: {'#', '~'}, 0x34: {'\'', '@'}, 0x35: {'`', '¬', '¦'}, 0x64: {'\\', '|'},
	}, nil)
	keyMapDE = newKeyMap("de", true, map[byte][3]rune{
		0x1C: {'z', 'Z'}, 0x1D: {'y', 'Y'}, 0x14: {'q', 'Q', '@'}, 0x08: {'e', 'E', '€'}, 0x10: {'m', 'M', 'µ'},
		0x1E: {'1', '!'}, 0x1F: {'2', '"', '²'}, 0x20: {'3', '§', '³'}, 0x21: {'4', '$'}, 0x22: {'5', '%'},
		0x23: {'6', '&'}, 0x24: {'7', '/', '{'}, 0x25: {'8', '(', '['}, 0x26: {'9', ')', ']'}, 0x27: {'0', '=', '}'},
		0x2D: {'ß', '?', '\\'}, 0x2E: {'´', '`'}, 0x2F: {'ü', 'Ü'}, 0x30: {'+', '*', '~'}, 0x31: {'#', '\''},
		0x32: {'#', '\''}, 0x33: {'ö', 'Ö'}, 0x34: {'ä', 'Ä'}, 0x35: {'^', '°'}, 0x36: {',', ';'},
		0x37: {'.', ':'}, 0x38: {'-', '_'}, 0x64: {'<', '>', '|'},
	}, []deadKey{{0x2E, levelPlain}, {0x2E, levelShift}, {0x35, levelPlain}}) // ´ ` ^; AltGr ~ is not dead
	keyMapFR = newKeyMap("fr", true, map[byte][3]rune{
		0x04: {'q', 'Q'}, 0x14: {'a', 'A'}, 0x1A: {'z', 'Z'}, 0x1D: {'w', 'W'}, 0x33: {'m', 'M'},
		0x10: {',', '?'}, 0x08: {'e', 'E', '€'},
		0x1E: {'&', '1'}, 0x1F: {'é', '2', '~'}, 0x20: {'"', '3', '#'}, 0x21: {'\'', '4', '{'}, 0x22: {'(', '5', '['},
		0x23: {'-', '6', '|'}, 0x24: {'è', '7', '`'}, 0x25: {'_', '8', '\\'}, 0x26: {'ç', '9', '^'}, 0x27: {'à', '0', '@'},
		0x2D: {')', '°', ']'}, 0x2E: {'=', '+', '}'}, 0x2F: {'^', '¨'}, 0x30: {'$', '£', '¤'}, 0x31: {'*', 'µ'},
		0x32: {'*', 'µ'}, 0x34: {'ù', '%'}, 0x35: {'²'}, 0x36: {';', '.'}, 0x37: {':', '/'}, 0x38: {'!', '§'},
		0x64: {'<', '>'},
	}, []deadKey{{0x2F, levelPlain}, {0x2F, levelShift}}) // ^ ¨; AltGr ~ and ` are not dead
)

func newKeyMap(name string, altGr bool, over map[byte][3]rune, dead []deadKey) *KeyMap {
	m := &KeyMap{name: name, altGr: altGr}
	for k := byte(keyA); k <= keyZ; k++ {
		m.keys[k] = [3]rune{rune('a' + k - keyA), rune('A' + k - keyA)}
	}
	shifted := "!@#$%^&*()"
	for k := byte(key1); k <= key0; k++ {
		d := rune('1' + k - key1)
		if k == key0 {
			d = '0'
		}
		m.keys[k] = [3]rune{d, rune(shifted[k-key1])}
	}
	for k, pair := range map[byte]string{
		0x2C: "  ", 0x2D: "-_", 0x2E: "=+", 0x2F: "[{", 0x30: "]}", 0x31: `\|`, 0x32: `\|`,
		0x33: ";:", 0x34: `'"`, 0x35: "`~", 0x36: ",<", 0x37: ".>", 0x38: "/?", 0x64: `\|`,
		// Keypad, with Num Lock on: scanners type digits there.
		0x54: "//", 0x55: "**", 0x56: "--", 0x57: "++", 0x63: "..",
	} {
		m.keys[k] = [3]rune{rune(pair[0]), rune(pair[1])}
	}
	for k := byte(keyKP1); k <= keyKP0; k++ {
		d := rune('1' + k - keyKP1)
		if k == keyKP0 {
			d = '0'
		}
		m.keys[k] = [3]rune{d, d}
	}
	for k, v := range over {
		m.keys[k] = v
	}
	for _, d := range dead {
		m.dead[d.usage] |= 1 << d.level
	}
	return m
}

// lookup is what key types with the given modifiers (0 if nothing), and whether it is
// a dead key there.
func (m *KeyMap) lookup(key, mods byte) (r rune, dead bool) {
	level := levelPlain
	switch {
	case m.altGr && mods&modRAlt != 0:
		level = levelAltGr
	case mods&(modLShift|modRShift) != 0:
		level = levelShift
	}
	return m.keys[key][level], m.dead[key]&(1<<level) != 0
}

// compositions are the dead keys' tables (Windows' kbdgr and kbdfr DEADKEY sections): an
// accent, the letters it combines with, and what each becomes, rune for rune.
var compositions = []struct {
	accent   rune
	from, to []rune
}{
	{'´', []rune("aeiouyAEIOUY"), []rune("áéíóúýÁÉÍÓÚÝ")},
	{'`', []rune("aeiouAEIOU"), []rune("àèìòùÀÈÌÒÙ")},
	{'^', []rune("aeiouAEIOU"), []rune("âêîôûÂÊÎÔÛ")},
	{'¨', []rune("aeiouyAEIOU"), []rune("äëïöüÿÄËÏÖÜ")},
}

// compose is what accent followed by r types as one character, if anything.
func compose(accent, r rune) (rune, bool) {
	for _, c := range compositions {
		if c.accent != accent {
			continue
		}
		for i, f := range c.from {
			if f == r {
				return c.to[i], true
			}
		}
	}
	return 0, false
}

// keypadDigit is the digit of a keypad key, or -1.
func keypadDigit(key byte) int {
	switch {
	case key == keyKP0:
		return 0
	case key >= keyKP1 && key < keyKP0:
		return int(key-keyKP1) + 1
	}
	return -1
}
