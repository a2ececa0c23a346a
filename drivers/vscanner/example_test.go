package vscanner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ehc-agent/ehc-agent/drivers/vscanner"
)

// A line scanner behind a stable symlink; the host side here is a plain file, where a
// test would run the serial driver on the link.
func Example() {
	link := filepath.Join(os.TempDir(), fmt.Sprintf("vscanner-example-%d", os.Getpid()))
	s, err := vscanner.New(vscanner.Config{Link: link, Suffix: []byte("\r"), AIM: "]Q1", Baud: 9600})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	host, err := os.OpenFile(s.Link(), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close()

	if err := s.Send(context.Background(), []byte("EHC1:ABC")); err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 12)
	n, _ := host.Read(buf)
	for n < len(buf) {
		m, err := host.Read(buf[n:])
		if err != nil {
			break
		}
		n += m
	}
	fmt.Printf("%q\n", buf[:n])
	// Output: "]Q1EHC1:ABC\r"
}
