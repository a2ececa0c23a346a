//go:build !linux

package printer

import "errors"

func dialUSBLP(path string) (conn, error) {
	return nil, notConnected("opening "+path, errors.New("the usblp transport needs Linux"))
}
