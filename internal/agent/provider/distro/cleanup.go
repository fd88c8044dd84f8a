package distro

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
)

// Cleanup is what stopping a distro's service leaves running or mounted,
// and what k3s-killall.sh and rke2-killall.sh take away: container shims,
// mounts, network interfaces and iptables rules of the cluster.
type Cleanup struct {
	// Shims is a pkill -f pattern for the container shims of the distro's
	// containerd, which outlive it by design.
	Shims string
	// Mounts are host path prefixes: everything mounted under them is
	// unmounted, innermost first.
	Mounts []string
	// Interfaces are deleted when present.
	Interfaces []string
}

// KubeletMounts are mounted by every kubelet for pod volumes and network
// namespaces.
var KubeletMounts = []string{"/var/lib/kubelet/pods", "/var/lib/kubelet/plugins", "/run/netns/cni-"}

// CNIInterfaces are the interfaces the distros' own CNIs and the CNI packs
// (flannel, calico, cilium) and kube-proxy in IPVS mode create.
var CNIInterfaces = []string{
	"cni0", "flannel.1", "flannel-v6.1", "flannel-wg", "flannel-wg-v6",
	"vxlan.calico", "vxlan-v6.calico", "kube-ipvs0",
	"cilium_host", "cilium_net", "cilium_vxlan",
}

// CNIPaths are the CNI configuration, plugins and state of the cluster.
var CNIPaths = []string{"/etc/cni", "/opt/cni", "/var/lib/cni", "/run/flannel", "/var/lib/calico", "/var/run/calico"}

// KubeletPaths are the kubelet's state and the pods' logs.
var KubeletPaths = []string{"/var/lib/kubelet", "/var/log/pods", "/var/log/containers"}

// iptablesMarks are what the rules of Kubernetes and its CNIs contain.
var iptablesMarks = []string{"KUBE-", "CNI-", "cali-", "cali:", "FLANNEL", "flannel", "CILIUM"}

// Clean kills, unmounts and deletes what c names. It is best effort, as
// the upstream killall scripts are: what fails is logged, and the files
// are removed after it whatever happened.
func (e *Env) Clean(ctx context.Context, c Cleanup) {
	if c.Shims != "" {
		// pkill exits 1 when nothing matched, which is the usual case on
		// a second run.
		if _, err := e.Run.Run(ctx, "pkill", "-KILL", "-f", c.Shims); err != nil && hostexec.ExitCode(err) != 1 {
			e.Log.Warn("kill container shims", "error", err)
		}
	}
	for _, m := range e.mountsUnder(c.Mounts) {
		if _, err := e.Run.Run(ctx, "umount", "-f", m); err != nil {
			e.Log.Warn("unmount", "path", m, "error", err)
		}
	}
	for _, ifc := range c.Interfaces {
		if !e.Exists("/sys/class/net/" + ifc) {
			continue
		}
		if _, err := e.Run.Run(ctx, "ip", "link", "delete", ifc); err != nil {
			e.Log.Warn("delete interface", "interface", ifc, "error", err)
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		e.cleanRules(ctx, tool)
	}
}

// cleanRules drops the cluster's rules and keeps the site's own.
func (e *Env) cleanRules(ctx context.Context, tool string) {
	saved, err := e.Run.Run(ctx, tool+"-save")
	if err != nil {
		e.Log.Warn("read firewall rules", "tool", tool, "error", err)
		return
	}
	var keep []string
	dropped := false
	for _, l := range strings.SplitAfter(saved, "\n") {
		if slices.ContainsFunc(iptablesMarks, func(m string) bool { return strings.Contains(l, m) }) {
			dropped = true
			continue
		}
		keep = append(keep, l)
	}
	if !dropped {
		return
	}
	if _, err := e.Run.RunCmd(ctx, hostexec.Cmd{Name: tool + "-restore", Stdin: strings.Join(keep, "")}); err != nil {
		e.Log.Warn("restore firewall rules", "tool", tool, "error", err)
	}
}

// mountsUnder lists the mount points under the prefixes, from
// /proc/self/mounts, innermost first.
func (e *Env) mountsUnder(prefixes []string) []string {
	data, err := e.Root.ReadFile("/proc/self/mounts")
	if err != nil || len(prefixes) == 0 {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		mp := unescapeMount(f[1])
		for _, p := range prefixes {
			// A prefix ending in "-" is a name prefix (/run/netns/cni-),
			// any other a directory.
			if mp == p || strings.HasPrefix(mp, p+"/") || (strings.HasSuffix(p, "-") && strings.HasPrefix(mp, p)) {
				if !slices.Contains(out, mp) {
					out = append(out, mp)
				}
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int {
		if d := strings.Count(b, "/") - strings.Count(a, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return out
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040 for a
// space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
