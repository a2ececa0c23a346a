package holder

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// procRoot is /proc; a variable only so that the parsing can be read in one place.
const procRoot = "/proc"

// File returns the processes other than exceptPID (0: none excepted) that have path
// open, in pid order. A symbolic link (/dev/serial/by-id/…) is followed first: the
// holders' fd links name the device node itself.
func File(path string, exceptPID int) ([]Process, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	target, err = filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	return scan(exceptPID, func(link string) bool { return link == target })
}

// TCPListener returns the processes with a socket listening on addr's port that an
// attempt to listen on addr would collide with: on the same address, or on the
// wildcard address (0.0.0.0, ::), or any address when addr's host is the wildcard.
func TCPListener(addr string) ([]Process, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("holder: port %q: %v", portText, err)
	}
	var want net.IP
	if host != "" && host != "localhost" {
		if want = net.ParseIP(host); want == nil {
			return nil, fmt.Errorf("holder: host %q is not an IP address", host)
		}
	}
	inodes := map[string]bool{}
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(procRoot, "net", name))
		if err != nil {
			continue // no IPv6 in this kernel
		}
		for _, l := range parseListeners(f) {
			if l.port == uint16(port) && collides(want, host == "localhost", l.ip) {
				inodes["socket:["+l.inode+"]"] = true
			}
		}
		f.Close()
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	return scan(0, func(link string) bool { return inodes[link] })
}

func collides(want net.IP, localhost bool, got net.IP) bool {
	switch {
	case got.IsUnspecified():
		return true
	case localhost:
		return got.IsLoopback()
	case want == nil || want.IsUnspecified():
		return true
	}
	return want.Equal(got)
}

type listener struct {
	ip    net.IP
	port  uint16
	inode string
}

// parseListeners reads a /proc/net/tcp{,6} table and returns its sockets in state
// LISTEN (0A). An address is hex: the IP as 32-bit words in host (little-endian)
// order, then ":" and the port in big-endian hex.
func parseListeners(r io.Reader) []listener {
	var out []listener
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[3] != "0A" {
			continue
		}
		ipHex, portHex, ok := strings.Cut(fs[1], ":")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(ipHex)
		if err != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		for i := 0; i+4 <= len(raw); i += 4 {
			raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		out = append(out, listener{ip: net.IP(raw), port: uint16(port), inode: fs[9]})
	}
	return out
}

// scan walks /proc/*/fd and returns each process (but exceptPID) with a link that
// match accepts. Processes that end or cannot be read meanwhile are skipped.
func scan(exceptPID int, match func(link string) bool) ([]Process, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == exceptPID {
			continue
		}
		dir := filepath.Join(procRoot, e.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err == nil && match(link) {
				out = append(out, Process{PID: pid, Name: comm(pid)})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b Process) int { return a.PID - b.PID })
	return out, nil
}

func comm(pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
