package kubeadm

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
)

// Pack is the distro pack this provider installs.
const Pack = "kubeadm"

// Host paths and names.
const (
	BinDir           = "/usr/local/bin"
	Kubeadm          = BinDir + "/kubeadm"
	Kubectl          = BinDir + "/kubectl"
	KubernetesDir    = "/etc/kubernetes"
	ConfigPath       = KubernetesDir + "/kubeadm-config.yaml"
	AdminConf        = KubernetesDir + "/admin.conf"
	SuperAdminConf   = KubernetesDir + "/super-admin.conf"
	KubeletConf      = KubernetesDir + "/kubelet.conf"
	ManifestsDir     = KubernetesDir + "/manifests"
	KubeVIPManifest  = ManifestsDir + "/kube-vip.yaml"
	KubeletUnit      = "kubelet.service"
	ContainerdUnit   = "containerd.service"
	KubeletDropIn    = distro.SystemdDir + "/kubelet.service.d/10-kubeadm.conf"
	ContainerdProxy  = distro.SystemdDir + "/containerd.service.d/http-proxy.conf"
	ContainerdConfig = "/etc/containerd/config.toml"
	CrictlConfig     = "/etc/crictl.yaml"
	CRISocket        = "unix:///run/containerd/containerd.sock"
	// APIPort is the API server's port behind the VIP.
	APIPort = 6443
	// DefaultAPIVersion is kubeadm's config API when the values name none.
	DefaultAPIVersion = "kubeadm.k8s.io/v1beta4"
)

// placement says where one artifact of the pack goes.
type placement struct {
	name    string
	dest    string
	tarball bool
	// runtime: a change restarts containerd.
	runtime bool
}

// layout is every artifact the kubeadm pack lists, in install order; all
// are needed (kubeadm's preflight checks want crictl too).
var layout = []placement{
	{name: "kubeadm", dest: Kubeadm},
	{name: "kubelet", dest: BinDir + "/kubelet"},
	{name: "kubectl", dest: Kubectl},
	{name: "containerd", dest: "/usr/local", tarball: true, runtime: true},
	{name: "runc", dest: "/usr/local/sbin/runc", runtime: true},
	{name: "cni-plugins", dest: "/opt/cni/bin", tarball: true},
	{name: "crictl", dest: BinDir, tarball: true},
}

// knownFiles are removed even when the state that lists the extracted
// files is lost.
var knownFiles = []string{
	Kubeadm, BinDir + "/kubelet", Kubectl, BinDir + "/crictl", "/usr/local/sbin/runc",
	BinDir + "/containerd", BinDir + "/containerd-shim", BinDir + "/containerd-shim-runc-v1",
	BinDir + "/containerd-shim-runc-v2", BinDir + "/containerd-stress", BinDir + "/ctr",
}

// Provider installs, upgrades and removes kubeadm clusters.
type Provider struct {
	env distro.Env
}

var _ engine.Distro = (*Provider)(nil)

// New returns the kubeadm provider working on env.
func New(env distro.Env) *Provider { return &Provider{env: env.WithDefaults()} }

// Name is the pack's name.
func (p *Provider) Name() string { return Pack }

func unitPath(unit string) string { return path.Join(distro.SystemdDir, unit) }

func (p *Provider) kube(role string) distro.Kube {
	k := distro.Kube{Env: &p.env, Kubectl: []string{Kubectl}, Kubeconfig: AdminConf}
	if !distro.IsServer(role) {
		k.Kubeconfig = KubeletConf
	}
	return k
}

// Check reads the provider's state; a remove is done only when nothing of
// the cluster is left on the host either.
func (p *Provider) Check(_ context.Context, a engine.DistroAction) (bool, error) {
	return p.env.CheckState(Pack, Kubeadm, []string{Kubeadm, unitPath(KubeletUnit), unitPath(ContainerdUnit), KubernetesDir, "/var/lib/etcd"}, a)
}

// Apply does the action.
func (p *Provider) Apply(ctx context.Context, a engine.DistroAction) error {
	switch a.Op {
	case engine.DistroInstall:
		return p.install(ctx, a)
	case engine.DistroUpgrade:
		return p.upgrade(ctx, a)
	case engine.DistroRemove:
		return p.remove(ctx, a)
	}
	return distro.Unknown(Pack, a.Op)
}

// prepared is what an install or upgrade needs, all of it made and
// fetched before the host is touched.
type prepared struct {
	arts       []v1.Artifact
	local      []string
	config     []byte
	containerd []byte
	vip        []byte
}

