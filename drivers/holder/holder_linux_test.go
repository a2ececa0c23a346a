package holder

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/ehc-agent/ehc-agent/drivers/holder/holdertest"
)

// A file held by a child process (sleep, with the file as its stdin) names that child,
// through a symbolic link to it too; the caller itself is left out when excepted.
func TestFileNamesChild(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/dev"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Symlink(path, dir+"/by-id"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.Stdin = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	got, err := File(dir+"/by-id", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	want := Process{PID: cmd.Process.Pid, Name: "sleep"}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("holders %v, want [%v]", got, want)
	}
	if s := Describe(got); s != fmt.Sprintf("sleep (pid %d)", cmd.Process.Pid) {
		t.Fatalf("Describe: %q", s)
	}
	// Not excepted, this process holds it too.
	got, _ = File(path, 0)
	if len(got) != 2 {
		t.Fatalf("holders without exception %v, want this process and sleep", got)
	}
	if _, err := File(dir+"/missing", 0); err == nil {
		t.Fatal("a missing file has holders")
	}
}

// A port another process listens on names that process, for the same address, for
// the wildcard, and not for another port.
func TestTCPListenerNamesChild(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "[::]:0", "0.0.0.0:0"} {
		t.Run(listen, func(t *testing.T) {
			addr, pid, err := holdertest.Listener(t, listen)
			if err != nil {
				t.Skipf("%v (no IPv6 here?)", err)
			}
			_, port, _ := net.SplitHostPort(addr)

			got, err := TCPListener("127.0.0.1:" + port)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].PID != pid || got[0].Name != "holder.test" {
				t.Fatalf("holders of 127.0.0.1:%s: %v, want holder.test (pid %d)", port, got, pid)
			}
			if got, _ := TCPListener("localhost:" + port); len(got) != 1 {
				t.Fatalf("holders of localhost:%s: %v", port, got)
			}
			if got, _ := TCPListener(":" + port); len(got) != 1 {
				t.Fatalf("holders of :%s: %v", port, got)
			}
			if listen == "127.0.0.1:0" {
				if got, _ := TCPListener("127.0.0.2:" + port); len(got) != 0 {
					t.Fatalf("127.0.0.2:%s is free, yet held by %v", port, got)
				}
			}
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if got, err := TCPListener(fmt.Sprintf("127.0.0.1:%d", port)); err != nil || len(got) != 0 {
		t.Fatalf("a closed port: %v %v", got, err)
	}
}
