package iso

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// needTool returns the path of a Debian tool the test reads images back
// with: a skip on a developer's machine without it, a failure under CI,
// which must have installed it.
func needTool(t *testing.T, name, pkg string) string {
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

const settings = "hub:\n  url: https://hub.example.com:7443\nregistration:\n  token: ort_abc\n"

func TestWriteCIDataReadBack(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "seed.iso")
	userData := SettingsCloudConfig([]byte(settings))
	meta := MetaData("store-42")
	if err := WriteCIData(out, userData, meta, map[string][]byte{SettingsName: []byte(settings)}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{UserDataName: userData, MetaDataName: meta, SettingsName: []byte(settings)}

	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(out)
	for _, vd := range []int{16, 17} { // primary, Joliet
		d := img[vd*SectorSize:]
		if d[0] != byte(vd-15) || binary.LittleEndian.Uint32(d[80:]) != uint32(st.Size()/SectorSize) || binary.BigEndian.Uint32(d[84:]) != uint32(st.Size()/SectorSize) {
			t.Errorf("descriptor %d: type %d, volume size %d blocks, image %d bytes", vd, d[0], binary.LittleEndian.Uint32(d[80:]), st.Size())
		}
	}
	if st.Size()%SectorSize != 0 || st.Size() < (PadSectors+18)*SectorSize {
		t.Errorf("image size %d: not whole sectors, or not padded", st.Size())
	}

	// Pure Go read-back, so the layout is checked even without xorriso.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := iso9660.Read(file.New(f, true), st.Size(), 0, SectorSize)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(fsys.Label(), " "); got != CIDataLabel {
		t.Errorf("label %q, want %q", got, CIDataLabel)
	}
	for name, data := range want {
		got, err := fsys.ReadFile(name)
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s = %q, want %q", name, got, data)
		}
	}

	xorriso := needTool(t, "xorriso", "xorriso")
	pvd := run(t, xorriso, "-indev", out, "-pvd_info")
	if !strings.Contains(pvd, "Volume Id    : cidata\n") {
		t.Errorf("xorriso -pvd_info has no volume id cidata:\n%s", pvd)
	}
	if !strings.Contains(pvd, "Expir. Time  : 0000000000000000") {
		t.Errorf("expiration date not cleared:\n%s", pvd)
	}
	// Rock Ridge names, then the Joliet tree on its own.
	for _, readFS := range []string{"any", "norock"} {
		ls := run(t, xorriso, "-indev", out, "-read_fs", readFS, "-find", "/", "-type", "f", "-exec", "lsdl")
		for name := range want {
			if !strings.Contains(ls, "'/"+name+"'") {
				t.Errorf("-read_fs %s: %s not listed:\n%s", readFS, name, ls)
			}
		}
	}
	x := filepath.Join(dir, "x")
	run(t, xorriso, "-osirrox", "on", "-indev", out, "-extract", "/", x)
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(x, name))
		if err != nil {
			t.Errorf("extracted %s: %v", name, err)
		} else if !bytes.Equal(got, data) {
			t.Errorf("extracted %s = %q, want %q", name, got, data)
		}
	}

	ci := needTool(t, "cloud-init", "cloud-init")
	if out := run(t, ci, "schema", "--config-file", filepath.Join(x, UserDataName)); !strings.Contains(out, "Valid cloud-config") {
		t.Errorf("cloud-init schema: %s", out)
	}
}

// The cloud-config must carry the settings byte for byte, whatever YAML
// they hold.
func TestSettingsCloudConfig(t *testing.T) {
	cc := string(SettingsCloudConfig([]byte(settings)))
	if !strings.HasPrefix(cc, "#cloud-config\n") || !strings.Contains(cc, "path: "+SettingsPath) ||
		!strings.Contains(cc, `permissions: "0600"`) {
		t.Errorf("cloud-config:\n%s", cc)
	}
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		return // TestWriteCIDataReadBack reports the missing tool
	}
	p := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(p, []byte(cc), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, ci, "schema", "--config-file", p)
}

func TestMetaData(t *testing.T) {
	if got := string(MetaData("store-42")); got != "instance-id: store-42\nlocal-hostname: store-42\n" {
		t.Errorf("named: %q", got)
	}
	a, b := string(MetaData("")), string(MetaData(""))
	if !strings.HasPrefix(a, "instance-id: iid-outpost-") || strings.Contains(a, "local-hostname") || a == b {
		t.Errorf("unnamed: %q, %q", a, b)
	}
	for h, ok := range map[string]bool{"store-42": true, "a.b.example": true, "-x": false, "a_b": false, "": false} {
		if ValidHostname(h) != ok {
			t.Errorf("ValidHostname(%q) = %v", h, !ok)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.iso")
	for name, img := range map[string]Image{
		"no label":       {Files: []File{{Name: "a", Data: []byte("a")}}},
		"long label":     {VolumeID: strings.Repeat("x", 33)},
		"label not text": {VolumeID: "ci\ndata"},
		"dot dot":        {VolumeID: "v", Files: []File{{Name: "../a", Data: []byte("a")}}},
		"twice":          {VolumeID: "v", Files: []File{{Name: "a", Data: []byte("a")}, {Name: "/a", Data: []byte("b")}}},
		"long name":      {VolumeID: "v", Files: []File{{Name: strings.Repeat("n", 65), Data: []byte("a")}}},
		"data and src":   {VolumeID: "v", Files: []File{{Name: "a", Data: []byte("a"), Source: "/etc/hostname"}}},
		"missing src":    {VolumeID: "v", Files: []File{{Name: "a", Source: filepath.Join(dir, "nope")}}},
		"boot not there": {VolumeID: "v", Files: []File{{Name: "a", Data: []byte("a")}}, Boot: &BIOSBoot{Image: "isolinux.bin"}},
	} {
		if err := Write(out, img); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
	}
	if err := WriteCIData(out, nil, nil, map[string][]byte{"meta-data": nil}); err == nil {
		t.Error("extra meta-data accepted")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed writes left files: %v", entries)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}
