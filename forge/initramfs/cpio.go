package initramfs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// newc ("SVR4 without CRC") is the only cpio format the kernel unpacks.
const (
	newcMagic   = "070701"
	newcHdrLen  = 110
	newcTrailer = "TRAILER!!!"
)

// File types of a cpio mode.
const (
	modeDir     = 0o040000
	modeReg     = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
	modeType    = 0o170000
)

// Entry is one member of a newc archive.
type Entry struct {
	Name string // relative, without a leading slash
	Mode uint32 // file type and permission bits, as in stat(2)
	// Data is a file's contents or a symlink's target.
	Data                 []byte
	RDevMajor, RDevMinor uint32
}

// IsDir, IsRegular and IsSymlink report the entry's type.
func (e Entry) IsDir() bool     { return e.Mode&modeType == modeDir }
func (e Entry) IsRegular() bool { return e.Mode&modeType == modeReg }
func (e Entry) IsSymlink() bool { return e.Mode&modeType == modeSymlink }

// cpioWriter writes a newc archive; it adds the parent directories of
// every entry first, as the kernel creates nothing on its own.
type cpioWriter struct {
	w    io.Writer
	n    int64
	ino  uint32
	dirs map[string]bool
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, dirs: map[string]bool{"": true, ".": true}}
}

func (c *cpioWriter) dir(name string, perm uint32) error {
	name = strings.Trim(name, "/")
	if c.dirs[name] {
		return nil
	}
	if err := c.dir(path.Dir(name), 0o755); err != nil {
		return err
	}
	c.dirs[name] = true
	return c.entry(Entry{Name: name, Mode: modeDir | perm})
}

func (c *cpioWriter) file(name string, perm uint32, data []byte) error {
	return c.add(Entry{Name: name, Mode: modeReg | perm, Data: data})
}

func (c *cpioWriter) symlink(name, target string) error {
	return c.add(Entry{Name: name, Mode: modeSymlink | 0o777, Data: []byte(target)})
}

func (c *cpioWriter) charDev(name string, perm, major, minor uint32) error {
	return c.add(Entry{Name: name, Mode: modeCharDev | perm, RDevMajor: major, RDevMinor: minor})
}

func (c *cpioWriter) add(e Entry) error {
	e.Name = strings.Trim(e.Name, "/")
	if e.Name == "" || path.Clean(e.Name) != e.Name || strings.HasPrefix(e.Name, "../") {
		return fmt.Errorf("cpio: bad name %q", e.Name)
	}
	if err := c.dir(path.Dir(e.Name), 0o755); err != nil {
		return err
	}
	return c.entry(e)
}

func (c *cpioWriter) entry(e Entry) error {
	c.ino++
	nlink := 1
	if e.IsDir() {
		nlink = 2
	}
	fields := []uint32{
		c.ino, e.Mode, 0, 0, uint32(nlink),
		0, // mtime: fixed, so the same inputs give the same archive
		uint32(len(e.Data)),
		0, 0, // device of the file itself
		e.RDevMajor, e.RDevMinor,
		uint32(len(e.Name) + 1),
		0, // check, unused by newc
	}
	var hdr strings.Builder
	hdr.WriteString(newcMagic)
	for _, f := range fields {
		fmt.Fprintf(&hdr, "%08x", f)
	}
	hdr.WriteString(e.Name)
	hdr.WriteByte(0)
	if err := c.write([]byte(hdr.String())); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if err := c.write(e.Data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return nil
}

// pad aligns to 4 bytes, as newc needs after each header+name and data.
func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

func (c *cpioWriter) close() error {
	c.ino = 0
	return c.entry(Entry{Name: newcTrailer})
}

// ReadCPIO reads a newc archive (uncompressed) and returns its entries in
// order, for checks and tests.
func ReadCPIO(r io.Reader) ([]Entry, error) {
	var out []Entry
	var off int64
	read := func(n int64) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		off += n
		return b, err
	}
	skipPad := func() error {
		if p := off % 4; p != 0 {
			_, err := read(4 - p)
			return err
		}
		return nil
	}
	for {
		hdr, err := read(newcHdrLen)
		if err != nil {
			return nil, fmt.Errorf("cpio header at %d: %w", off, err)
		}
		if string(hdr[:6]) != newcMagic {
			return nil, fmt.Errorf("cpio header at %d: magic %q is not newc", off-newcHdrLen, hdr[:6])
		}
		field := func(i int) (uint32, error) {
			v, err := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
			return uint32(v), err
		}
		var f [13]uint32
		for i := range f {
			if f[i], err = field(i); err != nil {
				return nil, fmt.Errorf("cpio header at %d: field %d: %w", off-newcHdrLen, i, err)
			}
		}
		name, err := read(int64(f[11]))
		if err != nil {
			return nil, fmt.Errorf("cpio name: %w", err)
		}
		if len(name) == 0 || name[len(name)-1] != 0 {
			return nil, errors.New("cpio name not NUL-terminated")
		}
		if err := skipPad(); err != nil {
			return nil, err
		}
		data, err := read(int64(f[6]))
		if err != nil {
			return nil, fmt.Errorf("cpio data of %s: %w", name, err)
		}
		if err := skipPad(); err != nil {
			return nil, err
		}
		e := Entry{Name: string(name[:len(name)-1]), Mode: f[1], Data: data, RDevMajor: f[9], RDevMinor: f[10]}
		if e.Name == newcTrailer {
			return out, nil
		}
		out = append(out, e)
	}
}
