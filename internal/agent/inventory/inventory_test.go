package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
)

const cpuinfo = `processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Celeron(R) N5105 @ 2.00GHz
cpu cores	: 4

processor	: 1
model name	: Intel(R) Celeron(R) N5105 @ 2.00GHz

processor	: 2
model name	: Intel(R) Celeron(R) N5105 @ 2.00GHz

processor	: 3
model name	: Intel(R) Celeron(R) N5105 @ 2.00GHz
`

const cpuinfoARM = `processor	: 0
BogoMIPS	: 108.00

processor	: 1
BogoMIPS	: 108.00

Hardware	: BCM2835
Model		: Raspberry Pi 4 Model B Rev 1.4
`

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// nuc is a small x86 box with an NVMe disk, a USB stick, a loop device and
// a CNI bridge that must not show up.
func nuc() map[string]string {
	return map[string]string{
		"/proc/cpuinfo":                     cpuinfo,
		"/proc/meminfo":                     "MemTotal:       16303224 kB\nMemFree:         1000 kB\n",
		"/proc/sys/kernel/osrelease":        "6.1.0-26-amd64\n",
		"/etc/os-release":                   "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"/etc/hostname":                     "store-42\n",
		"/sys/class/dmi/id/product_serial":  "G6JY1234\n",
		"/sys/class/dmi/id/product_uuid":    "0D7E3D6A-1B2C-4D5E-8F90-A1B2C3D4E5F6\n",
		"/sys/block/nvme0n1/size":           "1000215216\n",
		"/sys/block/nvme0n1/removable":      "0\n",
		"/sys/block/sda/size":               "60437492\n",
		"/sys/block/sda/removable":          "1\n",
		"/sys/block/loop0/size":             "100\n",
		"/sys/block/zram0/size":             "100\n",
		"/sys/class/net/lo/address":         "00:00:00:00:00:00\n",
		"/sys/class/net/lo/operstate":       "unknown\n",
		"/sys/class/net/enp2s0/address":     "88:AE:DD:01:02:03\n",
		"/sys/class/net/enp2s0/operstate":   "up\n",
		"/sys/class/net/wlp3s0/address":     "a4:6b:b6:01:02:03\n",
		"/sys/class/net/wlp3s0/operstate":   "down\n",
		"/sys/class/net/cni0/address":       "aa:bb:cc:dd:ee:ff\n",
		"/sys/class/net/veth1234/operstate": "up\n",
		PathAddresses:                       "# nic addr/prefix\nenp2s0 192.168.10.20/24\nenp2s0 2001:db8::20/64\nenp2s0 not-an-address\ncni0 10.42.0.1/24\n",
	}
}

func TestCollect(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  *v1.Inventory
	}{
		{
			name:  "x86 box",
			files: nuc(),
			want: &v1.Inventory{
				Hostname:    "store-42",
				Arch:        runtime.GOARCH,
				OS:          v1.OSInfo{Name: "Debian GNU/Linux", Version: "12", KernelVersion: "6.1.0-26-amd64"},
				CPU:         v1.CPU{Model: "Intel(R) Celeron(R) N5105 @ 2.00GHz", Cores: 4},
				MemoryMiB:   15921,
				Disks:       []v1.Disk{{Name: "nvme0n1", SizeBytes: 1000215216 * 512}, {Name: "sda", SizeBytes: 60437492 * 512, Removable: true}},
				NICs:        []v1.NIC{{Name: "enp2s0", MAC: "88:ae:dd:01:02:03", Up: true, Addresses: []string{"192.168.10.20/24", "2001:db8::20/64"}}, {Name: "wlp3s0", MAC: "a4:6b:b6:01:02:03"}},
				Serial:      "G6JY1234",
				ProductUUID: "0d7e3d6a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
			},
		},
		{
			name: "raspberry pi with placeholder DMI and os-release in /usr/lib",
			files: map[string]string{
				"/proc/cpuinfo":                    cpuinfoARM,
				"/proc/meminfo":                    "MemTotal:        3884 kB\n",
				"/usr/lib/os-release":              "NAME='Raspbian GNU/Linux'\nVERSION_ID=11\n",
				"/sys/class/dmi/id/product_serial": "To be filled by O.E.M.\n",
			},
			want: &v1.Inventory{
				Arch:      runtime.GOARCH,
				OS:        v1.OSInfo{Name: "Raspbian GNU/Linux", Version: "11"},
				CPU:       v1.CPU{Model: "Raspberry Pi 4 Model B Rev 1.4", Cores: 2},
				MemoryMiB: 3,
			},
		},
		{
			name:  "empty tree",
			files: map[string]string{},
			want:  &v1.Inventory{Arch: runtime.GOARCH},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			got, err := Collect(hostos.Root{Dir: dir}, "test")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Collect =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestCollectMissingRoot(t *testing.T) {
	if _, err := Collect(hostos.Root{Dir: filepath.Join(t.TempDir(), "nope")}, "test"); err == nil {
		t.Error("Collect of a missing root succeeded")
	}
}

// The hash must follow the machine: stable while nothing changes, whatever
// order the kernel lists things in, and different after a real change.
func TestHashFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, nuc())
	root := hostos.Root{Dir: dir}
	collect := func() string {
		t.Helper()
		inv, err := Collect(root, "test")
		if err != nil {
			t.Fatal(err)
		}
		return Hash(inv)
	}
	h1 := collect()
	if h2 := collect(); h1 != h2 {
		t.Fatalf("hash changed without a change: %s != %s", h1, h2)
	}
	// Address order in the file must not matter.
	writeTree(t, dir, map[string]string{PathAddresses: "enp2s0 2001:db8::20/64\nenp2s0 192.168.10.20/24\n"})
	if h := collect(); h != h1 {
		t.Errorf("reordered addresses changed the hash")
	}
	// A pod's veth appearing must not matter either.
	writeTree(t, dir, map[string]string{"/sys/class/net/veth9999/operstate": "up\n", "/sys/block/loop7/size": "8\n"})
	if h := collect(); h != h1 {
		t.Errorf("a veth or loop device changed the hash")
	}
	changes := []map[string]string{
		{PathAddresses: "enp2s0 192.168.10.21/24\nenp2s0 2001:db8::20/64\n"},
		{"/sys/class/net/wlp3s0/operstate": "up\n"},
		{"/sys/block/sdb/size": "1000\n"},
		{"/proc/meminfo": "MemTotal: 8000000 kB\n"},
	}
	prev := collect()
	for _, c := range changes {
		writeTree(t, dir, c)
		h := collect()
		if h == prev {
			t.Errorf("change %v did not change the hash", c)
		}
		prev = h
	}
	if Hash(nil) != "" {
		t.Error("Hash(nil) is not empty")
	}
}

// On the real host the collector must work without a fake tree; it only
// checks that it runs and finds the basics every Linux has.
func TestCollectRealHost(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	inv, err := Collect(hostos.Root{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPU.Cores < 1 || inv.MemoryMiB < 1 || inv.OS.KernelVersion == "" || inv.Hostname == "" {
		t.Errorf("real inventory is missing basics: %+v", inv)
	}
}
