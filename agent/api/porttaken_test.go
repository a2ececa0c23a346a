package api

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// With EHC_API_TEST_HOLD set, this test binary is the other program: it listens there,
// says where, and waits to be killed.
func init() {
	if addr := os.Getenv("EHC_API_TEST_HOLD"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("listening", l.Addr())
		select {}
	}
}

// Issue #12: the local API's port held by another process stops the start with an
// error that names that process, by name and pid.
func TestListenPortTakenNamesHolder(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EHC_API_TEST_HOLD=127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("holder: %q", line)
	}

	s, err := New(Options{Listen: addr, Token: strings.Repeat("t", 32), Status: func() any { return map[string]any{} }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err == nil {
		ln.Close()
		t.Fatal("listened on a taken port")
	}
	want := fmt.Sprintf("api.listen %s: port taken by api.test (pid %d)", addr, cmd.Process.Pid)
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if pt := PortTaken(addr, err); pt == nil {
		t.Fatal("not a PortTakenError")
	}
}
