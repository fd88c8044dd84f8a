package k3s

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
	dt "github.com/outpost-edge/outpost/internal/agent/provider/distro/distrotest"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
)

func provider(env distro.Env) engine.Distro { return New(env) }

const (
	oldVersion = "1.32.3+k3s1"
	newVersion = "1.33.1+k3s1"
	kubectl    = BinPath + " kubectl --kubeconfig " + AdminKubeconfig
)

// running is what a k3s server has made by the time it runs.
var running = map[string]string{
	AdminKubeconfig:                     "apiVersion: v1\nkind: Config\n# fake k3s admin kubeconfig\n",
	DataDir + "/server/token":           "K10fake::server:" + dt.JoinToken + "\n",
	DataDir + "/server/db/etcd/config":  "name: edge-cp2\n",
	"/etc/rancher/node/password":        "fake-node-password\n",
	"/var/lib/kubelet/pods/6f1c2a/x":    "volume data\n",
	"/etc/cni/net.d/10-calico.conflist": "{\"name\": \"k8s-pod-network\"}\n",
	"/opt/cni/bin/calico":               "#!/bin/sh\n",
}

func TestContract(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	_, newer := dt.Render(t, dt.Profile(Pack, newVersion))
	base := func(h *dt.Host) {
		h.ApplyOS(osLayer)
		h.Serve(old, nil)
		h.Serve(newer, nil)
	}
	installed := func(role string) func(h *dt.Host) {
		return func(h *dt.Host) {
			base(h)
			h.Install(New(h.Env), dt.Action(role, old), nil)
			h.Running([]string{"/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/4c1d/rootfs"}, running)
		}
	}
	for _, sc := range []dt.Scenario{
		{
			Name:   "init",
			Title:  "k3s " + oldVersion + ": install the init node " + dt.InitNode + " of cluster " + dt.Cluster + " (VIP " + dt.VIP + ")",
			Setup:  base,
			Action: dt.Action(v1.RoleInit, old),
		},
		{
			Name:   "join-control-plane",
			Title:  "k3s " + oldVersion + ": join " + dt.CPNode + " as a control-plane node through the VIP",
			Setup:  base,
			Action: dt.Action(v1.RoleControlPlane, old),
		},
		{
			Name:   "join-worker",
			Title:  "k3s " + oldVersion + ": join " + dt.Worker + " as a worker (agent) through the VIP",
			Setup:  base,
			Action: dt.Action(v1.RoleWorker, old),
		},
		{
			Name:  "upgrade",
			Title: "k3s " + oldVersion + " -> " + newVersion + " on the init node, in its turn: cordon, drain, replace, restart, wait Ready, uncordon",
			Setup: installed(v1.RoleInit),
			Script: func(r *hostexec.Recorder) {
				r.On(kubectl+" get nodes -o name", "node/edge-cp1\nnode/edge-cp2\nnode/edge-w1\n")
				r.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "True")
			},
			Action: dt.Upgrade(v1.RoleInit, old, newer),
		},
		{
			Name:  "remove",
			Title: "k3s " + oldVersion + ": remove control-plane node " + dt.CPNode + " when its cluster is deleted",
			Setup: installed(v1.RoleControlPlane),
			Script: func(r *hostexec.Recorder) {
				r.On("iptables-save", dt.IPTablesSave)
				r.On("pkill", "").Err = exit1{}
			},
			Action: dt.Remove(v1.RoleControlPlane, old),
		},
	} {
		t.Run(sc.Name, func(t *testing.T) { dt.Contract(t, provider, sc) })
	}
}

// exit1 is how pkill says it matched nothing.
type exit1 struct{}

func (exit1) Error() string { return "exit status 1" }

func TestWorkerUpgradeRestartsInPlace(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	_, newer := dt.Render(t, dt.Profile(Pack, newVersion))
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, nil)
	h.Serve(newer, nil)
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleWorker, old), nil)
	h.Run.On(BinPath+" kubectl --kubeconfig "+AgentKubeconfig+" get node "+dt.Worker+" -o 'jsonpath=", "True")
	if err := p.Apply(context.Background(), dt.Upgrade(v1.RoleWorker, old, newer)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.Run.Lines(), "\n")
	for _, bad := range []string{"cordon", "drain"} {
		if strings.Contains(got, bad) {
			t.Errorf("a worker ran %s with its kubelet's credentials:\n%s", bad, got)
		}
	}
	if !strings.Contains(got, "systemctl restart k3s-agent.service") {
		t.Errorf("no restart:\n%s", got)
	}
}

