package serial

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.bug.st/serial/enumerator"
)

// PortInfo describes one serial port, for `ehc-agent doctor` and for logs.
type PortInfo struct {
	Path         string
	USB          bool
	VID, PID     string // 4 lower-case hex digits; empty if not USB
	SerialNumber string
	Manufacturer string
	Product      string
}

// Ports lists the serial ports with their USB details.
type Ports func() ([]*enumerator.PortDetails, error)

// SystemPorts asks the OS. On Linux this opens every /dev/ttyS* to tell real UARTs from
// placeholders: tests inject their own list instead.
func SystemPorts() ([]*enumerator.PortDetails, error) {
	return enumerator.GetDetailedPortsList()
}

// ListPorts returns the ports that ports lists (nil: SystemPorts), sorted by path.
func ListPorts(ports Ports) ([]PortInfo, error) {
	if ports == nil {
		ports = SystemPorts
	}
	list, err := ports()
	if err != nil {
		return nil, err
	}
	out := make([]PortInfo, 0, len(list))
	for _, p := range list {
		if p == nil || p.Name == "" {
			continue
		}
		info := PortInfo{Path: p.Name, USB: p.IsUSB, SerialNumber: p.SerialNumber, Manufacturer: p.Manufacturer, Product: p.Product}
		if p.IsUSB {
			info.VID, _ = NormalizeUSBID(p.VID)
			info.PID, _ = NormalizeUSBID(p.PID)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b PortInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// NormalizeUSBID turns "0x0C2E", "c2e" or "0c2e" into "0c2e", the form ListPorts
// reports ids in.
func NormalizeUSBID(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	if s == "" || len(s) > 4 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", false
	}
	return strings.Repeat("0", 4-len(s)) + s, true
}

// ErrNoPort: no port has the configured USB ids.
var ErrNoPort = errors.New("no port with these USB ids")

// FindPort finds the port with the USB ids vid and pid (normalised, NormalizeUSBID) and,
// if sn is not empty, that serial number. With several, the first path in order wins and
// the others are named in the error-free detail, so that a duplicate device is visible in
// the state log without stopping the one that works. Drivers of other serial devices (the
// ID card reader) resolve their ports with it too.
func FindPort(ports Ports, vid, pid, sn string) (path, detail string, err error) {
	list, err := ListPorts(ports)
	if err != nil {
		return "", "", fmt.Errorf("enumerate ports: %w", err)
	}
	var match []string
	for _, p := range list {
		if p.VID == vid && p.PID == pid && (sn == "" || strings.EqualFold(p.SerialNumber, sn)) {
			match = append(match, p.Path)
		}
	}
	switch len(match) {
	case 0:
		return "", "", ErrNoPort
	case 1:
		return match[0], "", nil
	}
	return match[0], fmt.Sprintf("%d ports match %s:%s; using %s (others: %s)", len(match), vid, pid, match[0], strings.Join(match[1:], ", ")), nil
}
