package pkgtest

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `make dist` produces the three release binaries, each for its platform: the arm64
// one an aarch64 ELF built with cgo (Debian's cross compiler), the Windows one a PE
// built without cgo and so without gousb.
func TestMakeDist(t *testing.T) {
	if _, err := exec.LookPath("aarch64-linux-gnu-gcc"); err != nil && os.Geteuid() != 0 {
		t.Skip("no aarch64 cross compiler, and not root to let scripts/install-cross.sh install it")
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "-s", "-C", repoRoot, "dist", "DIST="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, out)
	}

	settings := func(path string) (map[string]string, map[string]bool) {
		t.Helper()
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, deps := map[string]string{}, map[string]bool{}
		for _, kv := range bi.Settings {
			s[kv.Key] = kv.Value
		}
		for _, d := range bi.Deps {
			deps[d.Path] = true
		}
		return s, deps
	}

	for _, c := range []struct {
		file    string
		machine elf.Machine
	}{{"ehc-agent-linux-amd64", elf.EM_X86_64}, {"ehc-agent-linux-arm64", elf.EM_AARCH64}} {
		path := filepath.Join(dir, c.file)
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if f.Machine != c.machine || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s: %v %v, want %v", c.file, f.Class, f.Machine, c.machine)
		}
		// cgo means a dynamic executable with the platform's loader.
		interp := ""
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b := make([]byte, p.Filesz)
				p.ReadAt(b, 0)
				interp = strings.TrimRight(string(b), "\x00")
			}
		}
		f.Close()
		want := map[elf.Machine]string{elf.EM_X86_64: "/lib64/ld-linux-x86-64.so.2", elf.EM_AARCH64: "/lib/ld-linux-aarch64.so.1"}[c.machine]
		if interp != want {
			t.Errorf("%s: interpreter %q, want %q (built with cgo)", c.file, interp, want)
		}
		if s, _ := settings(path); s["CGO_ENABLED"] != "1" || s["GOOS"] != "linux" {
			t.Errorf("%s: build settings %v", c.file, s)
		}
	}

	exe := filepath.Join(dir, "ehc-agent-windows-amd64.exe")
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatalf("windows binary: %v", err)
	}
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("windows binary: machine %#x", f.Machine)
	}
	f.Close()
	s, deps := settings(exe)
	if s["CGO_ENABLED"] != "0" || s["GOOS"] != "windows" {
		t.Errorf("windows binary: build settings %v", s)
	}
	if deps["github.com/google/gousb"] {
		t.Error("the Windows binary links gousb")
	}
	if !deps["golang.org/x/sys"] {
		t.Error("the Windows binary lacks x/sys (the service code)")
	}
}
