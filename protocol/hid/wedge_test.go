package hid

import (
	"strconv"
	"testing"
)

// The key positions below are written out by hand from the layouts themselves (HID
// usage ids of the keyboard page; Windows' kbdus, kbduk, kbdgr and kbdfr tables, which
// name the same physical keys by PC scan code), never read from keymap.go, so that a
// wrong entry there fails here.

// stroke is one key press: the modifiers held and the key.
type stroke struct{ mods, key byte }

const (
	shift = modLShift
	altGr = modRAlt
)

// typed is how a scanner types one character: one or more strokes. alt marks an Alt +
// keypad code, whose Alt stays down between its digits and is released after them.
type typed struct {
	strokes []stroke
	alt     bool
}

func keys(s ...stroke) typed { return typed{strokes: s} }

// altCode is Alt held + the keypad digits of code, as Windows takes non-ASCII.
func altCode(code string) typed {
	kp := map[rune]byte{'0': 0x62, '1': 0x59, '2': 0x5A, '3': 0x5B, '4': 0x5C, '5': 0x5D, '6': 0x5E, '7': 0x5F, '8': 0x60, '9': 0x61}
	t := typed{alt: true}
	for _, d := range code {
		t.strokes = append(t.strokes, stroke{modLAlt, kp[d]})
	}
	return t
}

// wedgeLayouts: each layout's keys for the characters of issue #12. é is there in
// every way the layout offers it: its own key (fr), the dead acute then e (de), and
// the Alt code 0233 (Windows-1252) everywhere.
var wedgeLayouts = []struct {
	name   string
	chars  map[rune]typed
	eAcute []typed
}{
	{"us", map[rune]typed{
		'$': keys(stroke{shift, 0x21}), '"': keys(stroke{shift, 0x34}), '@': keys(stroke{shift, 0x1F}),
		'-': keys(stroke{0, 0x2D}), '/': keys(stroke{0, 0x38}), '&': keys(stroke{shift, 0x24}),
	}, []typed{altCode("0233")}},
	{"uk", map[rune]typed{
		'$': keys(stroke{shift, 0x21}), '"': keys(stroke{shift, 0x1F}), '@': keys(stroke{shift, 0x34}),
		'-': keys(stroke{0, 0x2D}), '/': keys(stroke{0, 0x38}), '&': keys(stroke{shift, 0x24}),
	}, []typed{altCode("0233")}},
	{"de", map[rune]typed{
		'$': keys(stroke{shift, 0x21}), '"': keys(stroke{shift, 0x1F}), '@': keys(stroke{altGr, 0x14}),
		'-': keys(stroke{0, 0x38}), '/': keys(stroke{shift, 0x24}), '&': keys(stroke{shift, 0x23}),
	}, []typed{keys(stroke{0, 0x2E}, stroke{0, 0x08}), altCode("0233")}},
	{"fr", map[rune]typed{
		'$': keys(stroke{0, 0x30}), '"': keys(stroke{0, 0x20}), '@': keys(stroke{altGr, 0x27}),
		'-': keys(stroke{0, 0x23}), '/': keys(stroke{shift, 0x37}), '&': keys(stroke{0, 0x1E}),
	}, []typed{keys(stroke{0, 0x1F}), altCode("0233")}},
}

// Two ways scanners send the reports of a run of characters.
var wedgeStyles = []struct {
	name string
	send func([]typed) [][]byte
}{
	{"release", sendReleasing},
	{"modifier-held", sendModifierHeld},
}

// sendReleasing: each key down (its modifiers in the same report), then an all-zero
// release; Alt stays down through the digits of an Alt code.
func sendReleasing(ts []typed) [][]byte {
	var rs [][]byte
	for _, t := range ts {
		for _, s := range t.strokes {
			rs = append(rs, []byte{s.mods, 0, s.key, 0, 0, 0, 0, 0})
			if t.alt {
				rs = append(rs, []byte{s.mods, 0, 0, 0, 0, 0, 0, 0})
			} else {
				rs = append(rs, make([]byte, 8))
			}
		}
		if t.alt {
			rs = append(rs, make([]byte, 8))
		}
	}
	return rs
}

