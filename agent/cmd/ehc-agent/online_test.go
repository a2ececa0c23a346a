package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
)

// An ehc_online code is resolved at the platform (PLATFORM.md /codes/resolve) before
// its event is committed: known → valid with the identity, unknown → invalid, platform
// down → pending. The identity reaches the console only masked.
func TestOnlineCodesResolvedAtPlatform(t *testing.T) {
	dir := t.TempDir()
	keys := simKeys(t, agentBin, dir)
	state := filepath.Join(dir, "state")
	known := strings.Repeat("AB", 32) + ":1"
	unknown := strings.Repeat("CD", 32) + ":2"
	pdir := filepath.Join(dir, "platform")
	os.MkdirAll(pdir, 0o700)
	os.WriteFile(filepath.Join(pdir, "codes.json"), []byte(fmt.Sprintf(
		`{%q: {"ehc_id": "%s", "id_type": "01", "id_number": "110101198001011234", "name": "张三丰"}}`,
		known, strings.Repeat("E1", 32))), 0o600)
	sim := startPlatform(t, state, platformsim.Options{DataDir: pdir, TrustDir: keys})

	fifo := filepath.Join(dir, "codes.txt")
	// The lowercase, full-width-colon form a phone app may emit is normalised first.
	lower := strings.ToLower(strings.Repeat("AB", 32)) + "：1"
	os.WriteFile(fifo, []byte(lower+"\n"+unknown+"\n"), 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("terminal_id: T-1\nstate_dir: %s\nconsole: true\nlog: {level: info}\ntrust: {dir: %s}\nplatform: {url: %q}\ndevices:\n  - {name: s, driver: sim, sim: {file: %s, interval: 50ms}}\n",
		state, keys, sim.URL(), fifo)), 0o600)

	a := startAgent(t, cfg)
	a.waitFor("ehc_online ABAB…AB:1 valid ehc_id=E1E1…E1E1 name=张** id=1101**********1234", false, 10*time.Second)
	a.waitFor("ehc_online CDCD…CD:2 invalid (code_unknown)", false, 10*time.Second)
	a.stop(5 * time.Second)

	// Platform down: the code stays pending, and the read is not lost.
	sim.Down(time.Minute)
	os.WriteFile(fifo, []byte(known+"\n"), 0o600)
	b := startAgent(t, cfg)
	b.waitFor("ehc_online ABAB…AB:1 pending (platform_unreachable)", false, 10*time.Second)
	b.stop(5 * time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.Contains(b.stderr.String(), "110101198001011234") || strings.Contains(a.stderr.String(), "张三丰") {
		t.Fatal("identity reached the log unmasked")
	}
}
