package main

// Issue #12, "Plain-language states", end to end with the built binary: each state
// produced for real (pcscd stopped, a serial port held by another process, a trust
// store never synced or aged, the API port taken) and shown by `ehc-agent doctor` with
// its fix, and in /v1/status with reason and hint.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/drivers/holder/holdertest"
	"github.com/ehc-agent/ehc-agent/drivers/vcard/pcscdtest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// startAgentNoSysAdmin starts the agent like startAgent, but as root without
// CAP_SYS_ADMIN, which would let it open a tty another process holds with TIOCEXCL:
// the agent's service user never has it.
func startAgentNoSysAdmin(t *testing.T, cfg string) *agentProc {
	t.Helper()
	args := []string{agentBin, "run", "--config", cfg}
	if os.Geteuid() == 0 {
		sp, err := exec.LookPath("setpriv")
		if err != nil {
			t.Fatal("running as root, and no setpriv (util-linux) to drop CAP_SYS_ADMIN")
		}
		args = append([]string{sp, "--bounding-set", "-sys_admin", "--"}, args...)
	}
	return startAgentArgs(t, args...)
}

func doctorOut(t *testing.T, cfg string) string {
	t.Helper()
	out, err := exec.Command(agentBin, "doctor", "--config", cfg).Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out)
}

// doctorUntil runs doctor until its output has every want, and returns it.
func doctorUntil(t *testing.T, cfg string, within time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := doctorOut(t, cfg)
		missing := ""
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("doctor output lacks %q after %s:\n%s", missing, within, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// doctorLine is the line of doctor's table for check.
func doctorLine(out, check string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, check+" ") {
			return l
		}
	}
	return ""
}

func TestDoctorShowsStatesOfRunningAgent(t *testing.T) {
	d := pcscdtest.Start(t)
	dir := t.TempDir()
	trustDir, state := filepath.Join(dir, "trust"), filepath.Join(dir, "state")
	if _, err := issuer.GenerateKeys(trustDir, issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Never synced: the anchor is there, no key set ever was.
	if err := os.Remove(filepath.Join(trustDir, "keyset.json")); err != nil {
		t.Fatal(err)
	}
	port, sleepPID := holdertest.ExclusivePTY(t)
	addr := freePort(t)
	t.Setenv("EHC_AGENT_API_LISTEN", addr) // doctor and the agent read the same address
	cfg := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf("terminal_id: T-STATES\nstate_dir: %s\ntrust: {dir: %s}\napi: {listen: %q}\nlog: {format: json}\ndevices:\n"+
		"  - {name: front-scanner, driver: serial, serial: {path: %s}}\n"+
		"  - {name: desk-reader, driver: pcsc, pcsc: {reader: 'No Such Reader 00 00'}}\n", state, trustDir, addr, port)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgentNoSysAdmin(t, cfg)
	a.waitFor("agent ready", false, 20*time.Second)

	heldBy := fmt.Sprintf("held by sleep (pid %d)", sleepPID)
	out := doctorUntil(t, cfg, 15*time.Second, "port_busy", "(no_reader)")
	for check, want := range map[string][]string{
		"device front-scanner": {"fail", "connecting (port_busy): " + port + ": " + heldBy, "fix: " + hints.For("port_busy")},
		"device desk-reader":   {"fail", "disconnected (no_reader)", "fix: " + hints.For("no_reader")},
		"card reader desk-reader": {"fail", `no_reader: pcsc.reader "No Such Reader 00 00" matches none of the service's readers (` +
			d.Readers[0] + ", " + d.Readers[1] + ")"},
		"trust store": {"fail", "the running agent: never_updated", "fix: " + hints.For("never_updated")},
	} {
		line := doctorLine(out, check)
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: line lacks %q:\n%s\nwhole output:\n%s", check, w, line, out)
			}
		}
	}

	// /v1/status carries the same reasons with their hints.
	st := agentStatus(t, addr, filepath.Join(state, "api.token"))
	if dev := st.Devices["front-scanner"]; dev.Reason != "port_busy" || !strings.Contains(dev.Detail, heldBy) || dev.Hint != hints.For("port_busy") {
		t.Errorf("status of front-scanner: %+v", dev)
	}
	if st.Trust.Reason != "never_updated" || st.Trust.Hint != hints.For("never_updated") {
		t.Errorf("status of trust: reason %q hint %q", st.Trust.Reason, st.Trust.Hint)
	}

	// pcscd stopped: the service is gone, which is not "no reader".
	d.Stop()
	out = doctorUntil(t, cfg, 15*time.Second, "(pcsc_service_unavailable)")
	line := doctorLine(out, "device desk-reader")
	if !strings.Contains(line, "connecting (pcsc_service_unavailable)") || !strings.Contains(line, "fix: "+hints.For("pcsc_service_unavailable")) {
		t.Errorf("device desk-reader after pcscd stopped: %s\n%s", line, out)
	}
	if line := doctorLine(out, "pcscd"); !strings.Contains(line, "fail") || !strings.Contains(line, "pcsc_service_unavailable") {
		t.Errorf("pcscd after it stopped: %s", line)
	}
	t.Logf("doctor:\n%s", out)
	a.stop(10 * time.Second)
}

