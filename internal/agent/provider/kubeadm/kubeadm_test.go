package kubeadm

import (
	"context"
	"path"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
	dt "github.com/outpost-edge/outpost/internal/agent/provider/distro/distrotest"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
)

func provider(env distro.Env) engine.Distro { return New(env) }

const (
	oldVersion = "1.32.3"
	newVersion = "1.33.1"
	kubectl    = Kubectl + " --kubeconfig " + AdminConf
)

// content makes fake artifacts: binaries as scripts, the tarballs with
// the layout of the real ones.
func content(a v1.Artifact) []byte {
	bin := func(name string) string {
		return "#!/bin/sh\n# fake " + name + " from " + path.Base(a.URL) + "\n"
	}
	switch a.Name {
	case "containerd":
		return dt.TarGz(
			dt.TarEntry{Name: "bin/containerd", Mode: 0o755, Body: bin("containerd")},
			dt.TarEntry{Name: "bin/containerd-shim-runc-v2", Mode: 0o755, Body: bin("containerd-shim-runc-v2")},
			dt.TarEntry{Name: "bin/ctr", Mode: 0o755, Body: bin("ctr")},
		)
	case "cni-plugins":
		return dt.TarGz(
			dt.TarEntry{Name: "./", Mode: 0o755},
			dt.TarEntry{Name: "./bridge", Mode: 0o755, Body: bin("bridge")},
			dt.TarEntry{Name: "./host-local", Mode: 0o755, Body: bin("host-local")},
			dt.TarEntry{Name: "./loopback", Mode: 0o755, Body: bin("loopback")},
			dt.TarEntry{Name: "./portmap", Mode: 0o755, Body: bin("portmap")},
		)
	case "crictl":
		return dt.TarGz(dt.TarEntry{Name: "crictl", Mode: 0o755, Body: bin("crictl")})
	}
	return dt.FakeBinary(a)
}

var running = map[string]string{
	AdminConf:                                    "apiVersion: v1\nkind: Config\n# fake admin.conf\n",
	KubeletConf:                                  "apiVersion: v1\nkind: Config\n# fake kubelet.conf\n",
	KubernetesDir + "/pki/ca.crt":                "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n",
	ManifestsDir + "/kube-apiserver.yaml":        "kind: Pod\n",
	"/var/lib/etcd/member/snap/db":               "etcd data\n",
	"/var/lib/kubelet/config.yaml":               "kind: KubeletConfiguration\n",
	"/var/lib/containerd/io.containerd.metadata": "meta\n",
	"/etc/cni/net.d/10-calico.conflist":          "{\"name\": \"k8s-pod-network\"}\n",
}

func layers(t *testing.T) (osLayer, old, newer v1.RenderedLayer) {
	osLayer, old = dt.Render(t, dt.Profile(Pack, oldVersion))
	_, newer = dt.Render(t, dt.Profile(Pack, newVersion))
	return osLayer, old, newer
}

func TestContract(t *testing.T) {
	osLayer, old, newer := layers(t)
	base := func(h *dt.Host) {
		h.ApplyOS(osLayer)
		h.Serve(old, content)
		h.Serve(newer, content)
	}
	installed := func(role string) func(h *dt.Host) {
		return func(h *dt.Host) {
			base(h)
			h.Install(New(h.Env), dt.Action(role, old), nil)
			h.Running([]string{"/run/containerd/io.containerd.runtime.v2.task/k8s.io/4c1d/rootfs"}, running)
		}
	}
	for _, sc := range []dt.Scenario{
		{
			Name:   "init",
			Title:  "kubeadm " + oldVersion + ": kubeadm init on " + dt.InitNode + " of cluster " + dt.Cluster + " (VIP " + dt.VIP + ")",
			Setup:  base,
			Action: dt.Action(v1.RoleInit, old),
		},
		{
			Name:   "join-control-plane",
			Title:  "kubeadm " + oldVersion + ": kubeadm join " + dt.CPNode + " as a control-plane node through the VIP",
			Setup:  base,
			Action: dt.Action(v1.RoleControlPlane, old),
		},
		{
			Name:   "join-worker",
			Title:  "kubeadm " + oldVersion + ": kubeadm join " + dt.Worker + " as a worker through the VIP",
			Setup:  base,
			Action: dt.Action(v1.RoleWorker, old),
		},
		{
			Name:  "upgrade",
			Title: "kubeadm " + oldVersion + " -> " + newVersion + " on the init node, in its turn: cordon, drain, replace, kubeadm upgrade apply, restart, wait Ready, uncordon",
			Setup: installed(v1.RoleInit),
			Script: func(r *hostexec.Recorder) {
				r.On(kubectl+" get nodes -o name", "node/edge-cp1\nnode/edge-cp2\nnode/edge-w1\n")
				r.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "True")
			},
			Action: dt.Upgrade(v1.RoleInit, old, newer),
		},
		{
			Name:  "remove",
			Title: "kubeadm " + oldVersion + ": remove control-plane node " + dt.CPNode + " when its cluster is deleted",
			Setup: installed(v1.RoleControlPlane),
			Script: func(r *hostexec.Recorder) {
				r.On("iptables-save", dt.IPTablesSave)
			},
			Action: dt.Remove(v1.RoleControlPlane, old),
		},
	} {
		t.Run(sc.Name, func(t *testing.T) { dt.Contract(t, provider, sc) })
	}
}

