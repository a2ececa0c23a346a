package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPCSCValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pin")
	os.WriteFile(good, []byte("123456\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("123456"), 0o644)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("12345x"), 0o600)
	for _, tc := range []struct {
		name string
		c    PCSC
		want string // "" for valid, else the keys of the problems
	}{
		{"reader only", PCSC{Reader: "Virtual PCD 00 00"}, ""},
		{"pattern", PCSC{Reader: "ACS*"}, ""},
		{"with PSAM", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPIN: "123456"}, ""},
		{"with PIN file", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPINFile: good}, ""},
		{"timeout", PCSC{Reader: "R", ReadTimeout: 5 * time.Second}, ""},
		{"no reader", PCSC{}, "r.reader"},
		{"PSAM without PIN", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01"}, "r.psam_pin"},
		{"PIN without PSAM", PCSC{Reader: "R", PSAMPIN: "123456"}, "r.psam_reader"},
		{"both PINs", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPIN: "123456", PSAMPINFile: good}, "r.psam_pin"},
		{"odd PIN", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPIN: "12345"}, "r.psam_pin"},
		{"PIN not hex", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPIN: "12345z"}, "r.psam_pin"},
		{"PIN too long", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPIN: strings.Repeat("1", 18)}, "r.psam_pin"},
		{"PIN file missing", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPINFile: filepath.Join(dir, "none")}, "r.psam_pin_file"},
		{"PIN file readable by all", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPINFile: open}, "r.psam_pin_file"},
		{"PIN file not hex", PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPINFile: garbage}, "r.psam_pin_file"},
		{"same reader", PCSC{Reader: "R", PSAMReader: "R", PSAMPIN: "1234"}, "r.psam_reader"},
		{"timeout too short", PCSC{Reader: "R", ReadTimeout: time.Millisecond}, "r.read_timeout"},
		{"timeout too long", PCSC{Reader: "R", ReadTimeout: time.Hour}, "r.read_timeout"},
	} {
		var keys, problems []string
		tc.c.validate("r", func(key, format string, args ...any) {
			keys = append(keys, key)
			problems = append(problems, fmt.Sprintf(format, args...))
		})
		if got := strings.Join(keys, ","); got != tc.want {
			t.Errorf("%s: problems at %q, want %q (%v)", tc.name, got, tc.want, problems)
		}
		for _, p := range problems {
			if strings.Contains(p, "12345") {
				t.Errorf("%s: the PIN is in the problem %q", tc.name, p)
			}
		}
	}
	c := PCSC{Reader: "R 00 00", PSAMReader: "R 00 01", PSAMPINFile: good}
	if pin, err := c.PIN(); err != nil || !bytes.Equal(pin, []byte{0x12, 0x34, 0x56}) {
		t.Fatalf("% X %v", pin, err)
	}
	if pin, err := (&PCSC{Reader: "R"}).PIN(); pin != nil || err != nil {
		t.Fatalf("no PSAM: % X %v", pin, err)
	}
}

// Through Load: the keys named as a user would search the file for them.
func TestPCSCLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(path, []byte(`devices:
  - name: cards
    driver: pcsc
    pcsc: {reader: "Virtual PCD 00 00", psam_reader: "Virtual PCD 00 01", psam_pin: "123", read_timeout: 3s, photo: false, readr: x}
`), 0o600)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "devices[0].pcsc.readr: unknown key") {
		t.Fatalf("%v", err)
	}
	os.WriteFile(path, []byte(`devices:
  - name: cards
    driver: pcsc
    pcsc: {reader: "Virtual PCD 00 00", psam_reader: "Virtual PCD 00 01", psam_pin: "123", read_timeout: 3s, photo: false}
`), 0o600)
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), "devices[0].pcsc.psam_pin: must be an even number") || strings.Contains(err.Error(), `"123"`) {
		t.Fatalf("%v", err)
	}
	os.WriteFile(path, []byte(`devices:
  - name: cards
    driver: pcsc
    pcsc: {reader: "Virtual PCD 00 00", psam_reader: "Virtual PCD 00 01", psam_pin: "123456", read_timeout: 3s, photo: false}
`), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Devices[0].PCSC; p.ReadTimeout != 3*time.Second || p.Photo == nil || *p.Photo || p.PSAMReader != "Virtual PCD 00 01" {
		t.Fatalf("%+v", p)
	}
}
