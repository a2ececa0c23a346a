//go:build !linux

package vcard

import "net"

// quickAck does nothing where delayed ACKs cannot be turned off per read.
func quickAck(net.Conn) {}
