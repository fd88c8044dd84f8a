package distro

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

func lstat(p string) (fs.FileInfo, error) { return os.Lstat(p) }

// WriteFile puts data at the host path p with mode, atomically, unless it
// is there already; it reports whether anything changed.
func (e *Env) WriteFile(p string, data []byte, mode fs.FileMode) (bool, error) {
	local := e.Root.Path(p)
	if fi, err := os.Stat(local); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == mode.Perm() {
		if cur, err := os.ReadFile(local); err == nil && bytes.Equal(cur, data) {
			return false, nil
		}
	}
	if err := e.Root.WriteFileAtomic(p, data, mode); err != nil {
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	return true, nil
}

// InstallFile copies the local file src to the host path dst with mode,
// unless dst has that content already. It writes a temporary file and
// renames it, so a running binary is replaced, never overwritten (which
// Linux refuses with "text file busy").
func (e *Env) InstallFile(src, dst string, mode fs.FileMode) (bool, error) {
	local := e.Root.Path(dst)
	if same, err := sameContent(src, local); err != nil {
		return false, err
	} else if same {
		if fi, err := os.Stat(local); err == nil && fi.Mode().Perm() == mode.Perm() {
			return false, nil
		}
		if err := os.Chmod(local, mode); err != nil {
			return false, fmt.Errorf("install %s: %w", dst, err)
		}
		return true, nil
	}
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("install %s: %w", dst, err)
	}
	defer in.Close()
	if err := writeAtomic(local, in, mode); err != nil {
		return false, fmt.Errorf("install %s: %w", dst, err)
	}
	return true, nil
}

func writeAtomic(local string, r io.Reader, mode fs.FileMode) error {
	dir := filepath.Dir(local)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(local)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}

// writeStream puts r at local with mode unless local has that content and
// mode already; it streams, since a tarball's binaries are large for an
// edge host's memory.
func writeStream(local string, r io.Reader, mode fs.FileMode) (bool, error) {
	dir := filepath.Dir(local)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(local)+".tmp*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if fi, err := os.Lstat(local); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == mode {
		if cur, err := hashFile(local); err == nil && bytes.Equal(cur, h.Sum(nil)) {
			return false, nil
		}
	}
	return true, os.Rename(tmp.Name(), local)
}

func sameContent(a, b string) (bool, error) {
	hb, err := hashFile(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ha, err := hashFile(a)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ha, hb), nil
}

func hashFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// ExtractTarGz unpacks the gzipped tarball src (a local path) under the
// host directory dir. Each entry's name goes through rename first, which
// may drop it (keep false) or move it; names that would climb out of dir
// are refused. Regular files keep their mode, except that 0755 is the most
// they get; symlinks are kept. It returns the host paths of the files
// written and whether any changed.
func (e *Env) ExtractTarGz(src, dir string, rename func(name string) (string, bool)) ([]string, bool, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, false, fmt.Errorf("extract %s: %w", filepath.Base(src), err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, false, fmt.Errorf("extract %s: %w", filepath.Base(src), err)
	}
	tr := tar.NewReader(gz)
	var files []string
	changed := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("extract %s: %w", filepath.Base(src), err)
		}
		if slices.Contains(strings.Split(h.Name, "/"), "..") {
			return nil, false, fmt.Errorf("extract %s: entry %q climbs out of %s", filepath.Base(src), h.Name, dir)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" || name == "." {
			continue
		}
		if rename != nil {
			var keep bool
			if name, keep = rename(name); !keep {
				continue
			}
		}
		if strings.HasPrefix(path.Clean(name), "..") || path.IsAbs(name) {
			return nil, false, fmt.Errorf("extract %s: entry %q leaves %s", filepath.Base(src), h.Name, dir)
		}
		dst := path.Join(dir, name)
		local := e.Root.Path(dst)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(local, 0o755); err != nil {
				return nil, false, fmt.Errorf("extract %s: %w", filepath.Base(src), err)
			}
		case tar.TypeReg:
			mode := fs.FileMode(h.Mode).Perm() & 0o755
			c, err := writeStream(local, tr, mode)
			if err != nil {
				return nil, false, fmt.Errorf("extract %s: %s: %w", filepath.Base(src), dst, err)
			}
			changed = changed || c
			files = append(files, dst)
		case tar.TypeSymlink:
			// A link out of dir would let a later entry write through it.
			if to := path.Join(path.Dir(dst), h.Linkname); path.IsAbs(h.Linkname) || (to != dir && !strings.HasPrefix(to, strings.TrimSuffix(dir, "/")+"/")) {
				return nil, false, fmt.Errorf("extract %s: link %q -> %q leaves %s", filepath.Base(src), h.Name, h.Linkname, dir)
			}
			if cur, err := os.Readlink(local); err != nil || cur != h.Linkname {
				if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
					return nil, false, err
				}
				os.Remove(local)
				if err := os.Symlink(h.Linkname, local); err != nil {
					return nil, false, fmt.Errorf("extract %s: %w", filepath.Base(src), err)
				}
				changed = true
			}
			files = append(files, dst)
		}
	}
	slices.Sort(files)
	return files, changed, nil
}

// Remove deletes host paths, directories with all they hold; missing ones
// are fine.
func (e *Env) Remove(paths ...string) error {
	var errs []error
	for _, p := range paths {
		if p == "" || path.Clean("/"+p) == "/" {
			continue
		}
		if err := os.RemoveAll(e.Root.Path(p)); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveIfEmpty deletes host directories that hold nothing, innermost
// first as given; others stay.
func (e *Env) RemoveIfEmpty(dirs ...string) {
	for _, d := range dirs {
		os.Remove(e.Root.Path(d))
	}
}

// RemoveStale deletes the files in the host directory dir whose names
// match pattern (path.Match) and are not in keep: what an earlier render
// wrote and the current one no longer does. It reports whether it removed
// any.
func (e *Env) RemoveStale(dir, pattern string, keep []string) (bool, error) {
	entries, err := e.Root.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list %s: %w", dir, err)
	}
	removed := false
	for _, en := range entries {
		if ok, _ := path.Match(pattern, en.Name()); !ok || slices.Contains(keep, en.Name()) {
			continue
		}
		if err := e.Remove(path.Join(dir, en.Name())); err != nil {
			return removed, err
		}
		removed = true
	}
	return removed, nil
}
