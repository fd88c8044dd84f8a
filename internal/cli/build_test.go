package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/outpost-edge/outpost/forge/initramfs"
	"github.com/outpost-edge/outpost/forge/iso"
	"github.com/outpost-edge/outpost/forge/kernel/kerneltest"
)

const buildSettings = `hub:
  url: https://10.0.2.2:7443
registration:
  token: ort_abc
network:
  interfaces:
    eth0: {type: static, address: 10.0.2.15/24, gateway: 10.0.2.2}
`

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildValidate(t *testing.T) {
	out, _, err := run(t, nil, "build", "validate", "-f", "../agent/userdata/testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ok: ../agent/userdata/testdata/full.yaml\n", "hub:          https://hub.example.com:7443 (trusting CA from hub.caCert)",
		"network:      eth0 static, eth1 static, wlan0 dhcp", "local UI on port 5080"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}

	// Every problem on its own line, FILE:LINE: field: message, in file
	// order; a missing key has no line of its own.
	bad := writeTemp(t, "bad.yaml", "hub:\n  url: http://hub:7443\nnetwork:\n  interfaces:\n    eth0:\n      type: static\n      address: 10.0.0.300/24\n      gateway: router\nlocalUI:\n  port: 70000\n")
	out, _, err = run(t, nil, "build", "validate", "-f", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml: 4 problems") {
		t.Errorf("err = %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		`^` + regexp.QuoteMeta(bad) + `:2: hub\.url: .*https://`,
		`^` + regexp.QuoteMeta(bad) + `:7: network\.interfaces\.eth0\.address: .*not an IP address`,
		`^` + regexp.QuoteMeta(bad) + `:8: network\.interfaces\.eth0\.gateway: .*not an IP address`,
		`^` + regexp.QuoteMeta(bad) + `:10: localUI\.port: .*between 1 and 65535, not 70000$`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	for i, w := range want {
		if !regexp.MustCompile(w).MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i, lines[i], w)
		}
		if strings.Contains(lines[i], "(line ") {
			t.Errorf("line %d repeats the line number: %q", i, lines[i])
		}
	}

	out, _, err = run(t, nil, "build", "validate", "-f", writeTemp(t, "empty.yaml", ""))
	if err == nil || !strings.HasSuffix(strings.TrimSpace(out), "empty.yaml: hub.url: is required") {
		t.Errorf("empty file: %q %v", out, err)
	}
	out, _, err = run(t, nil, "build", "validate", "-f", writeTemp(t, "syntax.yaml", "hub:\n  url: [x\n"))
	if err == nil || !regexp.MustCompile(`syntax\.yaml:\d+: yaml: `).MatchString(out) {
		t.Errorf("syntax error: %q %v", out, err)
	}
	if _, _, err := run(t, nil, "build", "validate"); err == nil || !strings.Contains(err.Error(), "-f FILE is required") {
		t.Errorf("no file: %v", err)
	}
	if _, _, err := run(t, nil, "build", "validate", "-f", filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func readISO(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := iso9660.Read(file.New(f, true), st.Size(), 0, iso.SectorSize)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(fsys.Label(), " "); got != iso.CIDataLabel {
		t.Errorf("label %q", got)
	}
	out := map[string]string{}
	entries, err := fsys.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := fsys.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestBuildCIData(t *testing.T) {
	settings := writeTemp(t, "site.yaml", buildSettings)
	out := filepath.Join(t.TempDir(), "seed.iso")
	stdout, stderr, err := run(t, nil, "build", "cidata", "--user-data", settings, "--hostname", "store-42", "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "wrote "+out+"\n" || !strings.Contains(stderr, "is valid") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	files := readISO(t, out)
	if files[iso.SettingsName] != buildSettings {
		t.Errorf("%s = %q", iso.SettingsName, files[iso.SettingsName])
	}
	if !strings.HasPrefix(files[iso.UserDataName], "#cloud-config\n") || !strings.Contains(files[iso.UserDataName], iso.SettingsPath) {
		t.Errorf("user-data:\n%s", files[iso.UserDataName])
	}
	if files[iso.MetaDataName] != "instance-id: store-42\nlocal-hostname: store-42\n" {
		t.Errorf("meta-data %q", files[iso.MetaDataName])
	}
	if !strings.Contains(files[initramfs.SeedNetwork], "iface eth0 static 10.0.2.15/24 10.0.2.2\n") {
		t.Errorf("network %q", files[initramfs.SeedNetwork])
	}

	// Given files are used as they are.
	cc := writeTemp(t, "cc.yaml", "#cloud-config\npackages: [curl]\n")
	meta := writeTemp(t, "meta", "instance-id: i-1\n")
	if _, _, err := run(t, nil, "build", "cidata", "--user-data", settings, "--cloud-config", cc, "--meta-data", meta, "-o", out); err != nil {
		t.Fatal(err)
	}
	files = readISO(t, out)
	if files[iso.UserDataName] != "#cloud-config\npackages: [curl]\n" || files[iso.MetaDataName] != "instance-id: i-1\n" {
		t.Errorf("given files not used: %v", files)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user-data", settings}, "-o SEED.iso is required"},
		{[]string{"--user-data", writeTemp(t, "bad.yaml", "hub:\n  url: ftp://x\n"), "-o", out}, "bad.yaml:2: hub.url"},
		{[]string{"--user-data", settings, "--hostname", "no_underscores", "-o", out}, `--hostname "no_underscores"`},
		{[]string{"--user-data", settings, "--hostname", "h", "--meta-data", meta, "-o", out}, "not both"},
		{[]string{"--user-data", settings, "--cloud-config", meta, "-o", out}, "does not start with #cloud-config"},
		{[]string{"-o", out}, "no user-data file given"},
	} {
		_, _, err := run(t, nil, append([]string{"build", "cidata"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestBuildISO(t *testing.T) {
	dir := t.TempDir()
	if err := kerneltest.VirtioTree(filepath.Join(dir, "kernel"), "6.1.0-99-cloud-amd64"); err != nil {
		t.Fatal(err)
	}
	busybox, agent := filepath.Join(dir, "busybox"), filepath.Join(dir, "agent")
	kerneltest.StaticBinary(busybox)
	kerneltest.StaticBinary(agent)
	syslinux := filepath.Join(dir, "syslinux")
	for _, p := range []string{"usr/lib/ISOLINUX/isolinux.bin", "usr/lib/syslinux/modules/bios/ldlinux.c32"} {
		p = filepath.Join(syslinux, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, 4096), 0o644)
	}
	settings := writeTemp(t, "site.yaml", buildSettings)
	common := []string{"build", "iso", "--kernel-dir", filepath.Join(dir, "kernel"), "--busybox", busybox, "--agent", agent}

	out := filepath.Join(dir, "outpost.iso")
	stdout, stderr, err := run(t, nil, append(common, "--user-data", settings, "--isolinux", syslinux, "-o", out)...)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "wrote "+out+"\n" {
		t.Errorf("stdout %q", stdout)
	}
	for _, step := range []string{"is valid", "kernel 6.1.0-99-cloud-amd64", "building the initramfs", "writing the ISO", "done in"} {
		if !strings.Contains(stderr, step) {
			t.Errorf("no step %q in:\n%s", step, stderr)
		}
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}

	initrd, vmlinuz := filepath.Join(dir, "initrd.img"), filepath.Join(dir, "vmlinuz")
	if _, stderr, err := run(t, nil, append(common, "--initramfs-only", initrd, "--out-kernel", vmlinuz)...); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(stderr, "will need a cidata seed") {
		t.Errorf("no warning about the missing settings:\n%s", stderr)
	}
	if _, err := initramfs.ReadFile(initrd); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{common, "give -o OUTPOST.iso or --initramfs-only"},
		{append(common, "-o", out, "--initramfs-only", initrd), "give -o OUTPOST.iso or --initramfs-only"},
		{[]string{"build", "iso", "-o", out}, "give --kernel-dir DIR"},
		{append(common, "--kernel-deb", "x.deb", "-o", out), "give --kernel-dir DIR"},
		{append(common, "--module", "e1000", "--initramfs-only", initrd), "module e1000 not found"},
		{append(common, "--user-data", writeTemp(t, "bad.yaml", "hub: {}\n"), "-o", out), "hub.url: is required"},
	} {
		_, _, err := run(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args[2:], err, tc.want)
		}
	}
}

func TestBuildInstallerArgs(t *testing.T) {
	if _, _, err := run(t, nil, "build", "installer", "--user-data", "x"); err == nil || !strings.Contains(err.Error(), "--base BASE.iso and -o OUT.iso are required") {
		t.Errorf("err = %v", err)
	}
	// The build commands' -o is the file to write; elsewhere it is still
	// the output format.
	if _, _, err := run(t, nil, "hosts", "ls", "-o", "xml", "--server", "https://hub", "--token", "t"); err == nil || !strings.Contains(err.Error(), `output format "xml"`) {
		t.Errorf("hosts ls -o: %v", err)
	}
}
