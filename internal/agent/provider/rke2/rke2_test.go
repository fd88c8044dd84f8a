package rke2

import (
	"context"
	"net/url"
	"path"
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
	oldVersion = "1.32.3+rke2r1"
	newVersion = "1.33.1+rke2r1"
	kubectl    = Kubectl + " --kubeconfig " + AdminKubeconfig
)

// unit is the systemd unit rke2's tarball carries.
func unit(role, typ, conflicts string) string {
	return `[Unit]
Description=Rancher Kubernetes Engine v2 (` + role + `)
Documentation=https://github.com/rancher/rke2#readme
Wants=network-online.target
After=network-online.target
Conflicts=` + conflicts + `

[Install]
WantedBy=multi-user.target

[Service]
Type=` + typ + `
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/usr/local/lib/systemd/system/%N.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service'
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/rke2 ` + role + `
ExecStopPost=-/bin/sh -c "systemd-cgls /system.slice/%n | grep -Eo '[0-9]+ (containerd|kubelet)' | awk '{print $1}' | xargs -r kill"
`
}

// tarball is a fake rke2.linux-<arch>.tar.gz with the layout of the real
// one.
func tarball(a v1.Artifact) []byte {
	version, _ := url.PathUnescape(strings.TrimPrefix(path.Base(path.Dir(a.URL)), "v"))
	return dt.TarGz(
		dt.TarEntry{Name: "bin/", Mode: 0o755},
		dt.TarEntry{Name: "bin/rke2", Mode: 0o755, Body: "#!/bin/sh\n# fake rke2 " + version + " (linux/" + a.Arch + ")\n"},
		dt.TarEntry{Name: "bin/rke2-killall.sh", Mode: 0o755, Body: "#!/bin/sh\n# fake rke2-killall.sh\n"},
		dt.TarEntry{Name: "bin/rke2-uninstall.sh", Mode: 0o755, Body: "#!/bin/sh\n# fake rke2-uninstall.sh\n"},
		dt.TarEntry{Name: "lib/systemd/system/rke2-agent.env", Mode: 0o644, Body: "HOME=/root\n"},
		dt.TarEntry{Name: "lib/systemd/system/rke2-agent.service", Mode: 0o644, Body: unit("agent", "exec", "rke2-server.service")},
		dt.TarEntry{Name: "lib/systemd/system/rke2-server.env", Mode: 0o644, Body: "HOME=/root\n"},
		dt.TarEntry{Name: "lib/systemd/system/rke2-server.service", Mode: 0o644, Body: unit("server", "notify", "rke2-agent.service")},
		dt.TarEntry{Name: "share/rke2/rke2-cis-sysctl.conf", Mode: 0o644, Body: "vm.panic_on_oom=0\nkernel.panic=10\nkernel.panic_on_oops=1\n"},
	)
}

var running = map[string]string{
	AdminKubeconfig:                     "apiVersion: v1\nkind: Config\n# fake rke2 admin kubeconfig\n",
	Kubectl:                             "#!/bin/sh\n# kubectl unpacked by rke2\n",
	DataDir + "/server/token":           "K10fake::server:" + dt.JoinToken + "\n",
	DataDir + "/server/db/etcd/config":  "name: edge-cp2\n",
	"/etc/rancher/node/password":        "fake-node-password\n",
	"/var/lib/kubelet/pods/6f1c2a/x":    "volume data\n",
	"/var/log/pods/kube-system_x/0.log": "log\n",
	"/etc/cni/net.d/10-calico.conflist": "{\"name\": \"k8s-pod-network\"}\n",
}

func layers(t *testing.T) (osLayer, old, newer v1.RenderedLayer) {
	osLayer, old = dt.Render(t, dt.Profile(Pack, oldVersion))
	_, newer = dt.Render(t, dt.Profile(Pack, newVersion))
	return osLayer, old, newer
}

func host(t *testing.T) (*dt.Host, v1.RenderedLayer, v1.RenderedLayer) {
	osLayer, old, newer := layers(t)
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, tarball)
	h.Serve(newer, tarball)
	return h, old, newer
}