func TestUpgradeWaitsForReady(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	_, newer := dt.Render(t, dt.Profile(Pack, newVersion))
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, nil)
	h.Serve(newer, nil)
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleInit, old), nil)
	h.Run.On(kubectl+" get nodes -o name", "node/edge-cp1\n")
	notYet := h.Run.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "False")
	notYet.Times = 3
	h.Run.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "True")
	if err := p.Apply(context.Background(), dt.Upgrade(v1.RoleInit, old, newer)); err != nil {
		t.Fatal(err)
	}
	lines := h.Run.Lines()
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "-o 'jsonpath=") {
			n++
		}
	}
	if n != 4 {
		t.Errorf("asked for Ready %d times, want 4", n)
	}
	if got := strings.Join(lines, "\n"); strings.Contains(got, " drain ") || !strings.Contains(got, "uncordon") {
		t.Errorf("a single-node cluster must not be drained, and must be uncordoned:\n%s", got)
	}
}

func TestUpgradeNeverReadyFails(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	_, newer := dt.Render(t, dt.Profile(Pack, newVersion))
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, nil)
	h.Serve(newer, nil)
	h.Env.ReadyTimeout = 1
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleInit, old), nil)
	h.Run.On(kubectl+" get nodes -o name", "node/edge-cp1\n")
	h.Run.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "False")
	up := dt.Upgrade(v1.RoleInit, old, newer)
	err := p.Apply(context.Background(), up)
	if err == nil || !strings.Contains(err.Error(), "node edge-cp1 is not Ready") {
		t.Fatalf("err = %v", err)
	}
	if done, _ := p.Check(context.Background(), up); done {
		t.Error("an upgrade that did not finish is done")
	}
	st, _ := h.Env.LoadState(Pack)
	if st == nil || st.Phase != distro.PhaseUpgrading || st.Hash != old.Hash {
		t.Errorf("state after a failed upgrade: %+v", st)
	}
}

func TestStatus(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, nil)
	p := New(h.Env)
	ctx := context.Background()
	if st, err := p.Status(ctx); err != nil || st != (engine.NodeState{}) {
		t.Errorf("status before install = %+v, %v", st, err)
	}
	h.Install(p, dt.Action(v1.RoleInit, old), nil)
	if st, err := p.Status(ctx); err != nil || st != (engine.NodeState{}) {
		t.Errorf("status before k3s wrote its kubeconfig = %+v, %v", st, err)
	}
	h.Write(AdminKubeconfig, "fake", 0o600)
	missing := h.Run.On(kubectl+" get node "+dt.InitNode+" -o json", "")
	missing.Err, missing.Times = notFound{}, 1
	if st, err := p.Status(ctx); err != nil || st.Joined || !st.ControlPlaneUp {
		t.Errorf("status of a node not registered yet = %+v, %v", st, err)
	}
	h.Run.On(kubectl+" get node "+dt.InitNode+" -o json", `{"status": {
		"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
		"addresses": [{"type": "InternalIP", "address": "192.168.10.11"}, {"type": "Hostname", "address": "edge-cp1"}],
		"nodeInfo": {"kubeletVersion": "v1.32.3+k3s1"}}}`)
	want := engine.NodeState{ControlPlaneUp: true, Joined: true, NodeReady: true, KubernetesVersion: "1.32.3", Address: "192.168.10.11"}
	if st, err := p.Status(ctx); err != nil || st != want {
		t.Errorf("status = %+v, %v; want %+v", st, err, want)
	}
	h.Run.Reset()
	h.Run.On(kubectl+" get --raw /readyz", "").Err = refused{}
	h.Run.On(kubectl+" get node", "").Err = refused{}
	if st, err := p.Status(ctx); err == nil || st.ControlPlaneUp {
		t.Errorf("status with the API down = %+v, %v", st, err)
	}
}

