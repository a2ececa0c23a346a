package usbtest

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Initramfs writes a newc cpio archive, the format the kernel unpacks into its rootfs.
// Parent directories are added as needed; every entry is owned by root.
type Initramfs struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

// NewInitramfs writes an archive to w; Close writes its trailer.
func NewInitramfs(w io.Writer) *Initramfs {
	return &Initramfs{w: w, ino: 1, dirs: map[string]bool{".": true, "/": true}}
}

// Newc mode bits (stat(2)).
const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
	modeChar = 0o020000
)

// File adds a regular file with permission bits perm.
func (a *Initramfs) File(name string, perm fs.FileMode, data []byte) error {
	a.parents(name)
	a.entry(name, modeFile|uint32(perm.Perm()), 0, 0, data)
	return a.err
}

// Symlink adds a symbolic link name → target.
func (a *Initramfs) Symlink(name, target string) error {
	a.parents(name)
	a.entry(name, modeLink|0o777, 0, 0, []byte(target))
	return a.err
}

// CharDev adds a character device node.
func (a *Initramfs) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	a.parents(name)
	a.entry(name, modeChar|uint32(perm.Perm()), major, minor, nil)
	return a.err
}

// Dir adds a directory (and its parents).
func (a *Initramfs) Dir(name string) error {
	name = clean(name)
	if a.dirs[name] {
		return a.err
	}
	a.parents(name)
	a.dirs[name] = true
	a.entry(name, modeDir|0o755, 0, 0, nil)
	return a.err
}

func (a *Initramfs) parents(name string) {
	if d := path.Dir(clean(name)); !a.dirs[d] {
		a.Dir(d)
	}
}

// Close writes the trailer; it does not close the writer.
func (a *Initramfs) Close() error {
	a.entry("TRAILER!!!", 0, 0, 0, nil)
	return a.err
}

func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

func (a *Initramfs) entry(name string, mode, rmajor, rminor uint32, data []byte) {
	if a.err != nil {
		return
	}
	if name != "TRAILER!!!" {
		name = clean(name)
	}
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		a.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	a.ino++
	buf := make([]byte, 0, len(hdr)+len(name)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	if _, err := a.w.Write(buf); err != nil {
		a.err = err
		return
	}
	if len(data) == 0 {
		return
	}
	if _, err := a.w.Write(data); err != nil {
		a.err = err
		return
	}
	if n := len(data) % 4; n != 0 {
		_, a.err = a.w.Write(make([]byte, 4-n))
	}
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
