package hid

import (
	"strconv"
	"strings"
	"testing"
)

// SCANNERS.md, USB keyboard wedge: the usage ids of every key the spec lists, each
// typed as a key-down report and an all-zero release.
func TestKeyboardUsages(t *testing.T) {
	table := []struct {
		key  byte
		char string
	}{
		{0x04, "a"}, {0x1D, "z"}, {0x1E, "1"}, {0x26, "9"}, {0x27, "0"}, {0x2C, " "}, {0x2D, "-"},
		{0x2E, "="}, {0x2F, "["}, {0x30, "]"}, {0x31, `\`}, {0x33, ";"}, {0x34, "'"}, {0x35, "`"},
		{0x36, ","}, {0x37, "."}, {0x38, "/"}, {0x59, "1"}, {0x61, "9"}, {0x62, "0"},
	}
	k := mustKeyboard(t, KeyboardConfig{})
	var rs [][]byte
	want := ""
	for _, e := range table {
		rs = append(rs, []byte{0, 0, e.key, 0, 0, 0, 0, 0}, make([]byte, 8))
		want += e.char
	}
	rs = append(rs, []byte{0, 0, 0x28, 0, 0, 0, 0, 0}, make([]byte, 8)) // Enter 0x28
	wantOutputs(t, feedAll(k, rs), `scan  "`+strings.ReplaceAll(want, `\`, `\\`)+`"`)
	// Tab 0x2B ends a scan too.
	rs = [][]byte{{0, 0, 0x17, 0, 0, 0, 0, 0}, make([]byte, 8), {0, 0, 0x2B, 0, 0, 0, 0, 0}}
	wantOutputs(t, feedAll(k, rs), `scan  "t"`)
}

// Modifier bits LCtrl, LShift, LAlt, LGUI, RCtrl, RShift, RAlt, RGUI.
func TestKeyboardShiftAndCaps(t *testing.T) {
	k := mustKeyboard(t, KeyboardConfig{AIM: true})
	out := feedAll(k, typeUS(t, "]Q1HC1:AB-c/D+!", true))
	wantOutputs(t, out, `scan ]Q1 "HC1:AB-c/D+!"`)
	// Right Shift counts as Shift; Caps Lock inverts letters only.
	rs := [][]byte{
		{modRShift, 0, 0x04, 0, 0, 0, 0, 0}, make([]byte, 8), // A
		{0, 0, keyCapsLock, 0, 0, 0, 0, 0}, make([]byte, 8),
		{0, 0, 0x05, 0, 0, 0, 0, 0}, make([]byte, 8), // B (caps)
		{modLShift, 0, 0x06, 0, 0, 0, 0, 0}, make([]byte, 8), // c (caps + shift)
		{0, 0, 0x1E, 0, 0, 0, 0, 0}, make([]byte, 8), // 1, not !
		{0, 0, keyEnter, 0, 0, 0, 0, 0},
	}
	wantOutputs(t, feedAll(k, rs), `scan  "ABc1"`)
}

// A key counts when it goes down: a repeated report (idle rate), rollover and a second
// key pressed before the first is released type nothing twice.
func TestKeyboardTransitions(t *testing.T) {
	k := mustKeyboard(t, KeyboardConfig{})
	rs := [][]byte{
		{0, 0, 0x04, 0, 0, 0, 0, 0},
		{0, 0, 0x04, 0, 0, 0, 0, 0},    // repeat: still a
		{0, 0, 0x04, 0x05, 0, 0, 0, 0}, // b goes down while a is held
		{0, 0, 1, 1, 1, 1, 1, 1},       // ErrorRollOver: ignored
		{0, 0, 0x05, 0, 0, 0, 0, 0},
		make([]byte, 8),
		{0, 0, 0x04, 0, 0, 0, 0, 0}, make([]byte, 8), // a again, after release
		{modLShift, 0, 0, 0, 0, 0, 0, 0}, // Shift alone types nothing
		{0, 0, keyKPEnter, 0, 0, 0, 0, 0},
	}
	wantOutputs(t, feedAll(k, rs), `scan  "aba"`)
}

// Non-ASCII arrives as Alt held + keypad digits; the run is decoded when Alt is released.
// With a leading zero it is Windows-1252, delivered as UTF-8; without, a value up to 255
// is the byte itself and one over 255 a double-byte (GBK) character, high byte first.
func TestKeyboardAltCodes(t *testing.T) {
	alt := func(digits string) [][]byte {
		var rs [][]byte
		rs = append(rs, []byte{modLAlt, 0, 0, 0, 0, 0, 0, 0})
		for _, d := range digits {
			key := byte(keyKP0)
			if d != '0' {
				key = byte(keyKP1 + d - '1')
			}
			rs = append(rs, []byte{modLAlt, 0, key, 0, 0, 0, 0, 0}, []byte{modLAlt, 0, 0, 0, 0, 0, 0, 0})
		}
		return append(rs, make([]byte, 8))
	}
	k := mustKeyboard(t, KeyboardConfig{})
	var rs [][]byte
	rs = append(rs, typeUS(t, "ID", false)...)
	rs = append(rs, alt("45217")...) // 啊 in GBK: B0 A1
	rs = append(rs, alt("0233")...)  // é in Windows-1252: UTF-8 C3 A9
	rs = append(rs, alt("65")...)    // A
	rs = append(rs, alt("233")...)   // no leading zero: the byte E9 (a GBK lead byte, say)
	rs = append(rs, alt("0128")...)  // € in Windows-1252: UTF-8 E2 82 AC
	rs = append(rs, alt("0150")...)  // – (en dash)
	rs = append(rs, alt("0129")...)  // a hole in Windows-1252: U+0081, as Windows types it
	rs = append(rs, alt("065")...)   // A either way
	rs = append(rs, []byte{0, 0, keyEnter, 0, 0, 0, 0, 0})
	wantOutputs(t, feedAll(k, rs), "scan  "+strconv.Quote("ID\xb0\xa1\xc3\xa9A\xe9\xe2\x82\xac\xe2\x80\x93\xc2\x81A"))

	rs = append(alt("65536"), []byte{0, 0, keyEnter, 0, 0, 0, 0, 0})
	wantOutputs(t, feedAll(k, rs), "drop bad_alt_code 0")
	// Alt + a letter is a shortcut, not text.
	rs = [][]byte{{modLAlt, 0, 0x04, 0, 0, 0, 0, 0}, make([]byte, 8)}
	rs = append(rs, typeUS(t, "x", true)...)
	wantOutputs(t, feedAll(k, rs), `scan  "x"`)
	// The gap closes a run still open.
	out := feedAll(k, alt("66")[:5])
	wantOutputs(t, k.Expire(out), `scan  "B"`)
}

// Ctrl + key types control characters: Ctrl+] is GS, the GS1 separator.
func TestKeyboardControl(t *testing.T) {
	k := mustKeyboard(t, KeyboardConfig{})
	rs := typeUS(t, "01", false)
	rs = append(rs, []byte{modLCtrl, 0, 0x30, 0, 0, 0, 0, 0}, make([]byte, 8))
	rs = append(rs, []byte{modRCtrl, 0, 0x1E, 0, 0, 0, 0, 0}, make([]byte, 8)) // Ctrl+1: nothing
	rs = append(rs, typeUS(t, "21", false)...)
	rs = append(rs, []byte{modLCtrl, 0, 0x10, 0, 0, 0, 0, 0}) // Ctrl+M: CR ends the scan
	wantOutputs(t, feedAll(k, rs), `scan  "01\x1d21"`)
}

// Honeywell's hex dump: every byte typed as two hex digits, space-separated.
func TestKeyboardHexDump(t *testing.T) {
	k := mustKeyboard(t, KeyboardConfig{HexDump: true})
	wantOutputs(t, feedAll(k, typeUS(t, "B0 A1 48 43 31 3a", true)), `scan  "\xb0\xa1HC1:"`)
	wantOutputs(t, feedAll(k, typeUS(t, "B0 A", true)), "drop bad_hex 1")
	wantOutputs(t, feedAll(k, typeUS(t, "B0 XY", true)), "drop bad_hex 1")
	wantOutputs(t, feedAll(k, typeUS(t, "4", false)))
	wantOutputs(t, k.Expire(nil), "drop bad_hex 0")
}

func TestKeyboardLayouts(t *testing.T) {
	for _, tc := range []struct {
		layout string
		rs     [][]byte
		want   string
	}{
		{"de", [][]byte{{0, 0, 0x1C, 0, 0, 0, 0, 0}, {0, 0, 0x1D, 0, 0, 0, 0, 0}, {modLShift, 0, 0x1F, 0, 0, 0, 0, 0}, {modRAlt, 0, 0x14, 0, 0, 0, 0, 0}, {0, 0, 0x34, 0, 0, 0, 0, 0}}, `zy"@ä`},
		{"fr", [][]byte{{0, 0, 0x04, 0, 0, 0, 0, 0}, {0, 0, 0x1F, 0, 0, 0, 0, 0}, {modLShift, 0, 0x1F, 0, 0, 0, 0, 0}, {modRAlt, 0, 0x27, 0, 0, 0, 0, 0}, {0, 0, 0x33, 0, 0, 0, 0, 0}}, "qé2@m"},
		{"uk", [][]byte{{modLShift, 0, 0x1F, 0, 0, 0, 0, 0}, {modLShift, 0, 0x34, 0, 0, 0, 0, 0}, {modLShift, 0, 0x20, 0, 0, 0, 0, 0}}, `"@£`},
		{"us", [][]byte{{modLShift, 0, 0x1F, 0, 0, 0, 0, 0}, {modRAlt, 0, 0x04, 0, 0, 0, 0, 0}, {0, 0, 0x04, 0, 0, 0, 0, 0}}, "@a"},
	} {
		m, err := ParseKeyMap(tc.layout)
		if err != nil || m.Name() != tc.layout {
			t.Fatal(tc.layout, err)
		}
		k := mustKeyboard(t, KeyboardConfig{KeyMap: m})
		var rs [][]byte
		for _, r := range tc.rs {
			rs = append(rs, r, make([]byte, 8))
		}
		rs = append(rs, []byte{0, 0, keyEnter, 0, 0, 0, 0, 0})
		wantOutputs(t, feedAll(k, rs), "scan  "+strconv.Quote(tc.want))
	}
	if _, err := ParseKeyMap("dvorak"); err == nil {
		t.Fatal("unknown layout accepted")
	}
}

func TestKeyboardBoundsAndReset(t *testing.T) {
	k := mustKeyboard(t, KeyboardConfig{MaxScan: 4, AIM: true})
	out := feedAll(k, typeUS(t, "]Q1ABCD", true))
	out = feedAll(k, typeUS(t, "ABCDE", true))
	wantOutputs(t, out, "drop too_long 5")
	wantOutputs(t, feedAll(k, typeUS(t, "]Q1", true)), "drop empty 3")
	wantOutputs(t, feedAll(k, typeUS(t, "", true))) // a lone Enter: nothing
	wantOutputs(t, k.Feed([]byte{0, 0, 4}, nil), "drop bad_report 3")
	out = feedAll(k, typeUS(t, "AB", false))
	wantOutputs(t, k.Reset(out), "drop disconnected 2")
	wantOutputs(t, k.Expire(nil))
	wantOutputs(t, feedAll(k, typeUS(t, "]Q1ABCD", true)), `scan ]Q1 "ABCD"`)
}
