// Package trigger holds the host trigger commands of serial scanners (SCANNERS.md, Serial,
// "Host trigger"): the bytes that start and stop scanning, and the replies a scanner sends
// back that a framer must strip (framing.Config.Ignore).
//
// Pure data and byte arithmetic: no I/O. Every call returns fresh slices, which the caller
// may keep or change. Commands are at most MaxCommand bytes.
package trigger

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

// MaxCommand bounds a custom command: scanner menu commands are tens of bytes.
const MaxCommand = 256

// Commands are one scanner family's trigger commands.
type Commands struct {
	Start, Stop []byte
	Replies     [][]byte // what the scanner answers a command with, before any scan data
}

// Names are the built-in trigger types Lookup knows, in the order SCANNERS.md lists them.
func Names() []string {
	return []string{"honeywell", "newland", "gm65", "newland-2d", "ssi"}
}

// Lookup returns the commands of a built-in trigger type (case and surrounding spaces do
// not matter); custom commands come from Custom.
func Lookup(name string) (Commands, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "honeywell":
		// SYN T CR / SYN U CR.
		return Commands{Start: []byte{0x16, 'T', '\r'}, Stop: []byte{0x16, 'U', '\r'}}, nil
	case "newland":
		return Commands{
			Start:   frame7E00(cmdHeader, writeTrigger(0x01), true),
			Stop:    frame7E00(cmdHeader, writeTrigger(0x02), true),
			Replies: [][]byte{reply7E00()},
		}, nil
	case "gm65":
		// Same register, 00 to stop, and "AB CD" where the CRC would be ("no CRC").
		return Commands{
			Start:   frame7E00(cmdHeader, writeTrigger(0x01), false),
			Stop:    frame7E00(cmdHeader, writeTrigger(0x00), false),
			Replies: [][]byte{reply7E00()},
		}, nil
	case "newland-2d":
		return Commands{Start: []byte{0x1B, '1'}, Stop: []byte{0x1B, '0'}, Replies: [][]byte{{0x06}}}, nil
	case "ssi":
		// The scanner's answer is an SSI ACK packet, which the ssi framing consumes.
		return Commands{Start: []byte(ssi.StartSession), Stop: []byte(ssi.StopSession)}, nil
	}
	return Commands{}, &Error{"type", strconv.Quote(name) + " is not one of " + strings.Join(Names(), ", ") + " (or custom)"}
}

// Custom returns commands given as hex bytes ("16 54 0D", "16540d"; spaces and colons
// between bytes are allowed). Start is required; Stop may be empty for scanners that stop
// by themselves.
func Custom(startHex, stopHex string) (Commands, error) {
	start, err := parseCommand("start", startHex)
	if err != nil {
		return Commands{}, err
	}
	if len(start) == 0 {
		return Commands{}, &Error{"start", "missing"}
	}
	stop, err := parseCommand("stop", stopHex)
	if err != nil {
		return Commands{}, err
	}
	return Commands{Start: start, Stop: stop}, nil
}

// Error is a trigger configuration that cannot be used; Field is "type", "start" or "stop".
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return "trigger: " + e.Field + ": " + e.Msg }

func parseCommand(field, s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(clean)
	if err != nil {
		return nil, &Error{field, strconv.Quote(s) + " is not hex bytes such as \"16 54 0D\""}
	}
	if len(b) > MaxCommand {
		return nil, &Error{field, strconv.Itoa(len(b)) + " bytes, at most " + strconv.Itoa(MaxCommand)}
	}
	return b, nil
}

// 7E00 protocol (Newland, Grow GM65/GM861): [header 2][body…][CRC-16/XMODEM of body, big-endian].
const (
	cmdHeader   = "\x7E\x00" // host → scanner
	replyHeader = "\x02\x00" // scanner → host
)

// writeTrigger is the body writing value v to register 0x0002, the trigger register:
// 08 (write), 01 (one byte), 00 02 (address), v.
func writeTrigger(v byte) []byte { return []byte{0x08, 0x01, 0x00, 0x02, v} }

// reply7E00 is the scanner's answer to a successful write, 02 00 00 01 00 33 31: status
// 00, one byte 00, and the CRC of those three bytes.
func reply7E00() []byte { return frame7E00(replyHeader, []byte{0x00, 0x01, 0x00}, true) }

// frame7E00 frames body; without crc, AB CD stands where the CRC would be, which GM65
// modules accept as "no CRC".
func frame7E00(header string, body []byte, crc bool) []byte {
	b := append([]byte(header), body...)
	if !crc {
		return append(b, 0xAB, 0xCD)
	}
	c := CRC16XModem(body)
	return append(b, byte(c>>8), byte(c))
}

// CRC16XModem is CRC-16/XMODEM: polynomial 0x1021, initial value 0, not reflected, no
// final XOR (check value 0x31C3 for "123456789").
func CRC16XModem(p []byte) uint16 {
	var c uint16
	for _, b := range p {
		c ^= uint16(b) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
	}
	return c
}