// sendModifierHeld: like a keyboard, a modifier goes down in a report of its own and
// stays down while the keys that need it are pressed, each released with a
// modifier-only report; so the same shifted key pressed twice has only [Shift] between.
func sendModifierHeld(ts []typed) [][]byte {
	var rs [][]byte
	var cur byte
	for _, t := range ts {
		for _, s := range t.strokes {
			if s.mods != cur {
				cur = s.mods
				rs = append(rs, []byte{cur, 0, 0, 0, 0, 0, 0, 0})
			}
			rs = append(rs, []byte{cur, 0, s.key, 0, 0, 0, 0, 0}, []byte{cur, 0, 0, 0, 0, 0, 0, 0})
		}
		if t.alt { // Alt released: the code is typed
			cur = 0
			rs = append(rs, make([]byte, 8))
		}
	}
	return append(rs, make([]byte, 8))
}

var enterReports = [][]byte{{0, 0, keyEnter, 0, 0, 0, 0, 0}, make([]byte, 8)}

// Issue #12: `$ " @ - / & é` and each doubled, through every layout, both ways of
// sending, and é in every way the layout has.
func TestWedgeCharactersEveryLayout(t *testing.T) {
	const once = `$"@-/&é`
	for _, l := range wedgeLayouts {
		m, err := ParseKeyMap(l.name)
		if err != nil {
			t.Fatal(err)
		}
		for ei, e := range l.eAcute {
			var single, doubled []typed
			for _, c := range once {
				tc, ok := l.chars[c]
				if c == 'é' {
					tc, ok = e, true
				}
				if !ok {
					t.Fatalf("%s: no keys for %q", l.name, c)
				}
				single = append(single, tc)
				doubled = append(doubled, tc, tc)
			}
			for _, style := range wedgeStyles {
				for _, run := range []struct {
					ts   []typed
					want string
				}{
					{single, once},
					{doubled, `$$""@@--//&&éé`},
				} {
					name := l.name + "/é" + strconv.Itoa(ei) + "/" + style.name + "/" + run.want
					t.Run(name, func(t *testing.T) {
						k := mustKeyboard(t, KeyboardConfig{KeyMap: m})
						rs := append(style.send(run.ts), enterReports...)
						wantOutputs(t, feedAll(k, rs), "scan  "+strconv.Quote(run.want))
						// The same without Enter: the gap ends it.
						wantOutputs(t, k.Expire(feedAll(k, style.send(run.ts))), "scan  "+strconv.Quote(run.want))
					})
				}
			}
		}
	}
}

