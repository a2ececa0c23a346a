// Package depcheck asserts the dependency rules of DESIGN.md that a reviewer would
// otherwise have to remember: data flows drivers → protocol → offline → agent, codecs
// do no I/O, and some modules never enter some builds.
package depcheck

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/ehc-agent/ehc-agent"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func list(t *testing.T, env []string, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func layer(path string) string {
	rel := strings.TrimPrefix(path, mod+"/")
	return strings.SplitN(rel, "/", 2)[0]
}

// The data flow of DESIGN.md: protocol imports no other layer; drivers may use
// protocol; offline may use protocol; nothing imports agent but agent.
func TestLayers(t *testing.T) {
	allowed := map[string]map[string]bool{
		"protocol": {"protocol": true},
		"drivers":  {"drivers": true, "protocol": true},
		"offline":  {"offline": true, "protocol": true},
		"agent":    {"agent": true, "drivers": true, "protocol": true, "offline": true},
		"internal": {"internal": true, "agent": true, "drivers": true, "protocol": true, "offline": true},
	}
	for _, p := range list(t, nil, "./...") {
		from := layer(p.ImportPath)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod+"/") {
				continue
			}
			if to := layer(imp); !allowed[from][to] {
				t.Errorf("%s imports %s: against the data flow", p.ImportPath, imp)
			}
		}
	}
}

// Codecs are pure: no network, no files, no processes.
func TestProtocolDoesNoIO(t *testing.T) {
	banned := []string{"net", "net/http", "os/exec", "go.bug.st/serial", "github.com/ebfe/scard", "github.com/google/gousb", "go.etcd.io/bbolt"}
	for _, p := range list(t, nil, "./protocol/...") {
		for _, imp := range p.Imports {
			for _, b := range banned {
				if imp == b {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
}

// The agent never depends on tjfoc/gmsm (DESIGN.md: it accepts off-curve points and
// never checks its SM4-GCM tag); the comparison benchmarks live in their own module.
func TestNoTjfoc(t *testing.T) {
	for _, p := range list(t, nil, "-deps", "./...") {
		if strings.Contains(p.ImportPath, "tjfoc") {
			t.Errorf("%s is in the build", p.ImportPath)
		}
	}
}

// The Windows build is CGO_ENABLED=0 and has no USB driver (gousb needs cgo).
func TestWindowsBuildHasNoGousb(t *testing.T) {
	for _, p := range list(t, []string{"GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0"}, "-deps", "./agent/cmd/ehc-agent") {
		if strings.Contains(p.ImportPath, "gousb") {
			t.Errorf("windows build includes %s", p.ImportPath)
		}
	}
}

// Test-support packages (pcscdtest, fleettest, holdertest: named for what they stand
// up, ending in "test") start processes and fail tests: only tests, and other such
// packages, may import them, never what ships.
func TestTestSupportOnlyInTests(t *testing.T) {
	isSupport := func(path string) bool {
		return strings.HasPrefix(path, mod+"/") && strings.HasSuffix(path, "test")
	}
	for _, p := range list(t, nil, "./...") {
		if isSupport(p.ImportPath) {
			continue
		}
		for _, imp := range p.Imports {
			if isSupport(imp) {
				t.Errorf("%s imports the test-support package %s", p.ImportPath, imp)
			}
		}
	}
}
