package holder

import (
	"net"
	"strings"
	"testing"
)

// A /proc/net/tcp table as Linux 6.1 prints it (two listeners, one connection), and
// /proc/net/tcp6 with a listener on [::1] and one on [::].
const (
	procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4411 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 223344 1 0000000000000000 100 0 0 10 0
   2: 0100007F:4411 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 998877 1 0000000000000000 20 4 30 10 -1
`
	procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:55DC 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55501 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55502 1 0000000000000000 100 0 0 10 0
`
)

func TestParseListeners(t *testing.T) {
	got := parseListeners(strings.NewReader(procTCP))
	want := []listener{{net.IPv4(127, 0, 0, 1).To4(), 17425, "123456"}, {net.IPv4zero.To4(), 8080, "223344"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if !got[i].ip.Equal(want[i].ip) || got[i].port != want[i].port || got[i].inode != want[i].inode {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	got = parseListeners(strings.NewReader(procTCP6))
	if len(got) != 2 || !got[0].ip.Equal(net.IPv6loopback) || got[0].port != 21980 || got[0].inode != "55501" ||
		!got[1].ip.Equal(net.IPv6unspecified) || got[1].port != 5000 {
		t.Fatalf("tcp6: %+v", got)
	}
}

// The tables come from the kernel, but a parser still takes anything without panicking
// and returns only well-formed listeners.
func FuzzParseListeners(f *testing.F) {
	f.Add(procTCP)
	f.Add(procTCP6)
	f.Add("header\n 0: 0100007F:zz 0 0A 0 0 0 0 0 1\n")
	f.Add("header\n 0: 0100007F 0 0A 0 0 0 0 0 1\n")
	f.Fuzz(func(t *testing.T, table string) {
		for _, l := range parseListeners(strings.NewReader(table)) {
			if len(l.ip) != 4 && len(l.ip) != 16 || l.inode == "" {
				t.Fatalf("malformed listener %+v", l)
			}
		}
	})
}
