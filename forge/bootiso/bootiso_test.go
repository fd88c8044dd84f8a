package bootiso

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-edge/outpost/forge/initramfs"
	"github.com/outpost-edge/outpost/forge/kernel"
	"github.com/outpost-edge/outpost/forge/kernel/kerneltest"
)

const ver = "6.1.0-99-cloud-amd64"

const settings = "hub:\n  url: https://10.0.2.2:7443\nregistration:\n  token: ort_abc\n"

// fixture returns options with a stand-in kernel, static binaries and
// ISOLINUX files laid out as Debian's packages have them.
func fixture(t *testing.T) (Options, string) {
	t.Helper()
	dir := t.TempDir()
	if err := kerneltest.VirtioTree(filepath.Join(dir, "kernel"), ver); err != nil {
		t.Fatal(err)
	}
	k, err := kernel.Open(filepath.Join(dir, "kernel"), "")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Kernel: k, Busybox: filepath.Join(dir, "busybox"), Agent: filepath.Join(dir, "agent")}
	for _, p := range []string{o.Busybox, o.Agent} {
		if err := kerneltest.StaticBinary(p); err != nil {
			t.Fatal(err)
		}
	}
	syslinux := filepath.Join(dir, "syslinux")
	for p, size := range map[string]int{"usr/lib/ISOLINUX/isolinux.bin": 38912, "usr/lib/syslinux/modules/bios/ldlinux.c32": 1000} {
		p = filepath.Join(syslinux, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, bytes.Repeat([]byte{0x90}, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return o, syslinux
}

func TestFindISOLinux(t *testing.T) {
	_, syslinux := fixture(t)
	iso, ld, err := FindISOLinux(syslinux)
	if err != nil {
		t.Fatal(err)
	}
	if iso != filepath.Join(syslinux, "usr/lib/ISOLINUX/isolinux.bin") || ld != filepath.Join(syslinux, "usr/lib/syslinux/modules/bios/ldlinux.c32") {
		t.Errorf("found %s %s", iso, ld)
	}
}

func TestBuildISO(t *testing.T) {
	o, syslinux := fixture(t)
	var err error
	if o.ISOLinux, o.LDLinux, err = FindISOLinux(syslinux); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o.UserData = []byte(settings)
	o.ExtraCmdline = "outpost.machine_id=0123456789abcdef0123456789abcdef"
	o.Output = filepath.Join(dir, "outpost.iso")
	o.InitramfsOut = filepath.Join(dir, "initrd.img")
	o.KernelOut = filepath.Join(dir, "vmlinuz")
	var progress bytes.Buffer
	o.Progress = &progress
	if err := Build(o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "writing the ISO") {
		t.Errorf("progress:\n%s", progress.String())
	}
	if b, _ := os.ReadFile(o.KernelOut); string(b) != "fake kernel "+ver {
		t.Errorf("kernel copy %q", b)
	}
	if _, err := initramfs.ReadFile(o.InitramfsOut); err != nil {
		t.Errorf("initramfs copy: %v", err)
	}

	img, err := os.ReadFile(o.Output)
	if err != nil {
		t.Fatal(err)
	}
	// El Torito: the boot record at sector 17, where BIOSes look; its
	// catalog's default entry is a no-emulation image of 4 sectors whose
	// boot information table points at the primary descriptor (16) and at
	// the image itself, which is what ISOLINUX reads to find itself.
	sector := func(n uint32) []byte { return img[int(n)*2048 : int(n+1)*2048] }
	br := sector(17)
	if br[0] != 0 || string(br[1:6]) != "CD001" || !strings.HasPrefix(string(br[7:]), "EL TORITO SPECIFICATION") {
		t.Fatalf("sector 17 is not the boot record: %q", br[:40])
	}
	cat := sector(binary.LittleEndian.Uint32(br[0x47:]))
	if cat[0] != 1 || cat[0x1e] != 0x55 || cat[0x1f] != 0xaa {
		t.Fatalf("no validation entry in the boot catalog")
	}
	entry := cat[0x20:0x40]
	if entry[0] != 0x88 || entry[1] != 0 || binary.LittleEndian.Uint16(entry[6:]) != 4 {
		t.Errorf("default entry %x: want bootable, no emulation, 4 sectors", entry)
	}
	lba := binary.LittleEndian.Uint32(entry[8:])
	boot := sector(lba)
	if pvd, self := binary.LittleEndian.Uint32(boot[8:]), binary.LittleEndian.Uint32(boot[12:]); pvd != 16 || self != lba {
		t.Errorf("boot info table: pvd %d image %d, want 16 and %d", pvd, self, lba)
	}

	xorriso := lookTool(t, "xorriso", "xorriso")
	out := run(t, xorriso, "-indev", o.Output, "-report_el_torito", "plain")
	for _, want := range []string{"El Torito img path :   1  /isolinux/isolinux.bin", "boot-info-table", "BIOS  y   none  0x0000  0x00      4"} {
		if !strings.Contains(out, want) {
			t.Errorf("-report_el_torito lacks %q:\n%s", want, out)
		}
	}
	if out := run(t, xorriso, "-indev", o.Output, "-pvd_info"); !strings.Contains(out, "Volume Id    : "+initramfs.MediaLabel) {
		t.Errorf("volume id:\n%s", out)
	}
	ls := run(t, xorriso, "-indev", o.Output, "-find", "/", "-type", "f")
	for _, f := range []string{"/boot/vmlinuz", "/boot/initrd.img", "/isolinux/isolinux.bin", "/isolinux/ldlinux.c32", "/isolinux/isolinux.cfg", "/" + initramfs.MediaUserData} {
		if !strings.Contains(ls, "'"+f+"'") {
			t.Errorf("%s not on the image:\n%s", f, ls)
		}
	}
	x := filepath.Join(dir, "x")
	run(t, xorriso, "-osirrox", "on", "-indev", o.Output, "-extract", "/isolinux/isolinux.cfg", x)
	cfg, _ := os.ReadFile(x)
	for _, want := range []string{"KERNEL /boot/vmlinuz", "INITRD /boot/initrd.img", "APPEND " + DefaultCmdline + " outpost.machine_id=0123456789abcdef0123456789abcdef", "SERIAL 0 115200"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("isolinux.cfg lacks %q:\n%s", want, cfg)
		}
	}
}

func TestBuildInitramfsOnly(t *testing.T) {
	o, _ := fixture(t)
	o.InitramfsOut = filepath.Join(t.TempDir(), "initrd.img")
	if err := Build(o); err != nil {
		t.Fatal(err)
	}
	if _, err := initramfs.ReadFile(o.InitramfsOut); err != nil {
		t.Error(err)
	}
}

func TestBuildRejects(t *testing.T) {
	o, _ := fixture(t)
	if err := Build(o); err == nil || !strings.Contains(err.Error(), "nothing to write") {
		t.Errorf("no output: %v", err)
	}
	o.Output = filepath.Join(t.TempDir(), "x.iso")
	o.UserData = []byte("hub: {}\n")
	if err := Build(o); err == nil || !strings.Contains(err.Error(), "hub.url") {
		t.Errorf("bad settings: %v", err)
	}
	o.UserData = nil
	o.ISOLinux, o.LDLinux = "/nonexistent/isolinux.bin", "/nonexistent/ldlinux.c32"
	if err := Build(o); err == nil {
		t.Error("missing isolinux.bin accepted")
	}
	if _, err := os.Stat(o.Output); err == nil {
		t.Error("a failed build left an ISO")
	}
}

func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found; CI must install it (apt-get install -y %s)", name, pkg)
		}
		t.Skipf("%s not found (apt-get install -y %s)", name, pkg)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}
