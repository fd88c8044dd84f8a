package initramfs

import (
	"fmt"
	"sort"
	"strings"

	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// NetworkConfig turns the network part of the settings into the lines /init
// reads with `read` (busybox sh has no YAML parser):
//
//	iface NAME dhcp
//	iface NAME static ADDRESS/PREFIX [GATEWAY]
//	nameserver IP
//
// Without interfaces it is empty and /init runs DHCP on every NIC.
// Nameservers come from the host-wide list, then the interfaces' lists,
// each once.
func NetworkConfig(ud *userdata.UserData) ([]byte, error) {
	var b strings.Builder
	names := make([]string, 0, len(ud.Network.Interfaces))
	for n := range ud.Network.Interfaces {
		names = append(names, n)
	}
	sort.Strings(names)
	var dns []string
	seen := map[string]bool{}
	addDNS := func(list []string) {
		for _, s := range list {
			if !seen[s] {
				seen[s] = true
				dns = append(dns, s)
			}
		}
	}
	addDNS(ud.Network.Nameservers)
	for _, n := range names {
		i := ud.Network.Interfaces[n]
		switch i.Type {
		case userdata.NetworkDHCP:
			fmt.Fprintf(&b, "iface %s dhcp\n", n)
		case userdata.NetworkStatic:
			p, err := i.Prefix()
			if err != nil {
				return nil, fmt.Errorf("network.interfaces.%s: %w", n, err)
			}
			fmt.Fprintf(&b, "iface %s static %s", n, p)
			if i.Gateway != "" {
				fmt.Fprintf(&b, " %s", i.Gateway)
			}
			b.WriteString("\n")
		default:
			return nil, fmt.Errorf("network.interfaces.%s: type %q", n, i.Type)
		}
		addDNS(i.Nameservers)
	}
	for _, s := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if b.Len() == 0 {
		return nil, nil
	}
	return []byte("# The network part of the Outpost site settings, for /init.\n" + b.String()), nil
}
