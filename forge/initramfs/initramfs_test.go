package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-edge/outpost/forge/kernel"
	"github.com/outpost-edge/outpost/forge/kernel/kerneltest"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

const ver = "6.1.0-99-cloud-amd64"

const settings = `hub:
  url: https://10.0.2.2:7443
registration:
  token: ort_abc
network:
  interfaces:
    eth0: {type: static, address: 10.0.2.15, mask: 255.255.255.0, gateway: 10.0.2.2, nameservers: [10.0.2.3]}
    eth1: {type: dhcp}
  nameservers: [1.1.1.1, 10.0.2.3]
`

// fixture is a stand-in kernel tree and static busybox and agent.
func fixture(t *testing.T) Config {
	t.Helper()
	dir := t.TempDir()
	if err := kerneltest.VirtioTree(filepath.Join(dir, "kernel"), ver); err != nil {
		t.Fatal(err)
	}
	k, err := kernel.Open(filepath.Join(dir, "kernel"), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Kernel: k, Busybox: filepath.Join(dir, "busybox"), Agent: filepath.Join(dir, "outpost-agent")}
	for _, p := range []string{cfg.Busybox, cfg.Agent} {
		if err := kerneltest.StaticBinary(p); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func TestBuild(t *testing.T) {
	cfg := fixture(t)
	cfg.UserData = []byte(settings)
	out := filepath.Join(t.TempDir(), "initrd.img")
	if err := WriteFile(out, cfg); err != nil {
		t.Fatal(err)
	}
	entries, err := ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Entry{}
	var order []string
	for _, e := range entries {
		if _, dup := byName[e.Name]; dup {
			t.Errorf("%s twice", e.Name)
		}
		byName[e.Name] = e
		order = append(order, e.Name)
		// The kernel creates no directories: each parent comes first.
		if dir := filepath.Dir(e.Name); dir != "." {
			if p, ok := byName[dir]; !ok || !p.IsDir() {
				t.Errorf("%s comes before its directory %s", e.Name, dir)
			}
		}
	}
	file := func(name string, perm uint32) []byte {
		t.Helper()
		e, ok := byName[name]
		if !ok {
			t.Errorf("%s missing", name)
			return nil
		}
		if !e.IsRegular() || e.Mode&0o7777 != perm {
			t.Errorf("%s: mode %o, want a file with %o", name, e.Mode, perm)
		}
		return e.Data
	}
	initScript := string(file("init", 0o755))
	if !strings.HasPrefix(initScript, "#!/bin/sh\n") || strings.Contains(initScript, "@") {
		t.Errorf("/init not filled in:\n%s", initScript)
	}
	for _, want := range []string{"LABEL=cidata", "LABEL=" + MediaLabel, "/run/cidata/outpost.yaml", BakedUserData, "/run/media/" + MediaUserData} {
		if !strings.Contains(initScript, want) {
			t.Errorf("/init does not mention %s", want)
		}
	}
	file("bin/busybox", 0o755)
	file("usr/bin/outpost-agent", 0o755)
	file("etc/outpost/udhcpc.script", 0o755)
	if got := string(file("etc/outpost/user-data.yaml", 0o600)); got != settings {
		t.Errorf("baked settings %q", got)
	}
	wantNet := "iface eth0 static 10.0.2.15/24 10.0.2.2\niface eth1 dhcp\nnameserver 1.1.1.1\nnameserver 10.0.2.3\n"
	if got := string(file("etc/outpost/network", 0o644)); !strings.HasSuffix(got, wantNet) {
		t.Errorf("network file:\n%s\nwant it to end in\n%s", got, wantNet)
	}
	if sh := byName["bin/sh"]; !sh.IsSymlink() || string(sh.Data) != "busybox" {
		t.Errorf("bin/sh = %+v", sh)
	}
	if c := byName["dev/console"]; c.Mode != modeCharDev|0o600 || c.RDevMajor != 5 || c.RDevMinor != 1 {
		t.Errorf("dev/console = %+v", c)
	}
	// The module list names files in the archive, dependencies first.
	list := strings.Fields(string(file("etc/outpost/modules", 0o644)))
	if len(list) != 19 {
		t.Errorf("%d modules: %v", len(list), list)
	}
	for i, m := range list {
		if _, ok := byName[strings.TrimPrefix(m, "/")]; !ok {
			t.Errorf("module %s not in the archive", m)
		}
		if strings.HasSuffix(m, "/virtio_pci.ko") {
			for _, dep := range []string{"/virtio.ko", "/virtio_ring.ko", "/virtio_pci_modern_dev.ko"} {
				if !slices.ContainsFunc(list[:i], func(s string) bool { return strings.HasSuffix(s, dep) }) {
					t.Errorf("virtio_pci before %s", dep)
				}
			}
		}
	}
	if !strings.HasPrefix(list[0], "/lib/modules/"+ver+"/kernel/") {
		t.Errorf("module path %s", list[0])
	}

	// The same inputs give the same image (fixed times, sorted input).
	again := filepath.Join(t.TempDir(), "again.img")
	if err := WriteFile(again, cfg); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same inputs differ")
	}

	// GNU cpio reads it as we do.
	cpio := lookTool(t, "cpio", "cpio")
	gz, err := exec.Command("sh", "-c", "gzip -dc < "+out+" | "+cpio+" -it --quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -it: %v\n%s", err, gz)
	}
	if got := strings.Fields(string(gz)); !slices.Equal(got, order) {
		t.Errorf("cpio lists\n%v\nwe wrote\n%v", got, order)
	}
	verbose, err := exec.Command("sh", "-c", "gzip -dc < "+out+" | "+cpio+" -itv --quiet").CombinedOutput()
	if err != nil || !regexpMatch(`(?m)^crw------- .* 5, +1 .* dev/console$`, string(verbose)) {
		t.Errorf("cpio -itv: %v\n%s", err, verbose)
	}
}

