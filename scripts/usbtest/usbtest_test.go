package usbtest

import (
	"bytes"
	"strconv"
	"testing"
)

// readNewc parses a newc archive back: name → (mode, data).
func readNewc(t *testing.T, b []byte) map[string]struct {
	mode uint64
	data string
} {
	t.Helper()
	out := map[string]struct {
		mode uint64
		data string
	}{}
	field := func(h []byte, i int) uint64 {
		v, err := strconv.ParseUint(string(h[6+8*i:6+8*i+8]), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for off := 0; ; {
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic at %d", off)
		}
		size, namesize := int(field(h, 6)), int(field(h, 11))
		name := string(b[off+110 : off+110+namesize-1])
		off = (off + 110 + namesize + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out[name] = struct {
			mode uint64
			data string
		}{field(h, 1), string(b[off : off+size])}
		off = (off + size + 3) &^ 3
	}
}

func TestInitramfs(t *testing.T) {
	var buf bytes.Buffer
	a := NewInitramfs(&buf)
	a.File("/bin/guest.test", 0o755, []byte("hello"))
	a.File("lib/x86_64-linux-gnu/libusb-1.0.so.0", 0o644, []byte("libusb!"))
	a.CharDev("dev/console", 0o600, 5, 1)
	a.Symlink("lib64", "lib")
	a.Dir("bin")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	files := readNewc(t, buf.Bytes())
	for name, want := range map[string]struct {
		mode uint64
		data string
	}{
		"bin":                                  {0o040755, ""},
		"bin/guest.test":                       {0o100755, "hello"},
		"lib":                                  {0o040755, ""},
		"lib/x86_64-linux-gnu":                 {0o040755, ""},
		"lib/x86_64-linux-gnu/libusb-1.0.so.0": {0o100644, "libusb!"},
		"dev/console":                          {0o020600, ""},
		"lib64":                                {0o120777, "lib"},
	} {
		if got, ok := files[name]; !ok || got != want {
			t.Errorf("%s: %o %q, want %o %q", name, got.mode, got.data, want.mode, want.data)
		}
	}
	if len(files) != 8 { // the above and dev
		t.Errorf("%d entries: %v", len(files), files)
	}
}

func TestQcode(t *testing.T) {
	for c, want := range map[byte]struct {
		key   string
		shift bool
	}{
		'a': {"a", false}, 'Q': {"q", true}, '7': {"7", false}, '!': {"1", true}, ']': {"bracket_right", false},
		':': {"semicolon", true}, '_': {"minus", true}, '/': {"slash", false}, '\n': {"ret", false}, ' ': {"spc", false},
	} {
		key, shift, ok := qcode(c)
		if !ok || key != want.key || shift != want.shift {
			t.Errorf("%q: %s %v %v", c, key, shift, ok)
		}
	}
	if _, _, ok := qcode(0xB0); ok {
		t.Error("a non-ASCII byte has no US key")
	}
}
