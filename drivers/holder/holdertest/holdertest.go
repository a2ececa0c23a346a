// Package holdertest gives tests another process that holds a resource (a TCP port,
// a serial port), so that what names the holder can be tested against a real one.
// Only tests import it.
package holdertest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// listenEnv, set in a test binary's environment, makes it the other program: it
// listens there, says where, and waits to be killed.
const listenEnv = "EHC_HOLDERTEST_LISTEN"

// init runs before the test binary's tests, so any test binary that imports this
// package can be its own holder.
func init() {
	if addr := os.Getenv(listenEnv); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("listening", l.Addr())
		select {}
	}
}

// Listener starts the test binary again as a child that listens on listen (such as
// "127.0.0.1:0") until the test ends, and gives the address it listens on and its
// pid. The child has the test binary's name (e.g. api.test). err says what the child
// answered when it could not listen (no IPv6 here, say).
func Listener(t *testing.T, listen string) (addr string, pid int, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), listenEnv+"="+listen)
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
		return "", cmd.Process.Pid, fmt.Errorf("child listening on %s: %q", listen, line)
	}
	return addr, cmd.Process.Pid, nil
}