func (p *Provider) prepare(ctx context.Context, a engine.DistroAction) (*prepared, error) {
	e := &p.env
	pr := &prepared{}
	for _, pl := range layout {
		art, err := e.Artifact(a.Layer, pl.name)
		if err != nil {
			return nil, err
		}
		pr.arts = append(pr.arts, art)
	}
	v, err := distro.ParseValues(a.Layer)
	if err != nil {
		return nil, err
	}
	if pr.config, err = kubeadmConfig(v, a); err != nil {
		return nil, err
	}
	if pr.containerd, err = containerdConfig(v); err != nil {
		return nil, err
	}
	if distro.WantsKubeVIP(a) {
		kubeconfig := AdminConf
		if a.Role == v1.RoleInit && atLeast(distro.KubernetesVersion(a.Layer), 1, 29) {
			// From 1.29 admin.conf gets its rights from a binding that
			// kubeadm init creates only once the API answers, which it
			// cannot while kube-vip waits for it to hold the VIP.
			kubeconfig = SuperAdminConf
		}
		k, err := distro.KubeVIPFor(v, a.VIP, kubeconfig)
		if err != nil {
			return nil, err
		}
		pr.vip = k.Manifest()
	}
	for _, art := range pr.arts {
		l, err := e.Fetch.Fetch(ctx, art)
		if err != nil {
			return nil, err
		}
		pr.local = append(pr.local, l)
	}
	return pr, nil
}

// place puts the artifacts on the host. It returns the files extracted
// from tarballs and whether the container runtime changed.
func (p *Provider) place(pr *prepared) ([]string, bool, error) {
	e := &p.env
	var files []string
	runtime := false
	for i, pl := range layout {
		var changed bool
		if pl.tarball {
			fs, ch, err := e.ExtractTarGz(pr.local[i], pl.dest, nil)
			if err != nil {
				return nil, false, fmt.Errorf("kubeadm: %s: %w", pl.name, err)
			}
			files, changed = append(files, fs...), ch
		} else {
			ch, err := e.InstallFile(pr.local[i], pl.dest, distro.ModeExec)
			if err != nil {
				return nil, false, err
			}
			changed = ch
		}
		runtime = runtime || (pl.runtime && changed)
	}
	slices.Sort(files)
	return files, runtime, nil
}

