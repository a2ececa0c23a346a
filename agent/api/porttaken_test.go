package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ehc-agent/ehc-agent/drivers/holder/holdertest"
)

// Issue #12: the local API's port held by another process stops the start with an
// error that names that process, by name and pid.
func TestListenPortTakenNamesHolder(t *testing.T) {
	addr, pid, err := holdertest.Listener(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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
	want := fmt.Sprintf("api.listen %s: port taken by api.test (pid %d)", addr, pid)
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if pt := PortTaken(addr, err); pt == nil {
		t.Fatal("not a PortTakenError")
	}
}
