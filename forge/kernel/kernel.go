package kernel

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Kernel is a kernel image with its modules, as laid out by its package.
type Kernel struct {
	// Root is the extracted package (the directory holding boot/ and
	// lib/modules/).
	Root string
	// Version is the module directory name, e.g. "6.1.0-56-cloud-amd64".
	Version string
	// Image is the path of the bootable image (boot/vmlinuz-VERSION).
	Image string
	// ModDir is lib/modules/VERSION under Root.
	ModDir string

	index   map[string]string // module name (with "_") -> path under ModDir
	builtin map[string]bool
}

// Module is one loadable module.
type Module struct {
	Name string
	// Path is relative to the kernel's ModDir, e.g.
	// "kernel/drivers/net/virtio_net.ko".
	Path    string
	Depends []string
}

// Open finds the kernel under root. With several versions there, the one
// named version is taken; version "" accepts only a single one, so a stale
// extraction never boots by accident.
func Open(root, version string) (*Kernel, error) {
	var versions []string
	seen := map[string]bool{}
	// On a merged-/usr system lib/modules is usr/lib/modules: the same
	// version found twice is one kernel.
	for _, modules := range []string{"lib/modules", "usr/lib/modules"} {
		entries, err := os.ReadDir(filepath.Join(root, modules))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, "boot", "vmlinuz-"+e.Name())); err == nil && !seen[e.Name()] {
				seen[e.Name()] = true
				versions = append(versions, modules+"/"+e.Name())
			}
		}
	}
	if version != "" {
		var keep []string
		for _, v := range versions {
			if filepath.Base(v) == version {
				keep = append(keep, v)
			}
		}
		if len(keep) == 0 {
			return nil, fmt.Errorf("kernel %s: no boot/vmlinuz-%s with lib/modules/%s", root, version, version)
		}
		versions = keep
	}
	switch len(versions) {
	case 0:
		return nil, fmt.Errorf("kernel %s: no boot/vmlinuz-VERSION with lib/modules/VERSION (extract a linux-image package there, e.g. with scripts/fetch-kernel.sh)", root)
	case 1:
	default:
		return nil, fmt.Errorf("kernel %s: several kernels (%s): name one", root, strings.Join(versions, ", "))
	}
	ver := filepath.Base(versions[0])
	k := &Kernel{
		Root:    root,
		Version: ver,
		Image:   filepath.Join(root, "boot", "vmlinuz-"+ver),
		ModDir:  filepath.Join(root, filepath.FromSlash(versions[0])),
	}
	if err := k.scan(); err != nil {
		return nil, err
	}
	return k, nil
}

// moduleExts are the module file endings, compressed ones included:
// Debian 12 ships plain .ko, newer kernels .ko.xz or .ko.zst.
var moduleExts = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

func moduleName(file string) (string, bool) {
	for _, ext := range moduleExts {
		if n, ok := strings.CutSuffix(file, ext); ok {
			return normalize(n), true
		}
	}
	return "", false
}

// normalize makes a module name canonical: the kernel treats "-" and "_"
// alike.
func normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

func (k *Kernel) scan() error {
	k.index = map[string]string{}
	k.builtin = map[string]bool{}
	err := filepath.WalkDir(k.ModDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if name, ok := moduleName(d.Name()); ok {
			rel, _ := filepath.Rel(k.ModDir, p)
			k.index[name] = filepath.ToSlash(rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kernel %s: modules: %w", k.Version, err)
	}
	// modules.builtin lists drivers compiled in: asking for one of those
	// is fine and needs no file.
	if b, err := os.ReadFile(filepath.Join(k.ModDir, "modules.builtin")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := moduleName(filepath.Base(strings.TrimSpace(line))); ok {
				k.builtin[name] = true
			}
		}
	}
	return nil
}

// Builtin reports whether the driver is compiled into the kernel.
func (k *Kernel) Builtin(name string) bool { return k.builtin[normalize(name)] }

// Resolve returns the modules to load for names, dependencies first, each
// once. Names that are built in are left out; a name that is neither a
// module nor built in is an error.
func (k *Kernel) Resolve(names ...string) ([]Module, error) {
	var out []Module
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = normalize(name)
		if done[name] {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("kernel %s: module %s depends on itself (through %s)", k.Version, name, from)
		}
		rel, ok := k.index[name]
		if !ok {
			if k.builtin[name] {
				done[name] = true
				return nil
			}
			if from != "" {
				return fmt.Errorf("kernel %s: module %s (needed by %s) not found", k.Version, name, from)
			}
			return fmt.Errorf("kernel %s: module %s not found and not built in", k.Version, name)
		}
		visiting[name] = true
		data, err := k.ReadModule(rel)
		if err != nil {
			return err
		}
		deps, err := depends(data)
		if err != nil {
			return fmt.Errorf("kernel %s: module %s: %w", k.Version, rel, err)
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		visiting[name] = false
		done[name] = true
		out = append(out, Module{Name: name, Path: rel, Depends: deps})
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadModule returns a module file's contents, decompressed: busybox insmod
// loads plain ELF only.
func (k *Kernel) ReadModule(rel string) ([]byte, error) {
	p := filepath.Join(k.ModDir, filepath.FromSlash(rel))
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(rel, ".ko.xz"):
		r, err = xz.NewReader(bytes.NewReader(data))
	case strings.HasSuffix(rel, ".ko.zst"):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data))
		if err == nil {
			defer d.Close()
			r = d
		}
	case strings.HasSuffix(rel, ".ko.gz"):
		r, err = gzip.NewReader(bytes.NewReader(data))
	default:
		return data, nil
	}
	if err == nil {
		data, err = io.ReadAll(r)
	}
	if err != nil {
		return nil, fmt.Errorf("kernel %s: decompress %s: %w", k.Version, rel, err)
	}
	return data, nil
}

// depends reads the "depends=" entry of a module's .modinfo section.
func depends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("not an ELF module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf(".modinfo: %w", err)
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, normalize(d))
				}
			}
			sort.Strings(deps)
			return deps, nil
		}
	}
	return nil, nil
}

// IsStatic reports whether the ELF binary at path runs without a dynamic
// loader: the initramfs has no libc, so a dynamic busybox or agent would
// fail there with nothing more than "No working init found".
func IsStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