// Dead keys compose as Windows composes them (kbdgr, kbdfr): a letter the accent goes
// on becomes one character; space gives the accent itself; anything else gives the
// accent then that character; a second dead key gives both accents; the end of the
// scan gives the accent. Layouts without dead keys type the accent characters as is.
func TestWedgeDeadKeys(t *testing.T) {
	var (
		deAcute = stroke{0, 0x2E}
		deGrave = stroke{shift, 0x2E}
		deCirc  = stroke{0, 0x35}
		frCirc  = stroke{0, 0x2F}
		frDiaer = stroke{shift, 0x2F}
		space   = stroke{0, 0x2C}
	)
	for _, tc := range []struct {
		layout  string
		strokes []stroke
		want    string
	}{
		{"de", []stroke{deAcute, {0, 0x08}}, "é"},
		{"de", []stroke{deAcute, {shift, 0x08}}, "É"},
		{"de", []stroke{deAcute, {0, 0x08}, deAcute, {0, 0x08}}, "éé"},
		{"de", []stroke{deAcute, {0, 0x1D}}, "ý"}, // y is 0x1D on QWERTZ
		{"de", []stroke{deAcute, {0, 0x04}, deAcute, {0, 0x0C}, deAcute, {0, 0x12}, deAcute, {0, 0x18}}, "áíóú"},
		{"de", []stroke{deGrave, {0, 0x04}, deGrave, {0, 0x08}, deGrave, {shift, 0x18}}, "àèÙ"},
		{"de", []stroke{deCirc, {0, 0x12}, deCirc, {0, 0x0C}, deCirc, {shift, 0x04}}, "ôîÂ"},
		{"de", []stroke{deCirc, space}, "^"},
		{"de", []stroke{deCirc, space, deCirc, space}, "^^"},
		{"de", []stroke{deAcute, space}, "´"},
		{"de", []stroke{deGrave, space}, "`"},
		{"de", []stroke{deAcute, {0, 0x1B}}, "´x"}, // x does not take an acute
		{"de", []stroke{deCirc, {0, 0x1E}}, "^1"},  // nor a digit
		{"de", []stroke{deAcute, {0, 0x11}}, "´n"}, // no ń in kbdgr
		{"de", []stroke{deCirc, deCirc}, "^^"},     // two dead keys: both
		{"de", []stroke{deAcute, deCirc, {0, 0x08}}, "´^e"},
		{"de", []stroke{{0, 0x04}, deAcute}, "a´"},       // last in the scan
		{"de", []stroke{{altGr, 0x30}, {0, 0x11}}, "~n"}, // AltGr + is a plain ~
		{"fr", []stroke{frCirc, {0, 0x08}}, "ê"},
		{"fr", []stroke{frCirc, {0, 0x14}}, "â"}, // a is 0x14 on AZERTY
		{"fr", []stroke{frCirc, {0, 0x08}, frCirc, {0, 0x08}}, "êê"},
		{"fr", []stroke{frDiaer, {0, 0x0C}, frDiaer, {0, 0x1C}, frDiaer, {shift, 0x08}}, "ïÿË"},
		{"fr", []stroke{frCirc, space}, "^"},
		{"fr", []stroke{frDiaer, space}, "¨"},
		{"fr", []stroke{frCirc, {0, 0x04}}, "^q"}, // q is 0x04 on AZERTY
		{"fr", []stroke{frDiaer, {0, 0x1F}}, "¨é"},
		{"fr", []stroke{{altGr, 0x1F}, {0, 0x11}}, "~n"}, // AltGr é is a plain ~
		{"fr", []stroke{{altGr, 0x24}, {0, 0x08}}, "`e"}, // AltGr è is a plain `
		{"fr", []stroke{{0, 0x1F}, frCirc}, "é^"},
		{"us", []stroke{{shift, 0x23}, {0, 0x08}, {0, 0x35}, {0, 0x08}, {shift, 0x35}, {0, 0x11}}, "^e`e~n"},
		{"uk", []stroke{{0, 0x35}, {0, 0x08}, {shift, 0x32}, {0, 0x11}}, "`e~n"},
	} {
		t.Run(tc.layout+"/"+tc.want, func(t *testing.T) {
			m, err := ParseKeyMap(tc.layout)
			if err != nil {
				t.Fatal(err)
			}
			ts := []typed{keys(tc.strokes...)}
			for _, style := range wedgeStyles {
				k := mustKeyboard(t, KeyboardConfig{KeyMap: m})
				wantOutputs(t, feedAll(k, append(style.send(ts), enterReports...)), "scan  "+strconv.Quote(tc.want))
				wantOutputs(t, k.Expire(feedAll(k, style.send(ts))), "scan  "+strconv.Quote(tc.want))
			}
		})
	}

	// Caps Lock turns the letter, and so what it composes to.
	m, _ := ParseKeyMap("de")
	k := mustKeyboard(t, KeyboardConfig{KeyMap: m})
	rs := sendReleasing([]typed{keys(stroke{0, keyCapsLock}, deAcute, stroke{0, 0x08}, deCirc, stroke{shift, 0x08})})
	wantOutputs(t, feedAll(k, append(rs, enterReports...)), "scan  "+strconv.Quote("Éê"))

	// A waiting accent comes out before a control character, an Alt code, and Enter.
	rs = sendReleasing([]typed{keys(deAcute, stroke{modLCtrl, 0x30}, deCirc), altCode("0233"), keys(deAcute)})
	wantOutputs(t, feedAll(k, append(rs, enterReports...)), "scan  "+strconv.Quote("´\x1d^é´"))

	// A lone dead key is a scan of its accent; a dead key with the device gone is lost
	// with the scan, and the next scan starts clean.
	wantOutputs(t, k.Expire(feedAll(k, sendReleasing([]typed{keys(deCirc)}))), "scan  "+strconv.Quote("^"))
	wantOutputs(t, k.Reset(feedAll(k, sendReleasing([]typed{keys(deCirc)}))), "drop disconnected 0")
	wantOutputs(t, feedAll(k, append(sendReleasing([]typed{keys(stroke{0, 0x08})}), enterReports...)), `scan  "e"`)

	// In hex-dump mode an accent is no hex digit.
	k = mustKeyboard(t, KeyboardConfig{KeyMap: m, HexDump: true})
	rs = sendReleasing([]typed{keys(stroke{0, 0x1E}, deCirc, stroke{0, 0x1F})})
	wantOutputs(t, feedAll(k, append(rs, enterReports...)), "drop bad_hex 1") // 1 ^ 2: the bytes 12
}

