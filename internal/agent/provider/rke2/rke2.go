package rke2

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
)

// Pack is the distro pack this provider installs.
const Pack = "rke2"

// Host paths.
const (
	Prefix          = "/usr/local"
	BinPath         = Prefix + "/bin/rke2"
	UnitDir         = Prefix + "/lib/systemd/system"
	ConfigDir       = "/etc/rancher/rke2"
	DataDir         = "/var/lib/rancher/rke2"
	Kubectl         = DataDir + "/bin/kubectl"
	AdminKubeconfig = ConfigDir + "/rke2.yaml"
	AgentKubeconfig = DataDir + "/agent/kubelet.kubeconfig"
	KubeVIPManifest = DataDir + "/agent/pod-manifests/kube-vip.yaml"
	ServerUnit      = "rke2-server.service"
	AgentUnit       = "rke2-agent.service"
	// Port is the supervisor port joining nodes register on.
	Port = 9345
)

// tarballFiles are what every rke2 tarball holds under /usr/local: remove
// takes them away even when the state that lists them is lost.
var tarballFiles = []string{
	BinPath, Prefix + "/bin/rke2-killall.sh", Prefix + "/bin/rke2-uninstall.sh",
	UnitDir + "/" + ServerUnit, UnitDir + "/rke2-server.env",
	UnitDir + "/" + AgentUnit, UnitDir + "/rke2-agent.env",
	Prefix + "/share/rke2",
}

// serverOnly are rke2 server flags the built-in pack's values and presets
// set; an agent would skip them with a warning at every start.
var serverOnly = []string{
	"cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain",
	"write-kubeconfig-mode", "secrets-encryption", "cluster-init", "disable",
	"cni", "tls-san", "disable-kube-proxy", "etcd-expose-metrics",
	"kube-apiserver-arg", "kube-controller-manager-arg", "kube-scheduler-arg",
}

// Provider installs, upgrades and removes rke2.
type Provider struct {
	env distro.Env
	cfg distro.RancherConfig
}

var _ engine.Distro = (*Provider)(nil)

// New returns the rke2 provider working on env.
func New(env distro.Env) *Provider {
	return &Provider{
		env: env.WithDefaults(),
		cfg: distro.RancherConfig{Pack: Pack, Dir: ConfigDir, Port: Port, ServerOnly: serverOnly},
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

// envFile is where the unit reads the environment from (its
// EnvironmentFile=-/etc/default/%N).
func envFile(unit string) string { return "/etc/default/" + strings.TrimSuffix(unit, ".service") }

func (p *Provider) kube(role string) distro.Kube {
	k := distro.Kube{Env: &p.env, Kubectl: []string{Kubectl}, Kubeconfig: AdminKubeconfig}
	if !distro.IsServer(role) {
		k.Kubeconfig = AgentKubeconfig
	}
	return k
}

// Check reads the provider's state; a remove is done only when nothing of
// rke2 is left on the host either.
func (p *Provider) Check(_ context.Context, a engine.DistroAction) (bool, error) {
	return p.env.CheckState(Pack, BinPath, []string{BinPath, UnitDir + "/" + ServerUnit, UnitDir + "/" + AgentUnit, ConfigDir, DataDir}, a)
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

// install extracts the tarball, writes the config and starts the unit of
// the role; with upgrade it replaces the rke2 that runs.
func (p *Provider) install(ctx context.Context, a engine.DistroAction, upgrade bool) error {
	e := &p.env
	art, err := e.Artifact(a.Layer, "rke2")
	if err != nil {
		return err
	}
	rendered, err := p.cfg.Render(a)
	if err != nil {
		return err
	}
	var vip []byte
	if distro.WantsKubeVIP(a) {
		v, err := distro.ParseValues(a.Layer)
		if err != nil {
			return err
		}
		k, err := distro.KubeVIPFor(v, a.VIP, AdminKubeconfig)
		if err != nil {
			return err
		}
		vip = k.Manifest()
	}
	unit := unitFor(a.Role)
	return e.RunInstall(ctx, distro.Install{
		Action:    a,
		Upgrade:   upgrade,
		Artifacts: []v1.Artifact{art},
		Place: func(_ context.Context, local []string) ([]string, error) {
			files, _, err := e.ExtractTarGz(local[0], Prefix, nil)
			if err != nil {
				return nil, fmt.Errorf("rke2 %s: %w", a.Layer.Version, err)
			}
			for _, want := range []string{BinPath, UnitDir + "/" + unit} {
				if !slices.Contains(files, want) {
					return nil, engine.Permanent(fmt.Errorf("rke2 %s: the tarball has no %s", a.Layer.Version, strings.TrimPrefix(want, Prefix+"/")))
				}
			}
			return files, nil
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
			other := AgentUnit
			if unit == AgentUnit {
				other = ServerUnit
			}
			// The tarball brings both units; only the role's may run
			// (they conflict).
			if e.Exists(envFile(other)) {
				e.StopUnit(ctx, UnitDir+"/"+other)
				if err := e.Remove(envFile(other)); err != nil {
					return err
				}
			}
			_, err := e.WriteFile(envFile(unit), e.EnvFile(), distro.ModeSecret)
			return err
		},
		Unit: unit,
		Kube: p.kube(a.Role),
	})
}

// remove takes the node out and deletes everything rke2 put on the host,
// as rke2-killall.sh and rke2-uninstall.sh would.
func (p *Provider) remove(ctx context.Context, a engine.DistroAction) error {
	e := &p.env
	st, err := e.LoadState(Pack)
	if err != nil {
		return err
	}
	role, node := a.Role, a.Node
	arts := e.Artifacts(a.Layer)
	files := tarballFiles
	if st != nil {
		role, node = st.Role, st.Node
		arts = append(arts, st.Artifacts...)
		files = append(slices.Clone(files), st.Files...)
	}
	if role == v1.RoleControlPlane {
		// Deleting the node object takes it out of etcd too, so the
		// remaining servers keep their quorum.
		p.kube(role).DeleteNode(ctx, node)
	}
	e.StopUnit(ctx, UnitDir+"/"+ServerUnit, UnitDir+"/"+AgentUnit)
	e.Clean(ctx, distro.Cleanup{
		Shims:      `rke2/data/[^/]*/bin/containerd-shim`,
		Mounts:     append([]string{"/run/k3s", DataDir}, distro.KubeletMounts...),
		Interfaces: distro.CNIInterfaces,
	})
	paths := append(files,
		envFile(ServerUnit), envFile(AgentUnit),
		ConfigDir, "/etc/rancher/node", DataDir, "/run/k3s",
	)
	if err := e.Remove(slices.Concat(paths, distro.KubeletPaths, distro.CNIPaths)...); err != nil {
		return err
	}
	e.RemoveIfEmpty("/etc/rancher", "/var/lib/rancher", UnitDir, path.Dir(UnitDir))
	if err := e.Systemctl(ctx, "daemon-reload"); err != nil {
		e.Log.Warn("rke2 remove", "error", err)
	}
	e.DropArtifacts(arts)
	if err := e.DropState(Pack); err != nil {
		return fmt.Errorf("rke2 remove: %w", err)
	}
	return nil
}

// Status reads the node through the rke2 API: the admin kubeconfig on
// servers, the kubelet's on agents.
func (p *Provider) Status(ctx context.Context) (engine.NodeState, error) {
	st, err := p.env.LoadState(Pack)
	if err != nil || st == nil {
		return engine.NodeState{}, err
	}
	return p.kube(st.Role).NodeStatus(ctx, st.Node, distro.IsServer(st.Role))
}
