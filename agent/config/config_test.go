package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func problems(t *testing.T, err error) []string {
	t.Helper()
	es, ok := AsErrors(err)
	if !ok {
		t.Fatalf("error %v is not config.Errors", err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

func TestExampleAndDemoConfigsAreValid(t *testing.T) {
	for _, p := range []string{"../../configs/agent.example.yaml", "../../configs/demo.yaml"} {
		if _, err := Load(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestDefaultsWithoutFile(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.TerminalID != "K-0001" || c.Verify.Skew != 30*time.Second || c.Verify.DuplicateWindow != 3*time.Second ||
		c.Trust.Staleness != 7*24*time.Hour || c.Log.Format != "json" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestBadKeysAreNamed(t *testing.T) {
	p := write(t, `
terminal_id: K-1
logg:
  level: info
devices:
  - name: a
    driver: sim
    sim: {file: x}
  - name: b
    driver: serial
    serial:
      path: /dev/ttyUSB0
      baud: 1234567
      bogus: 1
`)
	_, err := Load(p)
	got := strings.Join(problems(t, err), "\n")
	for _, want := range []string{"devices[1].serial.bogus: unknown key", "logg: unknown key"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	// Unknown keys are reported first; once they are fixed, values are checked.
	p = write(t, `
devices:
  - name: a
    driver: sim
    sim: {file: x}
  - name: b
    driver: serial
    serial: {path: /dev/ttyUSB0, baud: 1234567, parity: weird}
    framing: {type: line, suffix: zz}
  - name: b
    driver: floppy
`)
	_, err = Load(p)
	got = strings.Join(problems(t, err), "\n")
	for _, want := range []string{
		"devices[1].serial.baud: 1234567 is not a supported rate",
		`devices[1].serial.parity: "weird" is not one of`,
		"devices[1].framing: suffix",
		`devices[2].name: "b" is already the name of devices[1]`,
		`devices[2].driver: "floppy" is not a driver`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestTypeErrorsNameTheKey(t *testing.T) {
	p := write(t, "verify:\n  skew: soon\n")
	_, err := Load(p)
	got := strings.Join(problems(t, err), "\n")
	if !strings.HasPrefix(got, "verify.skew: ") {
		t.Fatalf("got %q", got)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	p := write(t, "terminal_id: FROM-FILE\nlog:\n  level: info\n")
	t.Setenv("EHC_AGENT_TERMINAL_ID", "FROM-ENV")
	t.Setenv("EHC_AGENT_LOG_LEVEL", "debug")
	t.Setenv("EHC_AGENT_VERIFY_SKEW", "45s")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.TerminalID != "FROM-ENV" || c.Log.Level != "debug" || c.Verify.Skew != 45*time.Second {
		t.Fatalf("env not applied: %q %q %s", c.TerminalID, c.Log.Level, c.Verify.Skew)
	}
	t.Setenv("EHC_AGENT_LOG_LEVEL", "loud")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("bad env value not refused by key: %v", err)
	}
}

func TestSerialDefaults(t *testing.T) {
	p := write(t, "devices:\n  - {name: s, driver: serial, serial: {path: /dev/ttyS0}}\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Devices[0]
	if d.Serial.Baud != 9600 || d.Serial.DataBits != 8 || d.Serial.Parity != "none" || d.Framing.Type != "line" ||
		d.Framing.Suffix != "cr" || d.Framing.AIM == nil || !*d.Framing.AIM {
		t.Fatalf("serial defaults: %+v", d)
	}
}

// Windows keeps state and trust under %ProgramData%\ehc-agent, beside the service's
// configuration file; everything else uses the .deb's layout.
func TestPlatformDirs(t *testing.T) {
	for _, c := range []struct {
		goos, pd     string
		state, trust string
	}{
		{"linux", "", "/var/lib/ehc-agent", "/etc/ehc-agent/trust"},
		{"linux", `C:\ProgramData`, "/var/lib/ehc-agent", "/etc/ehc-agent/trust"},
		{"windows", `D:\PD`, `D:\PD\ehc-agent\state`, `D:\PD\ehc-agent\trust`},
		{"windows", "", `C:\ProgramData\ehc-agent\state`, `C:\ProgramData\ehc-agent\trust`},
	} {
		d := platformDirs(c.goos, c.pd)
		if d.state != c.state || d.trust != c.trust {
			t.Errorf("platformDirs(%q, %q) = %+v, want state %q trust %q", c.goos, c.pd, d, c.state, c.trust)
		}
	}
}