func TestBootstrapToken(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	seen := map[string]bool{}
	for _, secret := range []string{dt.JoinToken, "00", strings.Repeat("f", 48), "a"} {
		tok := BootstrapToken(secret)
		if !re.MatchString(tok) {
			t.Errorf("BootstrapToken(%q) = %q: not kubeadm's format", secret, tok)
		}
		if BootstrapToken(secret) != tok {
			t.Errorf("BootstrapToken(%q) is not deterministic", secret)
		}
		if seen[tok] {
			t.Errorf("two secrets map to %s", tok)
		}
		seen[tok] = true
		if strings.Contains(secret, strings.ReplaceAll(tok, ".", "")[:6]) && len(secret) > 10 {
			t.Errorf("token %s shows part of the secret", tok)
		}
		if k := CertificateKey(secret); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(k) {
			t.Errorf("CertificateKey(%q) = %q", secret, k)
		}
	}
}

func TestConfigDocuments(t *testing.T) {
	_, old, _ := layers(t)
	v, err := distro.ParseValues(old)
	if err != nil {
		t.Fatal(err)
	}
	type doc = map[string]any
	decode := func(data []byte) []doc {
		var out []doc
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		for {
			var d doc
			if err := dec.Decode(&d); err != nil {
				break
			}
			out = append(out, d)
		}
		return out
	}
	init := dt.Action(v1.RoleInit, old)
	init.AllowWorkloads = true
	data, err := kubeadmConfig(v, init)
	if err != nil {
		t.Fatal(err)
	}
	docs := decode(data)
	var kinds []string
	for _, d := range docs {
		kinds = append(kinds, d["kind"].(string))
	}
	if strings.Join(kinds, ",") != "InitConfiguration,ClusterConfiguration,KubeletConfiguration,KubeProxyConfiguration" {
		t.Errorf("kinds %v", kinds)
	}
	cc := docs[1]
	if cc["controlPlaneEndpoint"] != dt.VIP+":6443" || cc["kubernetesVersion"] != "v1.32.3" {
		t.Errorf("ClusterConfiguration %v", cc)
	}
	if net := cc["networking"].(doc); net["podSubnet"] != "10.42.0.0/16" {
		t.Errorf("podSubnet %v", net["podSubnet"])
	}
	nr := docs[0]["nodeRegistration"].(doc)
	if taints, ok := nr["taints"].([]any); !ok || len(taints) != 0 {
		t.Errorf("a control plane that allows workloads must get taints: [], got %v", nr["taints"])
	}
	worker, err := kubeadmConfig(v, dt.Action(v1.RoleWorker, old))
	if err != nil {
		t.Fatal(err)
	}
	wd := decode(worker)
	if len(wd) != 1 || wd[0]["kind"] != "JoinConfiguration" || wd[0]["controlPlane"] != nil {
		t.Fatalf("worker config %v", wd)
	}
	bt := wd[0]["discovery"].(doc)["bootstrapToken"].(doc)
	if bt["token"] != BootstrapToken(dt.JoinToken) || bt["apiServerEndpoint"] != dt.VIP+":6443" || bt["unsafeSkipCAVerification"] != true {
		t.Errorf("discovery %v", bt)
	}
	if strings.Contains(string(worker), dt.JoinToken) {
		t.Error("the hub's secret itself is in the kubeadm config")
	}
}

