package kernel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/outpost-edge/outpost/forge/kernel/kerneltest"
)

const ver = "6.1.0-99-cloud-amd64"

func names(mods []Module) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.Name)
	}
	return out
}

func TestResolveOrdersDependenciesFirst(t *testing.T) {
	root := t.TempDir()
	if err := kerneltest.VirtioTree(root, ver); err != nil {
		t.Fatal(err)
	}
	k, err := Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != ver || k.Image != filepath.Join(root, "boot", "vmlinuz-"+ver) {
		t.Errorf("kernel = %+v", k)
	}
	// "virtio-rng" is spelled with a dash on disk; rng_core is built in.
	mods, err := k.Resolve("virtio_net", "virtio-rng", "isofs", "sr_mod", "virtio_net", "rng-core")
	if err != nil {
		t.Fatal(err)
	}
	got := names(mods)
	// Only what is asked for and needed (virtio_net does not need
	// virtio_pci), dependencies in name order, each once.
	want := []string{
		"failover", "net_failover", "virtio_ring", "virtio", "virtio_net", "virtio_rng",
		"cdrom", "isofs", "scsi_common", "scsi_mod", "sr_mod",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order\n got %v\nwant %v", got, want)
	}
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
		for _, d := range m.Depends {
			if p, ok := pos[d]; !ok || p > i {
				t.Errorf("%s loaded before its dependency %s", m.Name, d)
			}
		}
	}
	if mods[slices.Index(got, "virtio_rng")].Path != "kernel/drivers/char/hw_random/virtio-rng.ko" {
		t.Errorf("virtio_rng path %q", mods[slices.Index(got, "virtio_rng")].Path)
	}
	if !k.Builtin("rng_core") || k.Builtin("isofs") {
		t.Error("Builtin wrong")
	}

	if _, err := k.Resolve("e1000"); err == nil || !strings.Contains(err.Error(), "module e1000 not found") {
		t.Errorf("missing module: %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	root := t.TempDir()
	err := kerneltest.Tree(root, ver, map[string][]string{
		"a": {"b"}, "b": {"a"}, // a cycle
		"c": {"gone"},
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Resolve("a"); err == nil || !strings.Contains(err.Error(), "depends on itself") {
		t.Errorf("cycle: %v", err)
	}
	if _, err := k.Resolve("c"); err == nil || !strings.Contains(err.Error(), "module gone (needed by c) not found") {
		t.Errorf("missing dependency: %v", err)
	}
}

func TestOpenPicksTheVersion(t *testing.T) {
	root := t.TempDir()
	if _, err := Open(root, ""); err == nil || !strings.Contains(err.Error(), "fetch-kernel.sh") {
		t.Errorf("empty dir: %v", err)
	}
	for _, v := range []string{"6.1.0-1-cloud-amd64", "6.1.0-2-cloud-amd64"} {
		if err := kerneltest.Tree(root, v, map[string][]string{"x": nil}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(root, ""); err == nil || !strings.Contains(err.Error(), "several kernels") {
		t.Errorf("two kernels: %v", err)
	}
	k, err := Open(root, "6.1.0-2-cloud-amd64")
	if err != nil || k.Version != "6.1.0-2-cloud-amd64" {
		t.Errorf("named: %v %v", k, err)
	}
	if _, err := Open(root, "6.1.0-3-cloud-amd64"); err == nil {
		t.Error("a version that is not there was opened")
	}
}

// Newer kernels ship compressed modules; busybox insmod needs them plain.
func TestCompressedModules(t *testing.T) {
	root := t.TempDir()
	modDir := filepath.Join(root, "lib", "modules", ver, "kernel")
	if err := kerneltest.Tree(root, ver, nil); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.MkdirAll(modDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(modDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var xzBuf, gzBuf bytes.Buffer
	xw, _ := xz.NewWriter(&xzBuf)
	xw.Write(kerneltest.Module("top", "mid"))
	xw.Close()
	write("top.ko.xz", xzBuf.Bytes())
	zw, _ := zstd.NewWriter(nil)
	write("mid.ko.zst", zw.EncodeAll(kerneltest.Module("mid", "low"), nil))
	gw := gzip.NewWriter(&gzBuf)
	gw.Write(kerneltest.Module("low"))
	gw.Close()
	write("low.ko.gz", gzBuf.Bytes())

	k, err := Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := k.Resolve("top")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(mods); !slices.Equal(got, []string{"low", "mid", "top"}) {
		t.Errorf("order %v", got)
	}
	data, err := k.ReadModule(mods[2].Path)
	if err != nil || !bytes.Equal(data, kerneltest.Module("top", "mid")) {
		t.Errorf("decompressed top: %v", err)
	}
}

// deb builds a Debian package (an ar archive) around a data.tar.xz of
// entries.
func deb(t *testing.T, path string, entries []*tar.Header, bodies map[string]string) {
	t.Helper()
	var tb bytes.Buffer
	xw, err := xz.NewWriter(&tb)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(xw)
	for _, h := range entries {
		body := bodies[h.Name]
		h.Size = int64(len(body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	xw.Close()
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	member := func(name string, data []byte) {
		b.WriteString(padRight(name, 16) + padRight("0", 12) + padRight("0", 6) + padRight("0", 6) + padRight("100644", 8) + padRight(strconv.Itoa(len(data)), 10) + "`\n")
		b.Write(data)
		if len(data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.xz", []byte("x")) // odd length: the padding is exercised
	member("data.tar.xz", tb.Bytes())
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func padRight(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }

func TestOpenDeb(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "linux-image-test_1_amd64.deb")
	mod := string(kerneltest.Module("virtio"))
	deb(t, p, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./boot/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./boot/vmlinuz-" + ver, Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./lib/modules/" + ver + "/kernel/drivers/virtio/virtio.ko", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./usr/share/doc/x/copyright", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./usr/share/doc/y", Typeflag: tar.TypeSymlink, Linkname: "x"},
		{Name: "./usr/share/doc/z", Typeflag: tar.TypeLink, Linkname: "./usr/share/doc/x/copyright"},
	}, map[string]string{
		"./boot/vmlinuz-" + ver: "kernel",
		"./lib/modules/" + ver + "/kernel/drivers/virtio/virtio.ko": mod,
		"./usr/share/doc/x/copyright":                               "GPL",
	})
	cache := filepath.Join(dir, "cache")
	k, err := OpenDeb(p, cache)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(k.Image); string(b) != "kernel" {
		t.Errorf("kernel image %q", b)
	}
	if mods, err := k.Resolve("virtio"); err != nil || len(mods) != 1 {
		t.Errorf("resolve: %v %v", mods, err)
	}
	x := filepath.Join(cache, "linux-image-test_1_amd64")
	if l, _ := os.Readlink(filepath.Join(x, "usr/share/doc/y")); l != "x" {
		t.Errorf("symlink -> %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(x, "usr/share/doc/z")); string(b) != "GPL" {
		t.Errorf("hard link: %q", b)
	}
	// The second open uses the extraction: the package may be gone.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDeb(p, cache); err != nil {
		t.Errorf("cached open: %v", err)
	}
}

func TestExtractDebRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	for name, h := range map[string]*tar.Header{
		"dotdot": {Name: "./../evil", Typeflag: tar.TypeReg, Mode: 0o644},
		"link":   {Name: "./x", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"},
	} {
		p := filepath.Join(dir, name+".deb")
		deb(t, p, []*tar.Header{h}, nil)
		if err := ExtractDeb(p, filepath.Join(dir, name)); err == nil || !strings.Contains(err.Error(), "leaves the target directory") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
		t.Error("file written outside the target")
	}
	p := filepath.Join(dir, "not.deb")
	os.WriteFile(p, []byte("hello"), 0o644)
	if err := ExtractDeb(p, filepath.Join(dir, "n")); err == nil || !strings.Contains(err.Error(), "not a Debian package") {
		t.Errorf("not a deb: %v", err)
	}
}

// The real cloud kernel package, when scripts/fetch-kernel.sh has cached
// it: the pure-Go extraction must find what dpkg-deb finds.
func TestRealKernelDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("extracts a 27 MB package")
	}
	cache := os.Getenv("OUTPOST_BOOT_CACHE")
	if cache == "" {
		home, _ := os.UserCacheDir()
		cache = filepath.Join(home, "outpost", "boot")
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "debs", "linux-image-*.deb"))
	if len(debs) == 0 {
		t.Skip("no kernel package cached (scripts/fetch-kernel.sh)")
	}
	k, err := OpenDeb(debs[0], t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mods, err := k.Resolve("virtio_pci", "virtio_net", "ata_piix", "sr_mod", "isofs")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(mods); !slices.Contains(got, "virtio_ring") || !slices.Contains(got, "libata") || !slices.Contains(got, "cdrom") {
		t.Errorf("modules %v", got)
	}
	if dpkg, err := Open(filepath.Join(cache, "kernel"), ""); err == nil && dpkg.Version != k.Version {
		t.Errorf("dpkg-deb extracted %s, we %s", dpkg.Version, k.Version)
	}
}

func TestIsStatic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "static")
	if err := kerneltest.StaticBinary(p); err != nil {
		t.Fatal(err)
	}
	if ok, err := IsStatic(p); !ok || err != nil {
		t.Errorf("static binary: %v %v", ok, err)
	}
	d := filepath.Join(t.TempDir(), "dynamic")
	if err := kerneltest.DynamicBinary(d); err != nil {
		t.Fatal(err)
	}
	if ok, err := IsStatic(d); ok || err != nil {
		t.Errorf("dynamic binary: %v %v", ok, err)
	}
	if _, err := IsStatic(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing file accepted")
	}
}
