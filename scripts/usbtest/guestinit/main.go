//go:build linux

// Command guestinit is /init of the throw-away QEMU guest that runs the real-USB tests
// (DESIGN.md, "Virtual devices", USB). It mounts what the tests need, loads the kernel
// modules listed in /modules.load (in order: the host resolved their dependencies), runs
// the command in /guest.cmd, prints "@@EXIT <status>" on the console and powers off.
//
// Static (CGO_ENABLED=0): the initramfs has no C library for it, only the one the
// test binary brings.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	start := time.Now()
	status := run()
	fmt.Printf("@@EXIT %d\n", status)
	unix.Sync()
	// Power off rather than return: init returning panics the kernel, which QEMU
	// would report as a crash, not as the tests' outcome.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Println("@@LOG power off:", err, "after", time.Since(start))
	}
	select {}
}

func run() int {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"tmpfs", "/run", "tmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			fmt.Printf("@@LOG mount %s: %v\n", m.dst, err)
			return 90
		}
	}
	// The kernel gave init the console only if /dev/console was in the initramfs; make
	// sure output reaches the serial port either way.
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		unix.Dup2(int(c.Fd()), 0)
		unix.Dup2(int(c.Fd()), 1)
		unix.Dup2(int(c.Fd()), 2)
	}
	fmt.Printf("@@BOOT %s\n", uptime())
	if err := loadModules("/modules.load"); err != nil {
		fmt.Println("@@LOG", err)
		return 91
	}
	if err := unix.Mount("configfs", "/sys/kernel/config", "configfs", 0, ""); err != nil && err != unix.EBUSY {
		fmt.Println("@@LOG mount configfs:", err)
		return 92
	}
	fmt.Printf("@@READY %s\n", uptime())
	b, err := os.ReadFile("/guest.cmd")
	if err != nil {
		fmt.Println("@@LOG", err)
		return 93
	}
	// guest.cmd: NAME=value words (the environment), then the command and its arguments.
	env := []string{"PATH=/bin", "HOME=/tmp", "TMPDIR=/tmp"}
	args := strings.Fields(string(b))
	for len(args) > 0 && strings.Contains(args[0], "=") {
		env, args = append(env, args[0]), args[1:]
	}
	if len(args) == 0 {
		fmt.Println("@@LOG /guest.cmd names no command")
		return 93
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.Env = env
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Println("@@LOG", err)
		return 94
	}
	return 0
}

// loadModules loads each module named in file (one path per line, optional parameters
// after it) with finit_module; one already loaded or built in is fine.
func loadModules(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path, params, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if path == "" {
			continue
		}
		m, err := os.Open(path)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(m.Fd()), params, 0)
		m.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("load %s: %w", path, err)
		}
	}
	return sc.Err()
}

func uptime() string {
	b, _ := os.ReadFile("/proc/uptime")
	s, _, _ := strings.Cut(string(b), " ")
	return s + "s"
}
