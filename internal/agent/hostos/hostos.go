package hostos

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/outpost-edge/outpost/pki"
)

// Root is the directory that stands for the host's "/". The zero value and
// "/" are the real host.
type Root struct {
	Dir string
}

// IsHost reports whether r is the real host rather than a fake tree. Some
// facts (live network addresses, the kernel's hostname) exist only there.
func (r Root) IsHost() bool {
	return r.Dir == "" || filepath.Clean(r.Dir) == "/"
}

// Path maps a host path to where it lives under r. The host path is cleaned
// as if absolute first, so "../" cannot climb out of the root.
func (r Root) Path(p string) string {
	clean := filepath.Clean("/" + p)
	if r.IsHost() {
		return clean
	}
	return filepath.Join(r.Dir, clean)
}

// ReadFile reads the host file p.
func (r Root) ReadFile(p string) ([]byte, error) {
	return os.ReadFile(r.Path(p))
}

// ReadDir lists the host directory p, sorted by name.
func (r Root) ReadDir(p string) ([]fs.DirEntry, error) {
	return os.ReadDir(r.Path(p))
}

// Stat describes the host file p, following symlinks.
func (r Root) Stat(p string) (fs.FileInfo, error) {
	return os.Stat(r.Path(p))
}

// WriteFileAtomic replaces the host file p so that a crash leaves the old or
// the new content, never a torn file; missing parents are created.
func (r Root) WriteFileAtomic(p string, data []byte, mode fs.FileMode) error {
	return pki.WriteFileAtomic(r.Path(p), data, mode)
}

// MkdirAll creates the host directory p and its parents.
func (r Root) MkdirAll(p string, mode fs.FileMode) error {
	if err := os.MkdirAll(r.Path(p), mode); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	return nil
}
