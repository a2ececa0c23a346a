package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The reproduction with the real binary: `ehc-agent run` once, stop it,
// overwrite the first 8 KiB of agent.db, run again. The agent comes up (it used to exit
// 2 with "state_dir: invalid database"), logs the reset with reason state_reset, and
// the doctor shows a state warning with the kept file and the fix.
func TestDoctorStateResetAfterCorruptDatabase(t *testing.T) {
	addr := freePort(t)
	f := newDoctorFixture(t, addr, "  []\n")
	a := startAgent(t, f.cfg)
	a.waitFor("agent ready", false, 15*time.Second)
	a.stop(10 * time.Second)

	db, err := os.OpenFile(filepath.Join(f.state, "agent.db"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 8<<10)
	rand.Read(junk)
	if _, err := db.WriteAt(junk, 0); err != nil {
		t.Fatal(err)
	}
	db.Close()

	a = startAgent(t, f.cfg)
	a.waitFor(`"reason":"state_reset"`, false, 15*time.Second)
	a.waitFor("agent ready", false, 15*time.Second)
	kept, _ := filepath.Glob(filepath.Join(f.state, "agent.db.corrupt-*Z"))
	if len(kept) != 1 {
		t.Fatalf("kept damaged files: %v", kept)
	}
	rows := runChecks(t, f.env(time.Now(), ""))
	wantRow(t, rows, "agent", doctorPass, "running, terminal T-DOC")
	wantRow(t, rows, "state", doctorWarn, "state_reset: agent.db was damaged (invalid database)")
	wantRow(t, rows, "state", doctorWarn, "kept as "+kept[0])
	wantRow(t, rows, "state", doctorWarn, "fix: agent.db was damaged")
	a.stop(10 * time.Second)
}
