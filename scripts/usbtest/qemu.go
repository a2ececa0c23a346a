package usbtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Guest is one QEMU run of the test guest.
type Guest struct {
	QEMU    string   // qemu-system-x86_64
	Kernel  string   // vmlinuz
	Initrd  string   // the Initramfs
	Devices []string // -device arguments, e.g. "qemu-xhci,id=xhci"
	Dir     string   // for the QMP socket
	Log     io.Writer
	// Host handles a "@@HOST ..." line of the guest (the words after @@HOST); an error
	// ends the run.
	Host func(ctx context.Context, q *QMP, words []string) error
}

// Result is what a run of the guest said.
type Result struct {
	Exit        int           // the guest command's status; -1 if the guest never said
	Boot, Ready time.Duration // guest uptime when /init started, and when modules were loaded
	Wall        time.Duration // from starting QEMU to its exit
}

// Run boots the guest and serves its host commands until it powers off or ctx ends.
func (g *Guest) Run(ctx context.Context) (Result, error) {
	res := Result{Exit: -1}
	start := time.Now()
	sock := filepath.Join(g.Dir, "qmp.sock")
	args := []string{
		"-M", "pc", "-accel", "tcg", "-m", "512", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "stdio",
		"-qmp", "unix:" + sock + ",server=on,wait=off",
		"-kernel", g.Kernel, "-initrd", g.Initrd,
		"-append", "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init",
	}
	for _, d := range g.Devices {
		args = append(args, "-device", d)
	}
	cmd := exec.CommandContext(ctx, g.QEMU, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	cmd.Stderr = g.Log
	if err := cmd.Start(); err != nil {
		return res, err
	}
	// Whatever happens below, QEMU is gone when Run returns.
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	q, err := DialQMP(ctx, sock)
	if err != nil {
		return res, err
	}
	defer q.Close()

	// Host commands run one at a time, in order, beside the console reader: typing
	// takes a while, and the console must keep draining meanwhile.
	hostCmds := make(chan []string, 16)
	hostErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for words := range hostCmds {
			if err := g.Host(ctx, q, words); err != nil {
				hostErr <- fmt.Errorf("host %s: %w", strings.Join(words, " "), err)
				return
			}
		}
	}()
	defer func() {
		close(hostCmds)
		wg.Wait()
	}()

	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(g.Log, line)
		i := strings.Index(line, "@@")
		if i < 0 {
			continue
		}
		words := strings.Fields(line[i+2:])
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "BOOT", "READY":
			if len(words) > 1 {
				d, _ := time.ParseDuration(words[1])
				if words[0] == "BOOT" {
					res.Boot = d
				} else {
					res.Ready = d
				}
			}
		case "HOST":
			select {
			case hostCmds <- words[1:]:
			case err := <-hostErr:
				return res, err
			}
		case "EXIT":
			if len(words) > 1 {
				res.Exit, _ = strconv.Atoi(words[1])
			}
		}
		select {
		case err := <-hostErr:
			return res, err
		default:
		}
	}
	werr := cmd.Wait()
	res.Wall = time.Since(start)
	if ctx.Err() != nil {
		return res, fmt.Errorf("guest: %w", ctx.Err())
	}
	if res.Exit < 0 {
		return res, errors.Join(errors.New("guest: ended without an exit status"), werr)
	}
	return res, nil
}
