package kernel

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// OpenDeb opens the kernel in a linux-image .deb, extracting it once into
// cacheDir/<name of the .deb without .deb>: a second build reuses it.
func OpenDeb(deb, cacheDir string) (*Kernel, error) {
	dir := filepath.Join(cacheDir, strings.TrimSuffix(filepath.Base(deb), ".deb"))
	stamp := filepath.Join(dir, ".extracted")
	if _, err := os.Stat(stamp); err != nil {
		// A half-done extraction (the process was stopped) has no
		// stamp: start again from an empty directory.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("kernel package %s: %w", deb, err)
		}
		if err := ExtractDeb(deb, dir); err != nil {
			return nil, err
		}
		if err := os.WriteFile(stamp, nil, 0o644); err != nil {
			return nil, fmt.Errorf("kernel package %s: %w", deb, err)
		}
	}
	return Open(dir, "")
}

// ExtractDeb unpacks the files of a Debian package (its data.tar.*) into
// dir, as `dpkg-deb -x` does. Paths that would leave dir are refused.
func ExtractDeb(deb, dir string) error {
	f, err := os.Open(deb)
	if err != nil {
		return fmt.Errorf("package %s: %w", deb, err)
	}
	defer f.Close()
	name, data, err := findDebMember(bufio.NewReader(f), "data.tar")
	if err != nil {
		return fmt.Errorf("package %s: %w", deb, err)
	}
	var r io.Reader
	switch filepath.Ext(name) {
	case ".xz":
		r, err = xz.NewReader(bufio.NewReader(data))
	case ".zst":
		var d *zstd.Decoder
		if d, err = zstd.NewReader(data); err == nil {
			defer d.Close()
			r = d
		}
	case ".gz":
		r, err = gzip.NewReader(data)
	case ".tar":
		r = data
	default:
		return fmt.Errorf("package %s: %s: unknown compression", deb, name)
	}
	if err != nil {
		return fmt.Errorf("package %s: %s: %w", deb, name, err)
	}
	if err := untar(tar.NewReader(r), dir); err != nil {
		return fmt.Errorf("package %s: %w", deb, err)
	}
	return nil
}

// findDebMember walks the ar archive a .deb is and returns the first member
// whose name starts with prefix.
func findDebMember(r *bufio.Reader, prefix string) (string, io.Reader, error) {
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "!<arch>\n" {
		return "", nil, errors.New("not a Debian package (no ar header)")
	}
	hdr := make([]byte, 60)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return "", nil, fmt.Errorf("no %s* member", prefix)
			}
			return "", nil, fmt.Errorf("ar header: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || string(hdr[58:60]) != "`\n" {
			return "", nil, fmt.Errorf("ar member %q: bad header", name)
		}
		if strings.HasPrefix(name, prefix) {
			return name, io.LimitReader(r, size), nil
		}
		// Members start on even offsets.
		if _, err := r.Discard(int(size + size%2)); err != nil {
			return "", nil, fmt.Errorf("ar member %q: %w", name, err)
		}
	}
}

func untar(tr *tar.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("data archive: %w", err)
		}
		name := filepath.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || name == "/" {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("data archive: %q leaves the target directory", h.Name)
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = writeEntry(root, name, mode, tr)
		case tar.TypeSymlink:
			if err = root.MkdirAll(filepath.Dir(name), 0o755); err == nil {
				_ = root.Remove(name)
				err = root.Symlink(h.Linkname, name)
			}
		case tar.TypeLink:
			target := filepath.Clean(strings.TrimPrefix(h.Linkname, "./"))
			if !filepath.IsLocal(target) {
				return fmt.Errorf("data archive: link %q leaves the target directory", h.Name)
			}
			if err = root.MkdirAll(filepath.Dir(name), 0o755); err == nil {
				_ = root.Remove(name)
				err = root.Link(target, name)
			}
		default:
			continue // device nodes and the like have no place in a kernel or busybox package
		}
		if err != nil {
			return fmt.Errorf("data archive: %s: %w", name, err)
		}
	}
}

func writeEntry(root *os.Root, name string, mode os.FileMode, r io.Reader) error {
	if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
