package k3s

import (
	"context"
	"fmt"
	"path"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
)

// Pack is the distro pack this provider installs.
const Pack = "k3s"

// Host paths.
const (
	BinPath         = "/usr/local/bin/k3s"
	ConfigDir       = "/etc/rancher/k3s"
	DataDir         = "/var/lib/rancher/k3s"
	AdminKubeconfig = ConfigDir + "/k3s.yaml"
	AgentKubeconfig = DataDir + "/agent/kubelet.kubeconfig"
	PodManifests    = DataDir + "/agent/pod-manifests"
	KubeVIPManifest = PodManifests + "/kube-vip.yaml"
	ServerUnit      = "k3s.service"
	AgentUnit       = "k3s-agent.service"
	// Port is where servers listen for joining nodes (the supervisor and
	// the API share it).
	Port = 6443
)

// serverOnly are k3s server flags that the built-in pack's values and
// presets set; an agent would skip them with a warning at every start.
var serverOnly = []string{
	"cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain",
	"write-kubeconfig-mode", "secrets-encryption", "cluster-init", "disable",
	"flannel-backend", "disable-network-policy", "tls-san", "disable-kube-proxy",
	"etcd-expose-metrics", "kube-apiserver-arg", "kube-controller-manager-arg", "kube-scheduler-arg",
}

// Provider installs, upgrades and removes k3s.
type Provider struct {
	env distro.Env
	cfg distro.RancherConfig
}

var _ engine.Distro = (*Provider)(nil)

// New returns the k3s provider working on env.
func New(env distro.Env) *Provider {
	return &Provider{
		env: env.WithDefaults(),
		cfg: distro.RancherConfig{Pack: Pack, Dir: ConfigDir, Port: Port, ClusterInit: true, ServerOnly: serverOnly},
	}
}

// Name is the pack's name.
func (p *Provider) Name() string { return Pack }

func unitFor(role string) string {
	if distro.IsServer(role) {
		return ServerUnit
	}
	return AgentUnit
}

func unitPath(unit string) string { return path.Join(distro.SystemdDir, unit) }

func (p *Provider) kube(role string) distro.Kube {
	k := distro.Kube{Env: &p.env, Kubectl: []string{BinPath, "kubectl"}, Kubeconfig: AdminKubeconfig}
	if !distro.IsServer(role) {
		k.Kubeconfig = AgentKubeconfig
	}
	return k
}

// Check reads the provider's state; a remove is done only when nothing of
// k3s is left on the host either.
func (p *Provider) Check(_ context.Context, a engine.DistroAction) (bool, error) {
	return p.env.CheckState(Pack, BinPath, leftovers(), a)
}

// leftovers are what remove takes away and Check looks for.
func leftovers() []string {
	return []string{BinPath, unitPath(ServerUnit), unitPath(AgentUnit), ConfigDir, DataDir}
}

// Apply does the action.
func (p *Provider) Apply(ctx context.Context, a engine.DistroAction) error {
	switch a.Op {
	case engine.DistroInstall:
		return p.install(ctx, a, false)
	case engine.DistroUpgrade:
		return p.install(ctx, a, true)
	case engine.DistroRemove:
		return p.remove(ctx, a)
	}
	return distro.Unknown(Pack, a.Op)
}

// install installs k3s for a, or with upgrade replaces the k3s that runs.
func (p *Provider) install(ctx context.Context, a engine.DistroAction, upgrade bool) error {
	e := &p.env
	art, err := e.Artifact(a.Layer, "k3s")
	if err != nil {
		return err
	}
	rendered, err := p.cfg.Render(a)
	if err != nil {
		return err
	}
	vip, err := p.kubeVIP(a)
	if err != nil {
		return err
	}
	unit := unitFor(a.Role)
	return e.RunInstall(ctx, distro.Install{
		Action:    a,
		Upgrade:   upgrade,
		Artifacts: []v1.Artifact{art},
		Place: func(_ context.Context, local []string) ([]string, error) {
			_, err := e.InstallFile(local[0], BinPath, distro.ModeExec)
			return nil, err
		},
		Configure: func(ctx context.Context) error {
			if _, err := p.cfg.Write(e, rendered); err != nil {
				return err
			}
			if vip != nil {
				if _, err := e.WriteFile(KubeVIPManifest, vip, distro.ModeSecret); err != nil {
					return err
				}
			} else if err := e.Remove(KubeVIPManifest); err != nil {
				return err
			}
			return p.writeUnit(ctx, unit)
		},
		Unit: unit,
		Kube: p.kube(a.Role),
	})
}

