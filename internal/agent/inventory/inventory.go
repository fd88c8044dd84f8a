package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/hostid"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
)

// PathAddresses is where a fake root lists NIC addresses, one "nic
// addr/prefix" per line, since a fake tree has no kernel to ask.
const PathAddresses = "/run/outpost/addresses"

// skipBlock are block devices that are not disks.
var skipBlock = []string{"loop", "ram", "zram"}

// skipNIC are interfaces that containers and CNIs create and remove all the
// time; reporting them would change the inventory with every pod.
var skipNIC = []string{
	"lo", "veth", "cni", "flannel", "cali", "cilium", "lxc", "docker", "kube-",
	"vxlan", "tunl", "weave", "genev", "nodelocaldns", "virbr", "tap", "tun",
}

// Collect reads the host's inventory under root. agentVersion is accepted
// for callers that report it alongside (v1.Inventory has no field for it:
// the agent version travels in the enroll and heartbeat requests).
//
// Missing sources leave their fields empty rather than failing, because a
// partial inventory is still useful; only a root that cannot be read at all
// is an error.
func Collect(root hostos.Root, agentVersion string) (*v1.Inventory, error) {
	_ = agentVersion
	if _, err := root.Stat("/"); err != nil {
		return nil, fmt.Errorf("inventory of %s: %w", root.Path("/"), err)
	}
	inv := &v1.Inventory{
		Arch:        runtime.GOARCH,
		Hostname:    hostname(root),
		OS:          osInfo(root),
		CPU:         cpu(root),
		MemoryMiB:   memoryMiB(root),
		Serial:      hostid.DMISerial(root),
		ProductUUID: strings.ToLower(hostid.DMIProductUUID(root)),
	}
	var err error
	if inv.Disks, err = disks(root); err != nil {
		return nil, err
	}
	if inv.NICs, err = nics(root); err != nil {
		return nil, err
	}
	return inv, nil
}

// Hash is v1.Inventory.Hash: the hex sha256 of inv's JSON, the same
// function the hub uses. encoding/json writes struct fields in declaration
// order and Collect sorts every list, so equal inventories hash equal.
func Hash(inv *v1.Inventory) string {
	return inv.Hash()
}

func readTrim(root hostos.Root, p string) string {
	b, err := root.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func hostname(root hostos.Root) string {
	if h := readTrim(root, "/etc/hostname"); h != "" {
		return h
	}
	if root.IsHost() {
		if h, err := os.Hostname(); err == nil {
			return h
		}
	}
	return ""
}

func osInfo(root hostos.Root) v1.OSInfo {
	var o v1.OSInfo
	b, err := root.ReadFile("/etc/os-release")
	if err != nil {
		b, _ = root.ReadFile("/usr/lib/os-release")
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		switch k {
		case "NAME":
			o.Name = v
		case "VERSION_ID":
			o.Version = v
		}
	}
	o.KernelVersion = readTrim(root, "/proc/sys/kernel/osrelease")
	return o
}

// cpu counts logical processors, as Kubernetes does, and takes the model
// from the x86 "model name" or the names ARM kernels use.
func cpu(root hostos.Root) v1.CPU {
	var c v1.CPU
	// Keys naming the model, best first: x86, ARM boards, MIPS, ARM SoCs.
	modelKeys := []string{"model name", "Model", "cpu model", "Hardware"}
	best := len(modelKeys)
	b, _ := root.ReadFile("/proc/cpuinfo")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "processor" {
			c.Cores++
		} else if i := slices.Index(modelKeys, k); i >= 0 && i < best && v != "" {
			c.Model, best = v, i
		}
	}
	if c.Cores == 0 && root.IsHost() {
		c.Cores = runtime.NumCPU()
	}
	return c
}

func memoryMiB(root hostos.Root) int64 {
	b, _ := root.ReadFile("/proc/meminfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
}

func disks(root hostos.Root) ([]v1.Disk, error) {
	entries, err := root.ReadDir("/sys/block")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var out []v1.Disk
	for _, e := range entries {
		name := e.Name()
		if hasAnyPrefix(name, skipBlock) {
			continue
		}
		d := v1.Disk{Name: name}
		// size is always in 512-byte sectors, whatever the device's own
		// sector size.
		if n, err := strconv.ParseInt(readTrim(root, "/sys/block/"+name+"/size"), 10, 64); err == nil {
			d.SizeBytes = n * 512
		}
		d.Removable = readTrim(root, "/sys/block/"+name+"/removable") == "1"
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b v1.Disk) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func nics(root hostos.Root) ([]v1.NIC, error) {
	entries, err := root.ReadDir("/sys/class/net")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	addrs := fakeAddresses(root)
	var out []v1.NIC
	for _, e := range entries {
		name := e.Name()
		if hasAnyPrefix(name, skipNIC) {
			continue
		}
		n := v1.NIC{
			Name: name,
			MAC:  strings.ToLower(readTrim(root, "/sys/class/net/"+name+"/address")),
			Up:   readTrim(root, "/sys/class/net/"+name+"/operstate") == "up",
		}
		if root.IsHost() {
			n.Addresses = liveAddresses(name)
		} else {
			n.Addresses = addrs[name]
		}
		slices.Sort(n.Addresses)
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b v1.NIC) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// liveAddresses asks the kernel, leaving out IPv6 link-local addresses:
// every NIC has one and they say nothing about where the host is reachable.
func liveAddresses(name string) []string {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	as, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		out = append(out, p.String())
	}
	return out
}

func fakeAddresses(root hostos.Root) map[string][]string {
	b, err := root.ReadFile(PathAddresses)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if _, err := netip.ParsePrefix(f[1]); err != nil {
			continue
		}
		out[f[0]] = append(out[f[0]], f[1])
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
