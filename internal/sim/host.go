package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Host describes a simulated machine.
type Host struct {
	// MachineID is the /etc/machine-id (32 hex digits).
	MachineID string
	Hostname  string
	Serial    string // DMI product serial; "" for none
	OSName    string
	OSVersion string
	Kernel    string
	CPUModel  string
	Cores     int
	MemoryKiB int64
	// Disks maps a block device name to its size in bytes.
	Disks map[string]int64
	// NICs maps an interface name to its MAC and CIDR address.
	NICs map[string][2]string
}

// WriteRoot lays out h under dir as the agent expects to find it.
func WriteRoot(dir string, h Host) error {
	files := map[string]string{
		"etc/machine-id":                  h.MachineID + "\n",
		"etc/hostname":                    h.Hostname + "\n",
		"etc/os-release":                  fmt.Sprintf("NAME=%q\nVERSION_ID=%q\n", h.OSName, h.OSVersion),
		"proc/meminfo":                    fmt.Sprintf("MemTotal:       %d kB\n", h.MemoryKiB),
		"proc/sys/kernel/osrelease":       h.Kernel + "\n",
		"sys/class/dmi/id/product_serial": h.Serial + "\n",
		"sys/class/dmi/id/product_uuid":   "\n",
	}
	var cpu strings.Builder
	for i := range h.Cores {
		fmt.Fprintf(&cpu, "processor\t: %d\nmodel name\t: %s\n\n", i, h.CPUModel)
	}
	files["proc/cpuinfo"] = cpu.String()
	for name, size := range h.Disks {
		files["sys/block/"+name+"/size"] = fmt.Sprintf("%d\n", size/512)
		files["sys/block/"+name+"/removable"] = "0\n"
	}
	var addrs strings.Builder
	for name, nic := range h.NICs {
		files["sys/class/net/"+name+"/address"] = nic[0] + "\n"
		files["sys/class/net/"+name+"/operstate"] = "up\n"
		fmt.Fprintf(&addrs, "%s %s\n", name, nic[1])
	}
	files["run/outpost/addresses"] = addrs.String()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("simulated host %s: %w", h.Hostname, err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return fmt.Errorf("simulated host %s: %w", h.Hostname, err)
		}
	}
	return nil
}

// Sample returns the i-th host of a varied demo fleet: small x86 boxes and
// bigger ones, as sites have them.
func Sample(i int) Host {
	kinds := []struct {
		cpu      string
		cores    int
		memGiB   int64
		diskGiB  int64
		osName   string
		osVer    string
		hostname string
	}{
		{"Intel(R) Core(TM) i5-1135G7 @ 2.40GHz", 4, 16, 256, "Ubuntu", "22.04", "nuc"},
		{"Intel(R) Celeron(R) J4125 CPU @ 2.00GHz", 4, 8, 128, "Ubuntu", "22.04", "celeron"},
		{"AMD Ryzen 7 5800U", 8, 32, 512, "openSUSE Leap", "15.5", "ryzen"},
		{"Intel(R) Xeon(R) E-2278GE CPU @ 3.30GHz", 8, 64, 1024, "Ubuntu", "24.04", "xeon"},
	}
	k := kinds[i%len(kinds)]
	return Host{
		MachineID: fmt.Sprintf("%08x%024x", 0x5eed0000+i, i*7919+1),
		Hostname:  fmt.Sprintf("%s-%02d", k.hostname, i+1),
		Serial:    fmt.Sprintf("SIM%06d", i+1),
		OSName:    k.osName, OSVersion: k.osVer, Kernel: "6.1.0-sim",
		CPUModel: k.cpu, Cores: k.cores, MemoryKiB: k.memGiB << 20,
		Disks: map[string]int64{"nvme0n1": k.diskGiB << 30},
		NICs:  map[string][2]string{"eth0": {fmt.Sprintf("02:00:5e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff), fmt.Sprintf("192.0.2.%d/24", 10+i%200)}},
	}
}