type notFound struct{}

func (notFound) Error() string { return `Error from server (NotFound): nodes "edge-cp1" not found` }

type refused struct{}

func (refused) Error() string {
	return "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"
}

func TestConfigRefusals(t *testing.T) {
	_, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	for name, mod := range map[string]func(a *engine.DistroAction){
		"no token":           func(a *engine.DistroAction) { a.JoinToken = "" },
		"no join endpoint":   func(a *engine.DistroAction) { a.JoinEndpoint = "" },
		"bad values":         func(a *engine.DistroAction) { a.Layer.Values = "config: [" },
		"config not a map":   func(a *engine.DistroAction) { a.Layer.Values = "config: 3" },
		"bad drop-in name":   func(a *engine.DistroAction) { a.Layer.Values = "configDropIns:\n  ../x: {a: 1}\n" },
		"no artifact":        func(a *engine.DistroAction) { a.Layer.Artifacts = nil },
		"unknown role":       func(a *engine.DistroAction) { a.Role = "boss" },
		"bad kube-vip image": func(a *engine.DistroAction) { a.Layer.Values += "kubeVip:\n  image: 'x y'\n" },
	} {
		t.Run(name, func(t *testing.T) {
			h := dt.NewHost(t)
			h.Serve(old, nil)
			a := dt.Action(v1.RoleControlPlane, old)
			mod(&a)
			err := New(h.Env).Apply(context.Background(), a)
			if err == nil || !engine.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			if len(h.Run.Calls()) != 0 || h.Env.Exists(BinPath) {
				t.Errorf("the host was touched before the error: %v", h.Run.Lines())
			}
		})
	}
}

func TestDNSNameVIP(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, nil)
	a := dt.Action(v1.RoleInit, old)
	a.VIP = "api.store-berlin.example"
	h.Install(New(h.Env), a, nil)
	if h.Env.Exists(KubeVIPManifest) {
		t.Error("kube-vip was set up for a VIP that is a DNS name")
	}
	cfg, _ := h.Root.ReadFile(ConfigDir + "/config.yaml")
	if !strings.Contains(string(cfg), "- api.store-berlin.example") {
		t.Errorf("the DNS name is not in tls-san:\n%s", cfg)
	}
}

func TestSeedSpellingOfConfig(t *testing.T) {
	_, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	old.Values += "cluster:\n  config:\n    cluster-cidr: 10.50.0.0/16\n"
	r, err := New(distro.Env{}).cfg.Render(dt.Action(v1.RoleInit, old))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.Config), "cluster-cidr: 10.50.0.0/16") {
		t.Errorf("cluster.config was not read:\n%s", r.Config)
	}
}

func TestReinstallIsIdempotent(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, nil)
	p := New(h.Env)
	a := dt.Action(v1.RoleInit, old)
	h.Install(p, a, nil)
	before := h.Snapshot()
	// An agent killed after the service started but before the state was
	// saved does it all again: the same files, no harm.
	if err := h.Env.DropState(Pack); err != nil {
		t.Fatal(err)
	}
	h.Install(p, a, nil)
	after := h.Snapshot()
	for path, e := range before {
		if a, ok := after[path]; !ok || string(a.Data) != string(e.Data) || a.Mode != e.Mode {
			t.Errorf("%s changed on the second install", path)
		}
	}
}

func TestUpgradeOfANodeWhoseAPIIsDown(t *testing.T) {
	osLayer, old := dt.Render(t, dt.Profile(Pack, oldVersion))
	_, newer := dt.Render(t, dt.Profile(Pack, newVersion))
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, nil)
	h.Serve(newer, nil)
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleInit, old), nil)
	h.Run.On(kubectl+" get nodes -o name", "").Err = refused{}
	h.Run.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "True")
	if err := p.Apply(context.Background(), dt.Upgrade(v1.RoleInit, old, newer)); err != nil {
		t.Fatalf("an upgrade must repair a node whose k3s is down: %v", err)
	}
	got := strings.Join(h.Run.Lines(), "\n")
	if strings.Contains(got, " drain ") || !strings.Contains(got, "systemctl restart k3s.service") {
		t.Errorf("commands:\n%s", got)
	}
}