func TestContract(t *testing.T) {
	osLayer, old, newer := layers(t)
	base := func(h *dt.Host) {
		h.ApplyOS(osLayer)
		h.Serve(old, tarball)
		h.Serve(newer, tarball)
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
			Title:  "rke2 " + oldVersion + ": install the init node " + dt.InitNode + " of cluster " + dt.Cluster + " (VIP " + dt.VIP + ")",
			Setup:  base,
			Action: dt.Action(v1.RoleInit, old),
		},
		{
			Name:   "join-control-plane",
			Title:  "rke2 " + oldVersion + ": join " + dt.CPNode + " as a control-plane node through the VIP (supervisor port 9345)",
			Setup:  base,
			Action: dt.Action(v1.RoleControlPlane, old),
		},
		{
			Name:   "join-worker",
			Title:  "rke2 " + oldVersion + ": join " + dt.Worker + " as a worker (agent) through the VIP",
			Setup:  base,
			Action: dt.Action(v1.RoleWorker, old),
		},
		{
			Name:  "upgrade",
			Title: "rke2 " + oldVersion + " -> " + newVersion + " on the init node, in its turn: cordon, drain, replace, restart, wait Ready, uncordon",
			Setup: installed(v1.RoleInit),
			Script: func(r *hostexec.Recorder) {
				r.On(kubectl+" get nodes -o name", "node/edge-cp1\nnode/edge-cp2\nnode/edge-w1\n")
				r.On(kubectl+" get node "+dt.InitNode+" -o 'jsonpath=", "True")
			},
			Action: dt.Upgrade(v1.RoleInit, old, newer),
		},
		{
			Name:  "remove",
			Title: "rke2 " + oldVersion + ": remove control-plane node " + dt.CPNode + " when its cluster is deleted",
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

func TestWorkerUpgradeRestartsInPlace(t *testing.T) {
	h, old, newer := host(t)
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleWorker, old), nil)
	h.Run.On(Kubectl+" --kubeconfig "+AgentKubeconfig+" get node "+dt.Worker+" -o 'jsonpath=", "True")
	if err := p.Apply(context.Background(), dt.Upgrade(v1.RoleWorker, old, newer)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.Run.Lines(), "\n")
	if strings.Contains(got, "drain") || !strings.Contains(got, "systemctl restart rke2-agent.service") {
		t.Errorf("commands:\n%s", got)
	}
	data, err := h.Root.ReadFile(BinPath)
	if err != nil || !strings.Contains(string(data), newVersion) {
		t.Errorf("rke2 binary after upgrade: %q %v", data, err)
	}
}

func TestTarballWithoutUnitIsRefused(t *testing.T) {
	osLayer, old, _ := layers(t)
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, func(v1.Artifact) []byte {
		return dt.TarGz(dt.TarEntry{Name: "bin/rke2", Mode: 0o755, Body: "x"})
	})
	err := New(h.Env).Apply(context.Background(), dt.Action(v1.RoleInit, old))
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "lib/systemd/system/rke2-server.service") {
		t.Fatalf("err = %v", err)
	}
}

func TestTarballCannotEscapePrefix(t *testing.T) {
	osLayer, old, _ := layers(t)
	h := dt.NewHost(t)
	h.ApplyOS(osLayer)
	h.Serve(old, func(v1.Artifact) []byte {
		return dt.TarGz(dt.TarEntry{Name: "../../etc/evil", Mode: 0o644, Body: "x"})
	})
	New(h.Env).Apply(context.Background(), dt.Action(v1.RoleInit, old))
	if h.Env.Exists("/etc/evil") {
		t.Error("an entry with ../ was written outside /usr/local")
	}
}

func TestStatusOfAgent(t *testing.T) {
	h, old, _ := host(t)
	p := New(h.Env)
	h.Install(p, dt.Action(v1.RoleWorker, old), nil)
	h.Write(AgentKubeconfig, "fake", 0o600)
	h.Run.On(Kubectl+" --kubeconfig "+AgentKubeconfig+" get node "+dt.Worker+" -o json", `{"status": {
		"conditions": [{"type": "Ready", "status": "False"}],
		"addresses": [{"type": "InternalIP", "address": "192.168.10.21"}],
		"nodeInfo": {"kubeletVersion": "v1.32.3+rke2r1"}}}`)
	st, err := p.Status(context.Background())
	want := engine.NodeState{Joined: true, KubernetesVersion: "1.32.3", Address: "192.168.10.21"}
	if err != nil || st != want {
		t.Errorf("status = %+v, %v; want %+v", st, err, want)
	}
	for _, l := range h.Run.Lines() {
		if strings.Contains(l, "readyz") {
			t.Errorf("an agent asked for /readyz: %s", l)
		}
	}
}