func TestBuildWithoutSettings(t *testing.T) {
	cfg := fixture(t)
	cfg.Modules = []string{"isofs"}
	var buf bytes.Buffer
	if err := Build(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "i.img")
	os.WriteFile(p, buf.Bytes(), 0o644)
	entries, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name, "etc/outpost/user-data") || e.Name == "etc/outpost/network" {
			t.Errorf("%s baked without settings", e.Name)
		}
		if e.Name == "etc/outpost/modules" && strings.Count(string(e.Data), "\n") != 2 {
			t.Errorf("modules for isofs: %q", e.Data)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	dyn := filepath.Join(t.TempDir(), "busybox")
	if err := kerneltest.DynamicBinary(dyn); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"dynamic busybox": {func(c *Config) { c.Busybox = dyn }, "dynamically linked"},
		"no agent":        {func(c *Config) { c.Agent = "" }, "no outpost-agent binary"},
		"bad settings":    {func(c *Config) { c.UserData = []byte("hub: {url: http://x}\n") }, "hub.url"},
		"unknown module":  {func(c *Config) { c.Modules = []string{"e1000"} }, "module e1000 not found"},
		"no kernel":       {func(c *Config) { c.Kernel = nil }, "no kernel"},
	} {
		cfg := fixture(t)
		tc.edit(&cfg)
		err := WriteFile(filepath.Join(t.TempDir(), "x.img"), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestNetworkConfig(t *testing.T) {
	data, err := os.ReadFile("../../internal/agent/userdata/testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ud, err := userdata.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := NetworkConfig(ud)
	if err != nil {
		t.Fatal(err)
	}
	want := "iface eth0 static 192.168.10.20/24 192.168.10.1\n" +
		"iface eth1 static 10.1.0.5/24 10.1.0.1\n" +
		"iface wlan0 dhcp\n" +
		"nameserver 1.1.1.1\nnameserver 2606:4700:4700::1111\nnameserver 192.168.10.1\n"
	if !strings.HasSuffix(string(got), want) || !strings.HasPrefix(string(got), "# ") {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	ud, _ = userdata.Parse([]byte("hub: {url: https://hub}\n"))
	if got, err := NetworkConfig(ud); got != nil || err != nil {
		t.Errorf("no interfaces: %q %v", got, err)
	}
}

// The scripts must at least parse; busybox's ash when there is one,
// else the system's POSIX sh.
func TestScriptsParse(t *testing.T) {
	sh := []string{"sh", "-n"}
	if bb, err := exec.LookPath("busybox"); err == nil {
		sh = []string{bb, "sh", "-n"}
	}
	for name, script := range map[string]string{"init": InitScript(), "udhcpc": udhcpcScript} {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(script), 0o755)
		if out, err := exec.Command(sh[0], append(sh[1:], p)...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}

func TestReadCPIORejectsGarbage(t *testing.T) {
	if _, err := ReadCPIO(strings.NewReader(strings.Repeat("x", 200))); err == nil {
		t.Error("garbage accepted")
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	if err := c.file("../x", 0o644, nil); err == nil {
		t.Error("name leaving the root accepted")
	}
}
