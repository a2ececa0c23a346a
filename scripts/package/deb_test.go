// Package pkgtest checks the release artefacts as an installer sees them: the .deb
// built by `make deb`, installed with dpkg on this machine, upgraded and purged; and the
// cross-built binaries of `make dist`.
package pkgtest

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var repoRoot, _ = filepath.Abs("../..")

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// makeDeb runs `make deb` for version into dir and returns the .deb's path. The binary
// is built with -race, as the agent's own tests build it, so that it links from the
// build cache they filled instead of compiling every package again.
func makeDeb(t *testing.T, dir, version string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "-C", repoRoot, "deb",
		"BIN="+filepath.Join(dir, "bin-"+version, "ehc-agent"), "DIST="+dir,
		"VERSION="+version, "DEB_VERSION="+version, "DEB_ARCH=amd64")
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -race"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	deb := filepath.Join(dir, "ehc-agent_"+version+"_amd64.deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatal(err)
	}
	return deb
}

func fileOwner(t *testing.T, path string) (owner, group string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10))
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10))
	if err != nil {
		t.Fatal(err)
	}
	return u.Username, g.Name, fi.Mode()
}

// The check: the .deb installs with dpkg, `ehc-agent version` runs from it, and
// an upgrade keeps a changed configuration. It installs on this machine (as CI does), so
// it runs only as root, and not where an ehc-agent is installed for real.
func TestDebInstallUpgradePurge(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the .deb is built and installed on linux/amd64")
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg -i needs root")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "ehc-agent").Output(); strings.Contains(string(out), "installed") {
		t.Skip("an ehc-agent package is installed on this machine; not touching it")
	}
	if _, err := os.Stat("/etc/ehc-agent"); err == nil {
		t.Skip("/etc/ehc-agent exists on this machine; not touching it")
	}
	_, errUser := user.Lookup("ehc-agent")
	_, errGroup := user.LookupGroup("ehc-agent")
	_, errState := os.Stat("/var/lib/ehc-agent")
	t.Cleanup(func() {
		// Leave the machine as found: what the package keeps on purge by design (state,
		// user) goes too, but only if this test made it.
		exec.Command("dpkg", "--purge", "ehc-agent").Run()
		if errState != nil {
			os.RemoveAll("/var/lib/ehc-agent")
		}
		if errUser != nil {
			exec.Command("userdel", "ehc-agent").Run()
		}
		if errGroup != nil {
			exec.Command("groupdel", "ehc-agent").Run()
		}
	})

	dir := t.TempDir()
	v1 := makeDeb(t, dir, "1.0.0")
	v2 := makeDeb(t, dir, "1.1.0")

	info := run(t, "dpkg-deb", "--info", v1)
	for _, want := range []string{
		"Package: ehc-agent", "Version: 1.0.0", "Architecture: amd64",
		"Depends: libc6, libusb-1.0-0, libpcsclite1", "Recommends: pcscd",
		" postinst", " prerm", " postrm", " conffiles",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	contents := run(t, "dpkg-deb", "--contents", v1)
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/bin/ehc-agent",
		"./lib/systemd/system/ehc-agent.service",
		"./lib/udev/rules.d/70-ehc-agent.rules",
		"./usr/share/polkit-1/rules.d/60-ehc-agent-pcscd.rules",
		"./var/lib/polkit-1/localauthority/10-vendor.d/ehc-agent-pcscd.pkla",
		"./etc/ehc-agent/agent.example.yaml", "./etc/ehc-agent/trust/",
		"./usr/share/doc/ehc-agent/INSTALL.md",
	} {
		if !strings.Contains(contents, want) {
			t.Errorf("dpkg-deb --contents lacks %q:\n%s", want, contents)
		}
	}
	if strings.Contains(contents, "./etc/ehc-agent/agent.yaml") {
		t.Error("agent.yaml is a package file: an upgrade would touch the administrator's configuration")
	}
	ctl := filepath.Join(dir, "control")
	run(t, "dpkg-deb", "--control", v1, ctl)
	if conf := run(t, "cat", filepath.Join(ctl, "conffiles")); strings.TrimSpace(conf) != "/etc/ehc-agent/agent.example.yaml" {
		t.Errorf("conffiles: %q", conf)
	}

	// Install.
	run(t, "dpkg", "-i", v1)
	if out := run(t, "/usr/bin/ehc-agent", "version"); !strings.HasPrefix(out, "ehc-agent 1.0.0\n") {
		t.Fatalf("installed ehc-agent version:\n%s", out)
	}
	u, err := user.Lookup("ehc-agent")
	if err != nil {
		t.Fatal("no ehc-agent user after install:", err)
	}
	if pw := run(t, "getent", "passwd", "ehc-agent"); !strings.HasSuffix(strings.TrimSpace(pw), ":/var/lib/ehc-agent:/usr/sbin/nologin") {
		t.Errorf("ehc-agent user: %s", pw)
	}
	if groups, _ := u.GroupIds(); len(groups) != 1 {
		t.Errorf("ehc-agent is in groups %v; it needs only its own (devices come from udev)", groups)
	}
	if o, g, m := fileOwner(t, "/var/lib/ehc-agent"); o != "ehc-agent" || g != "ehc-agent" || m.Perm() != 0o700 {
		t.Errorf("/var/lib/ehc-agent: %s:%s %v", o, g, m)
	}
	if o, g, m := fileOwner(t, "/etc/ehc-agent/agent.yaml"); o != "root" || g != "ehc-agent" || m.Perm() != 0o640 {
		t.Errorf("/etc/ehc-agent/agent.yaml: %s:%s %v", o, g, m)
	}
	example, _ := os.ReadFile(filepath.Join(repoRoot, "configs/agent.example.yaml"))
	if live, _ := os.ReadFile("/etc/ehc-agent/agent.yaml"); !bytes.Equal(live, example) {
		t.Error("the first install's agent.yaml is not the example")
	}
	if _, err := exec.LookPath("systemctl"); err == nil {
		if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/ehc-agent.service"); err != nil {
			t.Errorf("not enabled for boot: %v", err)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out := run(t, "systemd-analyze", "verify", "/lib/systemd/system/ehc-agent.service"); strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify of the installed unit:\n%s", out)
		}
	}
	if _, err := exec.LookPath("udevadm"); err == nil {
		// udev reads every rules file for any device: its complaints about ours (an unknown
		// key, or a group that does not exist yet) show whatever device is tested.
		out := run(t, "udevadm", "test", "--action=add", "/sys/class/tty/tty1")
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "70-ehc-agent.rules") && !strings.HasPrefix(line, "Reading rules file") {
				t.Errorf("udevadm: %s", line)
			}
		}
	}

	// The administrator edits the configuration; the upgrade keeps it.
	changed := append(append([]byte(nil), example...), []byte("\n# edited on site\n")...)
	changed = bytes.Replace(changed, []byte("terminal_id: K-0001"), []byte("terminal_id: K-0042"), 1)
	if err := os.WriteFile("/etc/ehc-agent/agent.yaml", changed, 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg", "-i", v2)
	if out := run(t, "/usr/bin/ehc-agent", "version"); !strings.HasPrefix(out, "ehc-agent 1.1.0\n") {
		t.Fatalf("upgraded ehc-agent version:\n%s", out)
	}
	if live, _ := os.ReadFile("/etc/ehc-agent/agent.yaml"); !bytes.Equal(live, changed) {
		t.Errorf("the upgrade changed agent.yaml:\n%s", live)
	}
	if o, g, m := fileOwner(t, "/var/lib/ehc-agent"); o != "ehc-agent" || g != "ehc-agent" || m.Perm() != 0o700 {
		t.Errorf("/var/lib/ehc-agent after upgrade: %s:%s %v", o, g, m)
	}

	// Purge: package files and the configuration go; state (undelivered events) stays.
	run(t, "dpkg", "--purge", "ehc-agent")
	for _, gone := range []string{"/usr/bin/ehc-agent", "/etc/ehc-agent/agent.yaml", "/lib/systemd/system/ehc-agent.service",
		"/etc/systemd/system/multi-user.target.wants/ehc-agent.service"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("%s left after purge", gone)
		}
	}
	if _, err := os.Stat("/var/lib/ehc-agent"); err != nil {
		t.Errorf("purge removed the state directory: %v", err)
	}
}
