// Package configs holds the files the agent is installed with: the example
// configuration, the systemd unit, udev and polkit rules. These tests check them with
// the tools that read them on a real machine, where those are installed.
package configs

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian package: %s)", tool, map[string]string{
			"systemd-analyze": "systemd", "udevadm": "udev", "node": "nodejs"}[tool])
	}
	return p
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unitKeys returns the unit's Key=value lines, by key.
func unitKeys(unit string) map[string][]string {
	keys := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		keys[k] = append(keys[k], v)
	}
	return keys
}

// verifyUnit runs systemd-analyze verify on unit text, with ExecStart pointing at an
// executable that exists here (verify insists on it), and returns what it complained of.
func verifyUnit(t *testing.T, unit string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit = strings.Replace(unit, "ExecStart=/usr/bin/ehc-agent ", "ExecStart="+self+" ", 1)
	path := filepath.Join(t.TempDir(), "ehc-agent.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(need(t, "systemd-analyze"), "verify", path).CombinedOutput()
	if err != nil && len(out) == 0 {
		t.Fatalf("systemd-analyze verify: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestUnitVerifies(t *testing.T) {
	unit := read(t, "ehc-agent.service")
	if out := verifyUnit(t, unit); out != "" {
		t.Fatalf("systemd-analyze verify:\n%s", out)
	}
	// The same check sees a misspelt key: an empty answer above means something.
	if out := verifyUnit(t, unit+"WatchdogSecs=30s\n"); !strings.Contains(out, "WatchdogSecs") {
		t.Fatalf("systemd-analyze verify missed a misspelt key: %q", out)
	}
}

func TestUnitShape(t *testing.T) {
	k := unitKeys(read(t, "ehc-agent.service"))
	for key, want := range map[string]string{
		"Type":            "notify", // READY=1 and the watchdog pings (agent/daemon/systemd.go)
		"NotifyAccess":    "main",
		"User":            "ehc-agent",
		"Group":           "ehc-agent",
		"StateDirectory":  "ehc-agent",
		"ProtectSystem":   "strict",
		"ProtectHome":     "true",
		"NoNewPrivileges": "true",
		"Restart":         "always",
		"ExecStart":       "/usr/bin/ehc-agent run --config /etc/ehc-agent/agent.yaml",
	} {
		if got := k[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if len(k["WatchdogSec"]) != 1 || k["WatchdogSec"][0] == "0" {
		t.Errorf("WatchdogSec=%q: the watchdog must be on", k["WatchdogSec"])
	}
	// Each of these fixes the device list at start (ProtectClock through its implied
	// DeviceAllow=char-rtc): a scanner plugged in later would be locked out.
	for _, key := range []string{"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "DynamicUser", "PrivateUsers"} {
		if v, ok := k[key]; ok {
			t.Errorf("%s=%q locks the agent out of its devices", key, v)
		}
	}
	if got := k["SupplementaryGroups"]; len(got) != 0 {
		t.Errorf("SupplementaryGroups=%q: the agent's devices come from the udev rules, not from dialout/plugdev", got)
	}
}

var (
	udevAssign = regexp.MustCompile(`\b(GROUP|MODE|OWNER)="([^"]*)"`)
	udevVendor = regexp.MustCompile(`ATTRS\{idVendor\}=="([^"]*)"`)
)

// The rules give scanners to the ehc-agent group, 0660, and nothing to anyone else.
func TestUdevRulesGrantOnlyTheAgentGroup(t *testing.T) {
	files, _ := filepath.Glob("udev/*.rules")
	if len(files) == 0 {
		t.Fatal("no udev rules")
	}
	for _, f := range files {
		text := read(t, f)
		gotos, labels := map[string]bool{}, map[string]bool{}
		assigns := 0
		for i, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' {
				continue
			}
			for _, m := range regexp.MustCompile(`GOTO="([^"]*)"`).FindAllStringSubmatch(line, -1) {
				gotos[m[1]] = true
			}
			if m := regexp.MustCompile(`^LABEL="([^"]*)"$`).FindStringSubmatch(line); m != nil {
				labels[m[1]] = true
			}
			for _, m := range udevAssign.FindAllStringSubmatch(line, -1) {
				assigns++
				switch m[1] {
				case "GROUP":
					if m[2] != "ehc-agent" {
						t.Errorf("%s:%d: GROUP=%q", f, i+1, m[2])
					}
				case "MODE":
					if m[2] != "0660" && m[2] != "0640" && m[2] != "0600" {
						t.Errorf("%s:%d: MODE=%q gives the device to others", f, i+1, m[2])
					}
				case "OWNER":
					t.Errorf("%s:%d: OWNER=%q: access is by group", f, i+1, m[2])
				}
			}
			if strings.Contains(line, "GROUP=") != strings.Contains(line, "MODE=") {
				t.Errorf("%s:%d: GROUP and MODE go together (a MODE alone keeps the default group)", f, i+1)
			}
			for _, m := range udevVendor.FindAllStringSubmatch(line, -1) {
				if !regexp.MustCompile(`^[0-9a-f]{4}$`).MatchString(m[1]) {
					t.Errorf("%s:%d: idVendor %q: sysfs says 4 lower-case hex digits", f, i+1, m[1])
				}
				// Bridges used by printers and UPSes too: never matched by vendor alone.
				switch m[1] {
				case "1a86", "0403", "10c4", "067b":
					t.Errorf("%s:%d: generic USB-serial bridge %s matched by vendor", f, i+1, m[1])
				}
			}
			if strings.Contains(line, "SYMLINK+=") && !strings.Contains(line, `SYMLINK+="ehc-scanner-`) {
				t.Errorf("%s:%d: symlinks are /dev/ehc-scanner-*", f, i+1)
			}
		}
		if assigns == 0 {
			t.Errorf("%s assigns nothing", f)
		}
		for g := range gotos {
			if !labels[g] {
				t.Errorf("%s: GOTO=%q has no LABEL (udev would skip the rest of the file)", f, g)
			}
		}
	}
}

// polkitDecide evaluates the polkit rules file as polkitd does (each rule called with
// action and subject until one answers) for each case, in node.
func polkitDecide(t *testing.T, rules string, cases [][2]string) []string {
	t.Helper()
	script := `
const fs = require("fs");
const rules = [];
globalThis.polkit = {
  Result: {YES: "yes", NO: "no", AUTH_SELF: "auth_self", AUTH_ADMIN: "auth_admin"},
  addRule: f => rules.push(f), addAdminRule: () => {}, log: () => {}, spawn: () => { throw new Error("spawn"); },
};
(0, eval)(fs.readFileSync(process.argv[1], "utf8"));
const out = JSON.parse(process.argv[2]).map(([id, user]) => {
  const action = {id, lookup: () => undefined};
  const subject = {user, groups: [user], local: false, active: false, isInGroup: g => g === user};
  for (const r of rules) { const v = r(action, subject); if (v !== undefined && v !== null) return v; }
  return "not_handled";
});
console.log(JSON.stringify(out));`
	in, _ := json.Marshal(cases)
	cmd := exec.Command(need(t, "node"), "-e", script, rules, string(in))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	return got
}

const (
	pcscAccess = "org.debian.pcsc-lite.access_pcsc"
	pcscCard   = "org.debian.pcsc-lite.access_card"
)

func TestPolkitRuleAllowsOnlyTheAgentUser(t *testing.T) {
	cases := [][2]string{
		{pcscAccess, "ehc-agent"},
		{pcscCard, "ehc-agent"},
		{pcscAccess, "www-data"},
		{pcscCard, "kiosk"},
		{"org.freedesktop.login1.reboot", "ehc-agent"},
		{"org.freedesktop.systemd1.manage-units", "ehc-agent"},
	}
	want := []string{"yes", "yes", "not_handled", "not_handled", "not_handled", "not_handled"}
	got := polkitDecide(t, "polkit/60-ehc-agent-pcscd.rules", cases)
	for i := range cases {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("%s for %s: %v, want %s", cases[i][0], cases[i][1], got, want[i])
		}
	}
}

// The action ids must be pcscd's own: a misspelt id silently grants nothing. Checked
// against pcscd's policy where this machine's pcscd is built with polkit.
func TestPolkitActionsArePcscds(t *testing.T) {
	pkla := read(t, "polkit/ehc-agent-pcscd.pkla")
	for _, id := range []string{pcscAccess, pcscCard} {
		if !strings.Contains(pkla, id) {
			t.Errorf("the .pkla lacks %s", id)
		}
	}
	if !strings.Contains(pkla, "Identity=unix-user:ehc-agent\n") {
		t.Error("the .pkla is not for the ehc-agent user")
	}
	policy, err := os.ReadFile("/usr/share/polkit-1/actions/org.debian.pcsc-lite.policy")
	if err != nil {
		t.Skip("pcscd here is built without polkit (no org.debian.pcsc-lite.policy); ids checked against the .pkla only")
	}
	for _, id := range []string{pcscAccess, pcscCard} {
		if !strings.Contains(string(policy), `id="`+id+`"`) {
			t.Errorf("pcscd's policy has no action %s", id)
		}
	}
}