// kubeVIP is the kube-vip static pod for a server of a cluster with a VIP,
// nil otherwise.
func (p *Provider) kubeVIP(a engine.DistroAction) ([]byte, error) {
	if !distro.WantsKubeVIP(a) {
		return nil, nil
	}
	v, err := distro.ParseValues(a.Layer)
	if err != nil {
		return nil, err
	}
	k, err := distro.KubeVIPFor(v, a.VIP, AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	return k.Manifest(), nil
}

// writeUnit writes the unit of the role and its environment file, and
// takes away the other role's unit if an earlier install left it.
func (p *Provider) writeUnit(ctx context.Context, unit string) error {
	e := &p.env
	other := AgentUnit
	if unit == AgentUnit {
		other = ServerUnit
	}
	if e.Exists(unitPath(other)) {
		e.StopUnit(ctx, unitPath(other))
		if err := e.Remove(unitPath(other), unitPath(other)+".env"); err != nil {
			return err
		}
	}
	if _, err := e.WriteFile(unitPath(unit), unitFile(unit), distro.ModeFile); err != nil {
		return err
	}
	_, err := e.WriteFile(unitPath(unit)+".env", e.EnvFile(), distro.ModeSecret)
	return err
}

// unitFile is the unit k3s's install script writes.
func unitFile(unit string) []byte {
	typ, cmd := "notify", "server"
	if unit == AgentUnit {
		typ, cmd = "exec", "agent"
	}
	return []byte(`[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=` + typ + `
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/etc/systemd/system/` + unit + `.env
KillMode=process
Delegate=yes
User=root
# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service 2>/dev/null'
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=` + BinPath + ` ` + cmd + `
`)
}

// remove takes the node out and deletes everything k3s put on the host,
// as k3s-killall.sh and k3s-uninstall.sh would.
func (p *Provider) remove(ctx context.Context, a engine.DistroAction) error {
	e := &p.env
	st, err := e.LoadState(Pack)
	if err != nil {
		return err
	}
	role, node := a.Role, a.Node
	arts := e.Artifacts(a.Layer)
	if st != nil {
		role, node = st.Role, st.Node
		arts = append(arts, st.Artifacts...)
	}
	if role == v1.RoleControlPlane {
		// Deleting the node object takes it out of etcd too, so the
		// remaining servers keep their quorum.
		p.kube(role).DeleteNode(ctx, node)
	}
	e.StopUnit(ctx, unitPath(ServerUnit), unitPath(AgentUnit))
	e.Clean(ctx, distro.Cleanup{
		Shims:      `k3s/data/[^/]*/bin/containerd-shim`,
		Mounts:     append([]string{"/run/k3s", DataDir}, distro.KubeletMounts...),
		Interfaces: distro.CNIInterfaces,
	})
	paths := []string{
		BinPath,
		unitPath(ServerUnit), unitPath(ServerUnit) + ".env",
		unitPath(AgentUnit), unitPath(AgentUnit) + ".env",
		ConfigDir, "/etc/rancher/node", DataDir, "/run/k3s",
	}
	if err := e.Remove(slices.Concat(paths, distro.KubeletPaths, distro.CNIPaths)...); err != nil {
		return err
	}
	e.RemoveIfEmpty("/etc/rancher", "/var/lib/rancher")
	if err := e.Systemctl(ctx, "daemon-reload"); err != nil {
		e.Log.Warn("k3s remove", "error", err)
	}
	e.DropArtifacts(arts)
	if err := e.DropState(Pack); err != nil {
		return fmt.Errorf("k3s remove: %w", err)
	}
	return nil
}

// Status reads the node through the k3s API: the admin kubeconfig on
// servers, the kubelet's on agents.
func (p *Provider) Status(ctx context.Context) (engine.NodeState, error) {
	st, err := p.env.LoadState(Pack)
	if err != nil || st == nil {
		return engine.NodeState{}, err
	}
	return p.kube(st.Role).NodeStatus(ctx, st.Node, distro.IsServer(st.Role))
}