// hexLayouts: each layout's keys for Honeywell's hex dump (upper-case hex digits and
// space), by hand. On AZERTY the digits are shifted and A is 0x14.
var hexLayouts = []struct {
	name string
	keys map[rune]stroke
}{
	{"us", qwertyHex()},
	{"uk", qwertyHex()},
	{"de", qwertyHex()}, // QWERTZ moves y and z only
	{"fr", map[rune]stroke{
		'1': {shift, 0x1E}, '2': {shift, 0x1F}, '3': {shift, 0x20}, '4': {shift, 0x21}, '5': {shift, 0x22},
		'6': {shift, 0x23}, '7': {shift, 0x24}, '8': {shift, 0x25}, '9': {shift, 0x26}, '0': {shift, 0x27},
		'A': {shift, 0x14}, 'B': {shift, 0x05}, 'C': {shift, 0x06}, 'D': {shift, 0x07}, 'E': {shift, 0x08},
		'F': {shift, 0x09}, ' ': {0, 0x2C},
	}},
}

func qwertyHex() map[rune]stroke {
	return map[rune]stroke{
		'1': {0, 0x1E}, '2': {0, 0x1F}, '3': {0, 0x20}, '4': {0, 0x21}, '5': {0, 0x22},
		'6': {0, 0x23}, '7': {0, 0x24}, '8': {0, 0x25}, '9': {0, 0x26}, '0': {0, 0x27},
		'A': {shift, 0x04}, 'B': {shift, 0x05}, 'C': {shift, 0x06}, 'D': {shift, 0x07}, 'E': {shift, 0x08},
		'F': {shift, 0x09}, ' ': {0, 0x2C},
	}
}

// Issue #12: hex-dump mode carries the same characters as their UTF-8 bytes, single
// and doubled (so "22", "44" and "A9 C3" press one key twice), through every layout and
// both ways of sending.
func TestWedgeHexDumpEveryLayout(t *testing.T) {
	for _, l := range hexLayouts {
		m, err := ParseKeyMap(l.name)
		if err != nil {
			t.Fatal(err)
		}
		for _, run := range []struct{ dump, want string }{
			{"24 22 40 2D 2F 26 C3 A9", `$"@-/&é`},
			{"24 24 22 22 40 40 2D 2D 2F 2F 26 26 C3 A9 C3 A9", `$$""@@--//&&éé`},
			{"B0 A1 00 FF 7F 0D 0A 09", "\xb0\xa1\x00\xff\x7f\r\n\t"}, // GBK and control bytes: binary as is
		} {
			var ts []typed
			for _, c := range run.dump {
				s, ok := l.keys[c]
				if !ok {
					t.Fatalf("%s: no key for %q", l.name, c)
				}
				ts = append(ts, keys(s))
			}
			for _, style := range wedgeStyles {
				t.Run(l.name+"/"+style.name+"/"+run.dump, func(t *testing.T) {
					k := mustKeyboard(t, KeyboardConfig{KeyMap: m, HexDump: true})
					wantOutputs(t, feedAll(k, append(style.send(ts), enterReports...)), "scan  "+strconv.Quote(run.want))
					// A digit lost in the middle (the second 2 of "22") is a bad dump, not a
					// shifted byte.
					lost := append(append([]typed{}, ts[:1]...), ts[2:]...)
					out := feedAll(k, append(style.send(lost), enterReports...))
					if len(out) != 1 || out[0].Reason != ReasonBadHex {
						t.Fatalf("a digit lost: got %q, want one bad_hex drop", describe(out))
					}
				})
			}
		}
	}
}
