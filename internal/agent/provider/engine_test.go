package provider_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider"
	dt "github.com/outpost-edge/outpost/internal/agent/provider/distro/distrotest"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
	"github.com/outpost-edge/outpost/internal/agent/provider/k3s"
)

// noop applies the CNI and CSI layers: they are another engineer's.
type noop struct{}

func (noop) Check(context.Context, engine.LayerAction) (bool, error) { return false, nil }
func (noop) Apply(context.Context, engine.LayerAction) error         { return nil }
func (noop) Remove(context.Context, engine.LayerAction) error        { return nil }

// The engine drives the real k3s provider and OS applier through a whole
// life: install as the init node, report Ready, then remove.
func TestEngineWithK3s(t *testing.T) {
	osLayer, k3sLayer := dt.Render(t, dt.Profile("k3s", "1.32.3+k3s1"))
	h := dt.NewHost(t)
	h.Write("/etc/os-release", dt.OSRelease, 0o644)
	h.Serve(k3sLayer, nil)
	started := h.Run.On("systemctl enable --now k3s.service", "")
	started.Do = func(hostexec.Cmd) error {
		h.Write(k3s.AdminKubeconfig, "fake", 0o600)
		return nil
	}
	h.Run.On("/usr/local/bin/k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml get node edge-cp1 -o json", `{"status": {
		"conditions": [{"type": "Ready", "status": "True"}],
		"addresses": [{"type": "InternalIP", "address": "192.168.10.11"}],
		"nodeInfo": {"kubeletVersion": "v1.32.3+k3s1"}}}`)

	distros, layers := provider.Build(provider.Config{Root: h.Root, Runner: h.Run, Fetcher: h.Env.Fetch, Log: h.Env.Log, Arch: "amd64"})
	var mu sync.Mutex
	var reports []v1.NodeReportSpec
	e, err := engine.New(engine.Config{
		StateDir:     t.TempDir(),
		Distros:      distros,
		Layers:       engine.Registry[engine.LayerApplier]{ByName: layers, Fallback: noop{}, HasFallback: true},
		Logger:       h.Env.Log,
		Report:       func(r v1.NodeReportSpec) { mu.Lock(); reports = append(reports, r); mu.Unlock() },
		RetryMin:     time.Millisecond,
		PollInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	wait := func(what string, ok func(v1.NodeReportSpec) bool) v1.NodeReportSpec {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			var last v1.NodeReportSpec
			if len(reports) > 0 {
				last = reports[len(reports)-1]
			}
			mu.Unlock()
			if ok(last) {
				return last
			}
			if last.State == v1.NodeFailed {
				t.Fatalf("%s: node failed: %s", what, last.Message)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s: no such report; commands:\n%s", what, strings.Join(h.Run.Lines(), "\n"))
		return v1.NodeReportSpec{}
	}
	spec := v1.HostSpec{Metadata: v1.ObjectMeta{Name: dt.InitNode}, Hash: "spec-1", Cluster: &v1.HostCluster{
		Name: dt.Cluster, Role: v1.RoleInit, JoinToken: dt.JoinToken, VIP: dt.VIP,
		OS: &osLayer, Distro: &k3sLayer,
	}}
	e.Apply(spec)
	r := wait("install", func(r v1.NodeReportSpec) bool { return r.SpecHash == "spec-1" && r.State == v1.NodeReady })
	if !r.NodeReady || !r.ControlPlaneUp || r.KubernetesVersion != "1.32.3" || r.Address != "192.168.10.11" {
		t.Errorf("report %+v", r)
	}
	if !h.Env.Exists(k3s.BinPath) || !h.Env.Exists("/etc/outpost/hooks/pre-kubernetes.sh") {
		t.Error("k3s or the OS layer's hooks are not on the host")
	}

	removal := spec
	removal.Hash = "spec-2"
	c := *spec.Cluster
	c.Remove = true
	removal.Cluster = &c
	e.Apply(removal)
	wait("remove", func(r v1.NodeReportSpec) bool { return r.SpecHash == "spec-2" && r.State == v1.NodeRemoved })
	for _, p := range []string{k3s.BinPath, k3s.ConfigDir, k3s.DataDir, "/etc/systemd/system/k3s.service"} {
		if h.Env.Exists(p) {
			t.Errorf("%s is still there after remove", p)
		}
	}
	if !h.Env.Exists("/etc/outpost/hooks/pre-kubernetes.sh") {
		t.Error("remove took the OS layer's hooks: the OS layer is the host's, not the cluster's")
	}
}