// agentStatus reads /v1/status as a kiosk would.
func agentStatus(t *testing.T, addr, tokenFile string) (st struct {
	Devices map[string]struct{ State, Reason, Detail, Hint string }
	Trust   struct{ Reason, Hint string }
}) {
	t.Helper()
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return st
}

// Without a running agent: a key set that aged is stale (not never_updated), a port
// another program holds names it, and a taken API port names its holder, in doctor
// and when `ehc-agent run` refuses to start.
func TestDoctorShowsStatesWithoutAgent(t *testing.T) {
	dir := t.TempDir()
	trustDir, state := filepath.Join(dir, "trust"), filepath.Join(dir, "state")
	// Issued a year ago: next_update passed eleven months ago.
	if _, err := issuer.GenerateKeys(trustDir, issuer.GenerateOptions{Now: time.Now().AddDate(-1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	port, sleepPID := holdertest.ExclusivePTY(t)

	// A loopback service of the hospital's on the API's port.
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to play the hospital's loopback service")
	}
	addr := freePort(t)
	_, portNum, _ := strings.Cut(addr, ":")
	svc := exec.Command(py, "-c", "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',"+portNum+"))\ns.listen()\nprint('ok',flush=True)\ntime.sleep(300)")
	svcOut, _ := svc.StdoutPipe()
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Process.Kill(); svc.Wait() })
	if l, _ := bufio.NewReader(svcOut).ReadString('\n'); l != "ok\n" {
		t.Fatalf("python3 service: %q", l)
	}

	t.Setenv("EHC_AGENT_API_LISTEN", addr)
	cfg := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf("terminal_id: T-STATES\nstate_dir: %s\ntrust: {dir: %s}\napi: {listen: %q}\ndevices:\n"+
		"  - {name: front-scanner, driver: serial, serial: {path: %s}}\n", state, trustDir, addr, port)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	taken := fmt.Sprintf("api.listen %s: port taken by python3 (pid %d)", addr, svc.Process.Pid)
	out := doctorOut(t, cfg)
	for check, want := range map[string][]string{
		"trust store":          {"warn", trustDir + ": stale: key set v1 is stale", "fix: " + hints.For("stale")},
		"device front-scanner": {"fail", fmt.Sprintf("port_busy: %s: held by sleep (pid %d)", port, sleepPID), "fix: " + hints.For("port_busy")},
		"local API":            {"fail", "api_port_taken: " + taken, "fix: " + hints.For("api_port_taken")},
	} {
		line := doctorLine(out, check)
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: line lacks %q:\n%s\nwhole output:\n%s", check, w, line, out)
			}
		}
	}
	t.Logf("doctor:\n%s", out)

	run := exec.Command(agentBin, "run", "--config", cfg)
	b, err := run.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run with the API port taken: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "ehc-agent: "+taken+" — fix: "+hints.For("api_port_taken")) {
		t.Fatalf("run's error does not name the holder:\n%s", b)
	}
}