func TestInitIsNotRepeated(t *testing.T) {
	osLayer, old, _ := layers(t)
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, content)
	p := New(h.Env)
	a := dt.Action(v1.RoleInit, old)
	h.Run.On(Kubeadm+" init", "").Do = func(hostexec.Cmd) error {
		h.Write(AdminConf, "fake", 0o600)
		return nil
	}
	if err := p.Apply(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	// The agent died before it saved its state: the next attempt must not
	// run kubeadm init over a cluster that exists.
	if err := h.Env.DropState(Pack); err != nil {
		t.Fatal(err)
	}
	h.Run.Reset()
	if err := p.Apply(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	for _, l := range h.Run.Lines() {
		if strings.Contains(l, "kubeadm init") || strings.Contains(l, "reset") {
			t.Errorf("second attempt ran %s", l)
		}
	}
}

func TestHalfDoneInitIsReset(t *testing.T) {
	osLayer, old, _ := layers(t)
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, content)
	h.Write(ManifestsDir+"/kube-apiserver.yaml", "kind: Pod\n", 0o600)
	if err := New(h.Env).Apply(context.Background(), dt.Action(v1.RoleInit, old)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.Run.Lines(), "\n")
	reset, init := strings.Index(got, Kubeadm+" reset -f"), strings.Index(got, Kubeadm+" init")
	if reset < 0 || init < reset {
		t.Errorf("want reset before init:\n%s", got)
	}
}

func TestWorkerUpgradeUsesUpgradeNode(t *testing.T) {
	osLayer, old, newer := layers(t)
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, content)
	h.Serve(newer, content)
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleWorker, old), nil)
	h.Run.On(Kubectl+" --kubeconfig "+KubeletConf+" get node "+dt.Worker+" -o 'jsonpath=", "True")
	if err := p.Apply(context.Background(), dt.Upgrade(v1.RoleWorker, old, newer)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.Run.Lines(), "\n")
	if !strings.Contains(got, Kubeadm+" upgrade node") || strings.Contains(got, "upgrade apply") || strings.Contains(got, "drain") {
		t.Errorf("commands:\n%s", got)
	}
}

func TestSameVersionUpgradeSkipsKubeadm(t *testing.T) {
	osLayer, old, _ := layers(t)
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, content)
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleInit, old), nil)
	changed := old
	changed.Values = strings.Replace(changed.Values, "registry.k8s.io/pause:3.10", "registry.example/pause:3.10", 1)
	changed.Hash = "changed"
	h.Run.On(kubectl+" get nodes -o name", "node/edge-cp1\n")
	h.Run.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "True")
	if err := p.Apply(context.Background(), dt.Upgrade(v1.RoleInit, old, changed)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.Run.Lines(), "\n")
	if strings.Contains(got, "kubeadm upgrade") || !strings.Contains(got, "systemctl restart containerd.service") {
		t.Errorf("commands:\n%s", got)
	}
	cfg, _ := h.Root.ReadFile(ContainerdConfig)
	if !strings.Contains(string(cfg), `sandbox_image = "registry.example/pause:3.10"`) {
		t.Errorf("containerd config:\n%s", cfg)
	}
}

func TestMissingArtifactIsPermanent(t *testing.T) {
	_, old, _ := layers(t)
	h := dt.NewHost(t)
	old.Artifacts = old.Artifacts[:2]
	err := New(h.Env).Apply(context.Background(), dt.Action(v1.RoleInit, old))
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "kubeadm 1.32.3 has no kubectl artifact for amd64") {
		t.Fatalf("err = %v", err)
	}
}

func TestAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"1.29.0": true, "1.28.9": false, "1.33.1": true, "2.0": true, "x": false} {
		if got := atLeast(v, 1, 29); got != want {
			t.Errorf("atLeast(%s) = %v", v, got)
		}
	}
}
