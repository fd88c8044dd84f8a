package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// api calls the hub's user API as the admin and decodes the answer.
func (h *hub) api(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+h.apiAddr+path, rd)
	req.Header.Set("Authorization", "Bearer "+h.adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func (h *hub) cluster(t *testing.T, name string) v1.Cluster {
	t.Helper()
	var c v1.Cluster
	h.api(t, "GET", "/api/v1/projects/default/clusters/"+name, nil, &c)
	return c
}

func (h *hub) waitCluster(t *testing.T, name string, timeout time.Duration, what string, cond func(v1.Cluster) bool) v1.Cluster {
	t.Helper()
	var got v1.Cluster
	eventually(t, timeout, "cluster "+name+" "+what, func() (bool, string) {
		got = h.cluster(t, name)
		var nodes []string
		for _, n := range got.Status.Nodes {
			nodes = append(nodes, fmt.Sprintf("%s=%s(%s %d/%d %s)", n.Host, n.State, n.Step, n.StepsDone, n.Steps, n.Message))
		}
		return cond(got), got.Status.State + " " + got.Status.Reason + " " + strings.Join(nodes, " ")
	})
	return got
}

func state(s string) func(v1.Cluster) bool {
	return func(c v1.Cluster) bool { return c.Status.State == s }
}

// changeCluster reads, changes and writes a cluster's spec.
func (h *hub) changeCluster(t *testing.T, name string, mod func(*v1.ClusterSpec)) {
	t.Helper()
	c := h.cluster(t, name)
	mod(&c.Spec)
	h.api(t, "PUT", "/api/v1/projects/default/clusters/"+name, c, nil)
}

func (a *agentHost) actions() []string {
	b, _ := os.ReadFile(filepath.Join(a.root, "var/lib/outpost-sim/actions.log"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (a *agentHost) faults(yaml string) {
	p := filepath.Join(a.root, "etc/outpost-sim/faults.yaml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		a.t.Fatal(err)
	}
}

func noDuplicates(t *testing.T, a *agentHost) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range a.actions() {
		if seen[l] {
			t.Errorf("host %s did %q twice:\n%s", a.name, l, strings.Join(a.actions(), "\n"))
		}
		seen[l] = true
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestIntegrationClusterLifecycle runs the hub and five agent processes with
// the simulated distro provider (simulation: the real engine, hub and
// protocol; only the distro binaries are stand-ins) through create, scale
// with both strategies, reconfigure, upgrade, an agent killed mid-step, the
// hub killed mid-provisioning, delete and abort.
func TestIntegrationClusterLifecycle(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir)
	admin := newCLI(t, h, h.adminToken)
	token := findToken(t, admin.must("tokens", "create", "fleet", "--max-uses", "10"), "ort_")
	admin.must("apply", "-f", "../../examples/store-edge.yaml")

	var hosts []*agentHost
	for i := 1; i <= 5; i++ {
		a := newAgentHost(t, dir, fmt.Sprintf("h%d", i), fmt.Sprintf("%032x", 0xc1a55000+i))
		a.simulate = true
		a.writeUserData(h, "registration:\n  token: "+token+"\nhost:\n  id: h"+fmt.Sprint(i)+"\n")
		a.start()
		hosts = append(hosts, a)
	}
	for _, a := range hosts {
		waitHost(t, admin, a.name, 20*time.Second, readyHealthy, "Ready")
	}
	h1, h2, h3, h4, h5 := hosts[0], hosts[1], hosts[2], hosts[3], hosts[4]

	// --- create: 1 control plane + 2 workers ---
	h.api(t, "POST", "/api/v1/projects/default/clusters", v1.Cluster{
		Metadata: v1.ObjectMeta{Name: "store-a"},
		Spec: v1.ClusterSpec{
			Profiles:  []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}},
			Variables: map[string]string{"siteCode": "de-001"},
			Pools: []v1.NodePool{
				{Name: "cp", ControlPlane: true, AllowWorkloads: true, Hosts: []string{"h1"}},
				{Name: "workers", Hosts: []string{"h2", "h3"}},
			},
		},
	}, nil)
	c := h.waitCluster(t, "store-a", 60*time.Second, "Running", state(v1.ClusterRunning))
	if c.Status.Health != v1.HealthHealthy || len(c.Status.Nodes) != 3 {
		t.Fatalf("running cluster: %+v", c.Status)
	}
	if countPrefix(h1.actions(), "install k3s") != 1 || !strings.Contains(h1.actions()[1], "role=init") {
		t.Errorf("init node actions:\n%s", strings.Join(h1.actions(), "\n"))
	}
	for _, a := range []*agentHost{h2, h3} {
		if countPrefix(a.actions(), "install k3s") != 1 || countPrefix(a.actions(), "apply layer") != 3 {
			t.Errorf("worker %s actions:\n%s", a.name, strings.Join(a.actions(), "\n"))
		}
	}
	for _, id := range []string{"h1", "h2", "h3"} {
		if e, _ := hostState(admin, id); e.Status.State != v1.HostInUse {
			t.Errorf("host %s is %s in a running cluster", id, e.Status.State)
		}
	}

	// --- scale up (expand-first) and down (contract-first) ---
	h.changeCluster(t, "store-a", func(s *v1.ClusterSpec) { s.Pools[1].Hosts = append(s.Pools[1].Hosts, "h4") })
	h.waitCluster(t, "store-a", 60*time.Second, "Running with h4", func(c v1.Cluster) bool {
		return c.Status.State == v1.ClusterRunning && len(c.Status.Nodes) == 4
	})
	h.changeCluster(t, "store-a", func(s *v1.ClusterSpec) {
		s.Pools[1].Hosts = []string{"h3", "h4"}
		s.Pools[1].UpdateStrategy = v1.ContractFirst
	})
	h.waitCluster(t, "store-a", 60*time.Second, "Running without h2", func(c v1.Cluster) bool {
		return c.Status.State == v1.ClusterRunning && len(c.Status.Nodes) == 3
	})
	waitHost(t, admin, "h2", 10*time.Second, readyHealthy, "Ready after leaving")
	if countPrefix(h2.actions(), "remove k3s") != 1 {
		t.Errorf("h2 did not tear down:\n%s", strings.Join(h2.actions(), "\n"))
	}

	// --- reconfigure: only the changed layer acts, on every node ---
	mark := map[string]int{}
	for _, a := range []*agentHost{h1, h3, h4} {
		mark[a.name] = len(a.actions())
	}
	h.changeCluster(t, "store-a", func(s *v1.ClusterSpec) {
		s.Overrides = []v1.LayerOverride{{Layer: "metrics-server", Values: "replicas: 2\n"}}
	})
	h.waitCluster(t, "store-a", 60*time.Second, "Running after reconfigure", func(c v1.Cluster) bool {
		if c.Status.State != v1.ClusterRunning {
			return false
		}
		for _, a := range []*agentHost{h1, h3, h4} {
			if len(a.actions()) == mark[a.name] {
				return false
			}
		}
		return true
	})
	for _, a := range []*agentHost{h1, h3, h4} {
		news := a.actions()[mark[a.name]:]
		if len(news) != 1 || !strings.HasPrefix(news[0], "apply layer metrics-server") {
			t.Errorf("reconfigure on %s did %v, want only the metrics-server layer", a.name, news)
		}
	}

	// --- upgrade to a profile version on a newer k3s: one node at a time ---
	out := admin.must("profiles", "bump", "store-edge@1.0.0", "--part", "minor", "-o", "json")
	var next v1.ClusterProfile
	if err := json.Unmarshal([]byte(out), &next); err != nil {
		t.Fatalf("bump: %v\n%s", err, out)
	}
	next.Spec.Layers[1].Version = "1.33.x"
	h.api(t, "PUT", "/api/v1/projects/default/profiles/store-edge/"+next.Spec.Version, next, nil)
	h.changeCluster(t, "store-a", func(s *v1.ClusterSpec) { s.Profiles[0].Version = next.Spec.Version })
	h.waitCluster(t, "store-a", 90*time.Second, "Running after the upgrade", func(c v1.Cluster) bool {
		return c.Status.State == v1.ClusterRunning && countPrefix(h4.actions(), "upgrade k3s") == 1
	})
	var evs v1.List[v1.Event]
	h.api(t, "GET", "/api/v1/projects/default/events?object=Cluster/store-a", nil, &evs)
	var turns []string
	for _, e := range evs.Items {
		if e.Reason == "UpgradeTurn" {
			turns = append(turns, strings.Fields(e.Message)[1])
		}
	}
	if len(turns) != 3 || turns[0] != "h1" {
		t.Errorf("upgrade turns %v: three, one at a time, control plane first", turns)
	}
	for _, a := range []*agentHost{h1, h3, h4} {
		if n := countPrefix(a.actions(), "upgrade k3s"); n != 1 {
			t.Errorf("%s upgraded %d times", a.name, n)
		}
	}

	// --- an agent killed in the middle of a step, then restarted ---
	h3.faults("stepDelay: 3s\n")
	h.changeCluster(t, "store-a", func(s *v1.ClusterSpec) {
		s.Overrides = []v1.LayerOverride{{Layer: "metrics-server", Values: "replicas: 3\n"}}
	})
	h.waitCluster(t, "store-a", 30*time.Second, "h3 in the middle of a step", func(c v1.Cluster) bool {
		for _, n := range c.Status.Nodes {
			if n.Host == "h3" && n.State == v1.NodeApplying && n.Step != "" {
				return true
			}
		}
		return false
	})
	h3.p.stop(syscall.SIGKILL)
	h3.faults("stepDelay: 100ms\n")
	h3.start()
	h.waitCluster(t, "store-a", 60*time.Second, "Running after the agent restart", func(c v1.Cluster) bool {
		return c.Status.State == v1.ClusterRunning && countPrefix(h3.actions(), "apply layer metrics-server") == 3
	})
	noDuplicates(t, h3)

	// --- the hub killed in the middle of provisioning, then restarted ---
	h5.faults("stepDelay: 1s\n")
	h.api(t, "POST", "/api/v1/projects/default/clusters", v1.Cluster{
		Metadata: v1.ObjectMeta{Name: "store-b"},
		Spec: v1.ClusterSpec{
			Profiles:  []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}},
			Variables: map[string]string{"siteCode": "de-002"},
			Pools:     []v1.NodePool{{Name: "cp", ControlPlane: true, Hosts: []string{"h5"}}},
		},
	}, nil)
	eventually(t, 30*time.Second, "h5 in the middle of provisioning", func() (bool, string) {
		return len(h5.actions()) >= 2, strings.Join(h5.actions(), "; ")
	})
	h.proc.stop(syscall.SIGKILL)
	h = restartHub(t, h)
	admin = newCLI(t, h, h.adminToken)
	h.waitCluster(t, "store-b", 60*time.Second, "Running after the hub restart", state(v1.ClusterRunning))
	noDuplicates(t, h5)
	if n := countPrefix(h5.actions(), "install k3s"); n != 1 {
		t.Errorf("h5 installed k3s %d times", n)
	}

	// --- delete: every host tears down and is Ready again ---
	h.api(t, "DELETE", "/api/v1/projects/default/clusters/store-a", nil, nil)
	h.waitCluster(t, "store-a", 60*time.Second, "Deleted", state(v1.ClusterDeleted))
	for _, a := range []*agentHost{h1, h3, h4} {
		waitHost(t, admin, a.name, 10*time.Second, readyHealthy, "Ready after delete")
		if countPrefix(a.actions(), "remove k3s") != 1 {
			t.Errorf("%s did not remove k3s:\n%s", a.name, strings.Join(a.actions(), "\n"))
		}
	}

	// --- abort in the middle of provisioning ---
	h2.faults("stepDelay: 2s\n")
	h.api(t, "POST", "/api/v1/projects/default/clusters", v1.Cluster{
		Metadata: v1.ObjectMeta{Name: "store-c"},
		Spec: v1.ClusterSpec{
			Profiles:  []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}},
			Variables: map[string]string{"siteCode": "de-003"},
			Pools:     []v1.NodePool{{Name: "cp", ControlPlane: true, Hosts: []string{"h2"}}},
		},
	}, nil)
	h.waitCluster(t, "store-c", 30*time.Second, "Provisioning", state(v1.ClusterProvisioning))
	h2.faults("stepDelay: 100ms\n")
	h.api(t, "POST", "/api/v1/projects/default/clusters/store-c/abort", nil, nil)
	h.waitCluster(t, "store-c", 60*time.Second, "Deleted after abort", state(v1.ClusterDeleted))
	waitHost(t, admin, "h2", 10*time.Second, readyHealthy, "Ready after abort")
	if got := h2.actions(); !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "remove k3s") }) {
		t.Errorf("aborted host did not clean up:\n%s", strings.Join(got, "\n"))
	}
}
