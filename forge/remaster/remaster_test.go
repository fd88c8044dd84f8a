package remaster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/outpost-edge/outpost/forge/initramfs"
	"github.com/outpost-edge/outpost/forge/iso"
	"github.com/outpost-edge/outpost/forge/kernel/kerneltest"
)

const settings = "hub:\n  url: https://hub.example.com:7443\nhost:\n  labels: {variant: remastered}\n"

func xorriso(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("xorriso")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xorriso not found; CI must install it (apt-get install -y xorriso)")
		}
		t.Skip("xorriso not found (apt-get install -y xorriso)")
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

// baseISO is a small bootable ISO as a base installer: an El Torito
// no-emulation image with a boot information table (as ISOLINUX has), and
// a network file from older settings that the remaster must replace.
func baseISO(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	bootImg := bytes.Repeat([]byte("BOOT"), 2048)
	p := filepath.Join(dir, "base.iso")
	err := iso.Write(p, iso.Image{
		VolumeID: "BASE_INSTALLER",
		Files: []iso.File{
			{Name: "isolinux/isolinux.bin", Data: bootImg},
			{Name: "README.txt", Data: []byte("base\n")},
			{Name: initramfs.MediaNetwork, Data: []byte("iface eth9 static 10.9.9.9/24\n")},
		},
		Boot: &iso.BIOSBoot{Image: "isolinux/isolinux.bin", BootInfoTable: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, bootImg
}

var lbaColumn = regexp.MustCompile(`\s+\d+\s*$`)

// bootEquipment is -report_el_torito without the image's LBA, which moves
// when files are added.
func bootEquipment(t *testing.T, x, img string) string {
	var keep []string
	for _, l := range strings.Split(run(t, x, "-indev", img, "-report_el_torito", "plain"), "\n") {
		if strings.HasPrefix(l, "El Torito boot img") {
			keep = append(keep, lbaColumn.ReplaceAllString(l, ""))
		} else if strings.HasPrefix(l, "El Torito") && !strings.HasPrefix(l, "El Torito catalog") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestRemaster(t *testing.T) {
	x := xorriso(t)
	dir := t.TempDir()
	base, bootImg := baseISO(t, dir)
	agent := filepath.Join(dir, "outpost-agent")
	if err := kerneltest.StaticBinary(agent); err != nil {
		t.Fatal(err)
	}
	content := filepath.Join(dir, "content")
	os.MkdirAll(filepath.Join(content, "packs"), 0o755)
	os.WriteFile(filepath.Join(content, "packs", "k3s.tar"), []byte("pack"), 0o644)
	out := filepath.Join(dir, "site.iso")
	os.WriteFile(out, []byte("an older build"), 0o644) // replaced
	var progress bytes.Buffer
	err := Remaster(context.Background(), Options{
		Base: base, Output: out, UserData: []byte(settings), Agent: agent, Content: content, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "remastering") {
		t.Errorf("progress: %q", progress.String())
	}

	before, after := bootEquipment(t, x, base), bootEquipment(t, x, out)
	if before != after || !strings.Contains(after, "boot-info-table") || !strings.Contains(after, "/isolinux/isolinux.bin") {
		t.Errorf("boot equipment changed:\n%s\n--- now:\n%s", before, after)
	}
	if pvd := run(t, x, "-indev", out, "-pvd_info"); !strings.Contains(pvd, "Volume Id    : BASE_INSTALLER") {
		t.Errorf("volume id not kept:\n%s", pvd)
	}
	ls := run(t, x, "-indev", out, "-find", "/", "-type", "f", "-exec", "lsdl")
	for _, want := range []string{
		`-rw------- .* '/outpost/user-data.yaml'`,
		`-rwxr-xr-x .* '/outpost/outpost-agent'`,
		`'/outpost/network'`,
		`'/outpost/content/packs/k3s.tar'`,
		`'/README.txt'`,
		`'/isolinux/isolinux.bin'`,
	} {
		if !regexp.MustCompile(want).MatchString(ls) {
			t.Errorf("no %s in:\n%s", want, ls)
		}
	}
	ext := filepath.Join(dir, "x")
	run(t, x, "-osirrox", "on", "-indev", out, "-extract", "/", ext)
	check := func(name, want string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(ext, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	check(initramfs.MediaUserData, settings)
	check("README.txt", "base\n")
	check("outpost/content/packs/k3s.tar", "pack")
	if net, _ := os.ReadFile(filepath.Join(ext, initramfs.MediaNetwork)); bytes.Contains(net, []byte("iface")) {
		t.Errorf("the base's network file was kept: %q", net)
	}
	// The boot image is the base's, but for the boot information table
	// (bytes 8-63), which xorriso rewrites for the image's new place.
	img, _ := os.ReadFile(filepath.Join(ext, "isolinux/isolinux.bin"))
	if len(img) != len(bootImg) || !bytes.Equal(img[:8], bootImg[:8]) || !bytes.Equal(img[64:], bootImg[64:]) {
		t.Error("boot image changed beyond its boot information table")
	}
}

func TestRemasterRejects(t *testing.T) {
	dir := t.TempDir()
	base, _ := baseISO(t, dir)
	garbage := filepath.Join(dir, "garbage.iso")
	os.WriteFile(garbage, bytes.Repeat([]byte("not an image"), 4000), 0o644)
	dyn := filepath.Join(dir, "dyn")
	kerneltest.DynamicBinary(dyn)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"same file":    {Options{Base: base, Output: base, UserData: []byte(settings)}, "must be a new file"},
		"no output":    {Options{Base: base, UserData: []byte(settings)}, "both needed"},
		"no base":      {Options{Base: filepath.Join(dir, "none.iso"), Output: filepath.Join(dir, "o.iso"), UserData: []byte(settings)}, "no such file"},
		"not an iso":   {Options{Base: garbage, Output: filepath.Join(dir, "o.iso"), UserData: []byte(settings)}, "not an ISO9660 image"},
		"no settings":  {Options{Base: base, Output: filepath.Join(dir, "o.iso")}, "no user-data"},
		"bad settings": {Options{Base: base, Output: filepath.Join(dir, "o.iso"), UserData: []byte("hub: {url: ftp://x}\n")}, "hub.url"},
		"dyn agent":    {Options{Base: base, Output: filepath.Join(dir, "o.iso"), UserData: []byte(settings), Agent: dyn}, "dynamically linked"},
		"content file": {Options{Base: base, Output: filepath.Join(dir, "o.iso"), UserData: []byte(settings), Content: base}, "not a directory"},
		"no xorriso":   {Options{Base: base, Output: filepath.Join(dir, "o.iso"), UserData: []byte(settings), Xorriso: filepath.Join(dir, "no-xorriso")}, "xorriso is needed"},
	} {
		err := Remaster(ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o.iso")); err == nil {
		t.Error("a failed remaster left an output")
	}
}

// A base that passes for ISO9660 but that xorriso cannot load fails with
// xorriso's words and leaves nothing behind.
func TestRemasterXorrisoFails(t *testing.T) {
	xorriso(t)
	dir := t.TempDir()
	base, _ := baseISO(t, dir)
	img, _ := os.ReadFile(base)
	for i := 18 * 2048; i < len(img); i++ { // keep the descriptors, drop the tree
		img[i] = 0xff
	}
	os.WriteFile(base, img, 0o644)
	out := filepath.Join(dir, "o.iso")
	err := Remaster(context.Background(), Options{Base: base, Output: out, UserData: []byte(settings)})
	if err == nil || !strings.Contains(err.Error(), "xorriso") {
		t.Errorf("broken base: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed remaster left an output")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".remaster-*")); len(left) > 0 {
		t.Errorf("left %v", left)
	}
}