// writeRuntime writes containerd's and the kubelet's configuration and
// units; it reports whether containerd's changed.
func (p *Provider) writeRuntime(pr *prepared) (bool, error) {
	e := &p.env
	changed := false
	for _, f := range []struct {
		path    string
		data    []byte
		runtime bool
	}{
		{ContainerdConfig, pr.containerd, true},
		{unitPath(ContainerdUnit), []byte(containerdUnit), true},
		{CrictlConfig, []byte(crictlConfig), false},
		{unitPath(KubeletUnit), []byte(kubeletUnit), false},
		{KubeletDropIn, []byte(kubeletDropIn), false},
	} {
		ch, err := e.WriteFile(f.path, f.data, distro.ModeFile)
		if err != nil {
			return false, err
		}
		changed = changed || (f.runtime && ch)
	}
	if len(e.ProxyEnv) > 0 {
		var b strings.Builder
		b.WriteString("# Written by the Outpost agent: the site's proxy, for pulling images.\n[Service]\n")
		for _, kv := range e.ProxyEnv {
			fmt.Fprintf(&b, "Environment=%q\n", kv)
		}
		ch, err := e.WriteFile(ContainerdProxy, []byte(b.String()), distro.ModeFile)
		if err != nil {
			return false, err
		}
		changed = changed || ch
	} else if e.Exists(ContainerdProxy) {
		if err := e.Remove(ContainerdProxy); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// begin saves the state of an action about to change the host.
func (p *Provider) begin(a engine.DistroAction, pr *prepared, prev *distro.State, phase string) (*distro.State, error) {
	st := distro.NewState(a, phase)
	if prev != nil {
		st.Artifacts, st.Files = prev.Artifacts, prev.Files
		if phase == distro.PhaseUpgrading {
			st.Hash, st.Version, st.KubernetesVersion = prev.Hash, prev.Version, prev.KubernetesVersion
		}
	}
	for _, art := range pr.arts {
		if !slices.ContainsFunc(st.Artifacts, func(x v1.Artifact) bool { return x.URL == art.URL }) {
			st.Artifacts = append(st.Artifacts, art)
		}
	}
	return st, p.env.SaveState(st)
}

// finish records the action done and drops the downloads of the version
// it replaced.
func (p *Provider) finish(a engine.DistroAction, pr *prepared, st *distro.State, files []string) error {
	e := &p.env
	for _, f := range st.Files {
		if !slices.Contains(files, f) {
			if err := e.Remove(f); err != nil {
				return err
			}
		}
	}
	var old []v1.Artifact
	for _, art := range st.Artifacts {
		if !slices.ContainsFunc(pr.arts, func(x v1.Artifact) bool { return x.URL == art.URL }) {
			old = append(old, art)
		}
	}
	e.DropArtifacts(old)
	done := distro.NewState(a, distro.PhaseInstalled)
	done.Artifacts, done.Files = pr.arts, files
	return e.SaveState(done)
}

// install sets the node up and runs kubeadm init or join, unless a run
// before this one got that far.
func (p *Provider) install(ctx context.Context, a engine.DistroAction) error {
	e := &p.env
	pr, err := p.prepare(ctx, a)
	if err != nil {
		return err
	}
	prev, err := e.LoadState(Pack)
	if err != nil {
		return err
	}
	st, err := p.begin(a, pr, prev, distro.PhaseInstalling)
	if err != nil {
		return err
	}
	files, _, err := p.place(pr)
	if err != nil {
		return err
	}
	if _, err := p.writeRuntime(pr); err != nil {
		return err
	}
	if _, err := e.WriteFile(ConfigPath, pr.config, distro.ModeSecret); err != nil {
		return err
	}
	if err := e.Systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	if err := e.Systemctl(ctx, "enable", "--now", ContainerdUnit); err != nil {
		return err
	}
	// kubeadm starts the kubelet itself, once it has written its config.
	if err := e.Systemctl(ctx, "enable", KubeletUnit); err != nil {
		return err
	}
	if a.Role == v1.RoleInit {
		err = p.initCluster(ctx, pr)
	} else {
		err = p.join(ctx, a, pr)
	}
	if err != nil {
		return err
	}
	return p.finish(a, pr, st, files)
}

func (p *Provider) initCluster(ctx context.Context, pr *prepared) error {
	e := &p.env
	if e.Exists(AdminConf) {
		return p.writeVIP(pr)
	}
	// A kubeadm init that was killed half-way refuses to run again over
	// what it left.
	if slices.ContainsFunc([]string{ManifestsDir + "/kube-apiserver.yaml", "/var/lib/etcd/member", KubeletConf}, e.Exists) {
		if _, err := e.Run.Run(ctx, Kubeadm, "reset", "-f"); err != nil {
			return fmt.Errorf("kubeadm reset after an unfinished init: %w", err)
		}
	}
	// The VIP must exist before init: kubeadm waits for the API at the
	// controlPlaneEndpoint, which is the VIP.
	if err := p.writeVIP(pr); err != nil {
		return err
	}
	if err := e.RunHook(ctx, distro.PreHook); err != nil {
		return err
	}
	if _, err := e.Run.Run(ctx, Kubeadm, "init", "--config", ConfigPath, "--upload-certs"); err != nil {
		return fmt.Errorf("kubeadm init: %w", err)
	}
	return e.RunHook(ctx, distro.PostHook)
}

func (p *Provider) join(ctx context.Context, a engine.DistroAction, pr *prepared) error {
	e := &p.env
	if !e.Exists(KubeletConf) {
		if slices.ContainsFunc([]string{KubernetesDir + "/pki/ca.crt", KubernetesDir + "/bootstrap-kubelet.conf", ManifestsDir + "/kube-apiserver.yaml"}, e.Exists) {
			if _, err := e.Run.Run(ctx, Kubeadm, "reset", "-f"); err != nil {
				return fmt.Errorf("kubeadm reset after an unfinished join: %w", err)
			}
		}
		if err := e.RunHook(ctx, distro.PreHook); err != nil {
			return err
		}
		if _, err := e.Run.Run(ctx, Kubeadm, "join", "--config", ConfigPath); err != nil {
			return fmt.Errorf("kubeadm join: %w", err)
		}
		if err := e.RunHook(ctx, distro.PostHook); err != nil {
			return err
		}
	}
	// After the join: its preflight wants an empty manifests directory,
	// and the joiner reaches the cluster through the init node's VIP.
	return p.writeVIP(pr)
}

func (p *Provider) writeVIP(pr *prepared) error {
	if pr.vip == nil {
		return p.env.Remove(KubeVIPManifest)
	}
	_, err := p.env.WriteFile(KubeVIPManifest, pr.vip, distro.ModeSecret)
	return err
}

// upgrade replaces the binaries and runs kubeadm upgrade: apply on the
// init node (the hub upgrades it first), node on the others.
func (p *Provider) upgrade(ctx context.Context, a engine.DistroAction) error {
	e := &p.env
	prev, err := e.LoadState(Pack)
	if err != nil {
		return err
	}
	if prev == nil {
		e.Log.Warn("kubeadm upgrade without provider state: installing", "version", a.Layer.Version)
		return p.install(ctx, a)
	}
	pr, err := p.prepare(ctx, a)
	if err != nil {
		return err
	}
	st, err := p.begin(a, pr, prev, distro.PhaseUpgrading)
	if err != nil {
		return err
	}
	server := distro.IsServer(a.Role)
	kube := p.kube(a.Role)
	if server {
		if err := kube.Drain(ctx, a.Node); err != nil {
			return err
		}
	} else {
		e.Log.Info("kubeadm worker upgrades in place: it has no credentials to drain itself", "node", a.Node)
	}
	files, runtime, err := p.place(pr)
	if err != nil {
		return err
	}
	cfgChanged, err := p.writeRuntime(pr)
	if err != nil {
		return err
	}
	if _, err := e.WriteFile(ConfigPath, pr.config, distro.ModeSecret); err != nil {
		return err
	}
	if err := e.Systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	if runtime || cfgChanged {
		// Containers keep running: their shims do not need containerd.
		if err := e.Systemctl(ctx, "restart", ContainerdUnit); err != nil {
			return err
		}
	}
	if err := e.RunHook(ctx, distro.PreHook); err != nil {
		return err
	}
	to := distro.KubernetesVersion(a.Layer)
	switch {
	case prev.KubernetesVersion == to:
		e.Log.Info("kubeadm: same Kubernetes version, nothing for kubeadm upgrade to do", "version", to)
	case a.Role == v1.RoleInit:
		if _, err := e.Run.Run(ctx, Kubeadm, "upgrade", "apply", "v"+to, "--yes"); err != nil {
			return fmt.Errorf("kubeadm upgrade apply: %w", err)
		}
	default:
		if _, err := e.Run.Run(ctx, Kubeadm, "upgrade", "node"); err != nil {
			return fmt.Errorf("kubeadm upgrade node: %w", err)
		}
	}
	if err := p.writeVIP(pr); err != nil {
		return err
	}
	if err := e.Systemctl(ctx, "restart", KubeletUnit); err != nil {
		return err
	}
	if err := e.RunHook(ctx, distro.PostHook); err != nil {
		return err
	}
	if err := kube.WaitReady(ctx, a.Node); err != nil {
		return err
	}
	if server {
		if err := kube.Uncordon(ctx, a.Node); err != nil {
			return err
		}
	}
	return p.finish(a, pr, st, files)
}

// remove takes the node out with kubeadm reset and deletes everything the
// provider installed.
func (p *Provider) remove(ctx context.Context, a engine.DistroAction) error {
	e := &p.env
	st, err := e.LoadState(Pack)
	if err != nil {
		return err
	}
	role, node := a.Role, a.Node
	arts := e.Artifacts(a.Layer)
	files := knownFiles
	if st != nil {
		role, node = st.Role, st.Node
		arts = append(arts, st.Artifacts...)
		files = append(slices.Clone(files), st.Files...)
	}
	if role == v1.RoleControlPlane && e.Exists(AdminConf) {
		// With the kubelet stopped first, so that it does not register
		// the node again.
		if _, err := e.Run.Run(ctx, "systemctl", "stop", KubeletUnit); err != nil {
			e.Log.Warn("stop kubelet", "error", err)
		}
		p.kube(role).DeleteNode(ctx, node)
	}
	if e.Exists(Kubeadm) {
		// Removes this node's etcd member, its static pods and
		// containers, and kubeadm's files.
		if _, err := e.Run.Run(ctx, Kubeadm, "reset", "-f"); err != nil {
			e.Log.Warn("kubeadm reset", "error", err)
		}
	}
	e.StopUnit(ctx, unitPath(KubeletUnit), unitPath(ContainerdUnit))
	e.Clean(ctx, distro.Cleanup{
		Shims:      BinDir + "/containerd-shim",
		Mounts:     append([]string{"/run/containerd", "/var/lib/containerd"}, distro.KubeletMounts...),
		Interfaces: distro.CNIInterfaces,
	})
	paths := append(files,
		unitPath(KubeletUnit), path.Dir(KubeletDropIn),
		unitPath(ContainerdUnit), path.Dir(ContainerdProxy),
		"/etc/containerd", CrictlConfig, KubernetesDir, "/var/lib/etcd",
		"/var/lib/containerd", "/run/containerd",
	)
	if err := e.Remove(slices.Concat(paths, distro.KubeletPaths, distro.CNIPaths)...); err != nil {
		return err
	}
	if err := e.Systemctl(ctx, "daemon-reload"); err != nil {
		e.Log.Warn("kubeadm remove", "error", err)
	}
	e.DropArtifacts(arts)
	if err := e.DropState(Pack); err != nil {
		return fmt.Errorf("kubeadm remove: %w", err)
	}
	return nil
}

// Status reads the node through the API: admin.conf on control-plane
// nodes, the kubelet's kubeconfig on workers.
func (p *Provider) Status(ctx context.Context) (engine.NodeState, error) {
	st, err := p.env.LoadState(Pack)
	if err != nil || st == nil {
		return engine.NodeState{}, err
	}
	return p.kube(st.Role).NodeStatus(ctx, st.Node, distro.IsServer(st.Role))
}

// atLeast reports whether version (1.30.4) is at least major.minor.
func atLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}
