package service

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/examples"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/profile"
)

// clusterFixture has the built-in catalog, the store-edge profile and
// enrolled hosts, and plays the agents by writing their reports.
type clusterFixture struct {
	*fixture
	t      *testing.T
	agents map[string]*AgentIdentity
}

func newClusterFixture(t *testing.T, hosts ...string) *clusterFixture {
	f := &clusterFixture{fixture: newFixture(t, Config{}), t: t, agents: map[string]*AgentIdentity{}}
	ctx := context.Background()
	if err := f.svc.EnsureBuiltinRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Decode(examples.StoreEdge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateProfile(ctx, admin, DefaultProject, p); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		f.agents[h] = f.enrolled(t, h)
	}
	return f
}

func (f *clusterFixture) reconcile(name string) *storedCluster {
	f.t.Helper()
	ctx := context.Background()
	// Twice: the second pass must find nothing left to do but what the
	// first decided (a level-triggered controller converges).
	for range 2 {
		if err := f.svc.reconcileCluster(ctx, DefaultProject, name); err != nil {
			f.t.Fatalf("reconcile: %v", err)
		}
	}
	c, err := objects.Get[storedCluster](ctx, f.store, v1.KindCluster, DefaultProject, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *clusterFixture) spec(host string) *v1.HostSpec {
	f.t.Helper()
	s, err := objects.GetByKey[v1.HostSpec](context.Background(), f.store, v1.KindHostSpec, host)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// report plays the agent: it says it applied its current spec.
func (f *clusterFixture) report(host, state string, mod func(*v1.NodeReportSpec)) {
	f.t.Helper()
	sp := f.spec(host)
	rep := &v1.NodeReportSpec{SpecHash: sp.Hash, State: state, Address: "10.0.0." + host[len(host)-1:]}
	if sp.Cluster != nil && state == v1.NodeReady {
		rep.NodeReady = true
		rep.ControlPlaneUp = sp.Cluster.Role != v1.RoleWorker
		rep.Removed = sp.Cluster.Remove
	}
	if mod != nil {
		mod(rep)
	}
	if err := f.svc.ReportStatus(context.Background(), f.agents[host], rep); err != nil {
		f.t.Fatal(err)
	}
}

func storeEdgeCluster(cp []string, workers []string) *v1.Cluster {
	c := &v1.Cluster{
		Metadata: v1.ObjectMeta{Name: "store-17"},
		Spec: v1.ClusterSpec{
			Profiles:  []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}},
			Variables: map[string]string{"siteCode": "de-017"},
			Pools:     []v1.NodePool{{Name: "cp", ControlPlane: true, Hosts: cp}},
		},
	}
	if len(workers) > 0 {
		c.Spec.Pools = append(c.Spec.Pools, v1.NodePool{Name: "workers", Hosts: workers})
	}
	if len(cp) > 1 {
		c.Spec.VIP = "10.0.0.100"
	}
	return c
}

func TestClusterProvisionsInitFirstThenJoiners(t *testing.T) {
	f := newClusterFixture(t, "h1", "h2", "h3")
	ctx := context.Background()
	if _, err := f.svc.CreateCluster(ctx, admin, DefaultProject, storeEdgeCluster([]string{"h1"}, []string{"h2", "h3"})); err != nil {
		t.Fatal(err)
	}
	c := f.reconcile("store-17")
	if c.Status.State != v1.ClusterProvisioning {
		t.Fatalf("state %s", c.Status.State)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		host, _ := f.svc.GetHost(ctx, admin, DefaultProject, h)
		if host.Status.State != v1.HostInUse || host.Status.Cluster != "store-17" {
			t.Fatalf("host %s is %s/%q", h, host.Status.State, host.Status.Cluster)
		}
	}
	if s := f.spec("h1"); s.Cluster == nil || s.Cluster.Role != v1.RoleInit || s.Cluster.Distro.Pack != "k3s" || s.Cluster.JoinToken == "" {
		t.Fatalf("init spec: %+v", s.Cluster)
	}
	if s := f.spec("h2"); s.Cluster != nil {
		t.Fatal("a joiner got its spec before the init node's control plane was up")
	}
	f.report("h1", v1.NodeReady, nil)
	c = f.reconcile("store-17")
	w := f.spec("h2")
	if w.Cluster == nil || w.Cluster.Role != v1.RoleWorker || w.Cluster.JoinEndpoint != "10.0.0.1" || w.Cluster.JoinToken != f.spec("h1").Cluster.JoinToken {
		t.Fatalf("worker spec after init is up: %+v", w.Cluster)
	}
	if c.Status.State != v1.ClusterProvisioning {
		t.Fatalf("state with workers pending: %s", c.Status.State)
	}
	f.report("h2", v1.NodeReady, nil)
	f.report("h3", v1.NodeFailed, func(r *v1.NodeReportSpec) {
		r.Steps = []v1.StepStatus{{Name: "install k3s", State: v1.StepFailed, Message: "disk full"}}
		r.Message = "disk full"
	})
	c = f.reconcile("store-17")
	if c.Status.State != v1.ClusterFailed || !strings.Contains(c.Status.Reason, "h3") || !strings.Contains(c.Status.Reason, "disk full") {
		t.Fatalf("failed node: %s %q", c.Status.State, c.Status.Reason)
	}
	f.report("h3", v1.NodeReady, nil)
	f.report("h1", v1.NodeReady, func(r *v1.NodeReportSpec) {
		r.KubernetesVersion = "v1.32.3+k3s1"
		r.Layers = []v1.LayerHealth{{Name: "calico", State: v1.LayerProgressing, Message: "DaemonSet calico-node 0/1 ready"}}
	})
	c = f.reconcile("store-17")
	if c.Status.State != v1.ClusterRunning || c.Status.Health != v1.HealthHealthy {
		t.Fatalf("all ready: %s/%s %+v", c.Status.State, c.Status.Health, c.Status.Nodes)
	}
	if n := c.Status.Nodes[0]; n.Host != "h1" || n.KubernetesVersion != "v1.32.3+k3s1" || len(n.Layers) != 1 || n.Layers[0].State != v1.LayerProgressing {
		t.Fatalf("the cluster view lacks what the init node reported: %+v", n)
	}
	// The join secret is sealed in the store, never in the clear.
	raw, _ := f.store.Get(ctx, v1.KindCluster, DefaultProject, "store-17")
	if strings.Contains(string(raw.Data), f.spec("h1").Cluster.JoinToken) {
		t.Fatal("join token stored in the clear")
	}
}

func running(t *testing.T, f *clusterFixture, cp, workers []string) {
	t.Helper()
	if _, err := f.svc.CreateCluster(context.Background(), admin, DefaultProject, storeEdgeCluster(cp, workers)); err != nil {
		t.Fatal(err)
	}
	f.reconcile("store-17")
	for _, h := range append(cp, workers...) {
		f.reconcile("store-17")
		f.report(h, v1.NodeReady, nil)
	}
	if c := f.reconcile("store-17"); c.Status.State != v1.ClusterRunning {
		t.Fatalf("not running: %s %+v", c.Status.State, c.Status.Nodes)
	}
}

func TestClusterUpgradeOneNodeAtATime(t *testing.T) {
	f := newClusterFixture(t, "h1", "h2", "h3")
	ctx := context.Background()
	running(t, f, []string{"h1"}, []string{"h2", "h3"})
	old := f.spec("h1").Cluster.Distro.Version

	// A new profile version on an older k3s minor train: the distro changes.
	next, err := f.svc.BumpProfile(ctx, admin, DefaultProject, "store-edge", "1.0.0", "minor")
	if err != nil {
		t.Fatal(err)
	}
	next.Spec.Layers[1].Version = "1.33.x"
	if _, err := f.svc.UpdateProfile(ctx, admin, DefaultProject, "store-edge", next.Spec.Version, next); err != nil {
		t.Fatal(err)
	}
	c, _ := f.svc.GetCluster(ctx, admin, DefaultProject, "store-17")
	c.Spec.Profiles[0].Version = next.Spec.Version
	if _, err := f.svc.UpdateCluster(ctx, admin, DefaultProject, "store-17", c); err != nil {
		t.Fatal(err)
	}
	sc := f.reconcile("store-17")
	if sc.Status.Turn != "h1" || sc.Status.State != v1.ClusterUpdating {
		t.Fatalf("turn %q state %s: control plane first", sc.Status.Turn, sc.Status.State)
	}
	newVer := f.spec("h1").Cluster.Distro.Version
	if newVer == old || !f.spec("h1").Cluster.UpgradeGranted || f.spec("h2").Cluster.UpgradeGranted || f.spec("h3").Cluster.UpgradeGranted {
		t.Fatalf("grants: h1 %v h2 %v h3 %v (%s → %s)", f.spec("h1").Cluster.UpgradeGranted, f.spec("h2").Cluster.UpgradeGranted, f.spec("h3").Cluster.UpgradeGranted, old, newVer)
	}
	f.report("h2", v1.NodeWaiting, nil)
	f.report("h3", v1.NodeWaiting, nil)
	// The turn holder fails: nobody else may start.
	f.report("h1", v1.NodeFailed, func(r *v1.NodeReportSpec) { r.Message = "drain timed out" })
	sc = f.reconcile("store-17")
	if sc.Status.Turn != "h1" || f.spec("h2").Cluster.UpgradeGranted {
		t.Fatalf("a failed upgrade must stop the rollout: turn %q", sc.Status.Turn)
	}
	f.report("h1", v1.NodeReady, nil)
	sc = f.reconcile("store-17")
	if sc.Status.Turn != "h2" || !f.spec("h2").Cluster.UpgradeGranted || f.spec("h3").Cluster.UpgradeGranted {
		t.Fatalf("turn after h1: %q", sc.Status.Turn)
	}
	f.report("h2", v1.NodeReady, nil)
	sc = f.reconcile("store-17")
	if sc.Status.Turn != "h3" {
		t.Fatalf("turn after h2: %q", sc.Status.Turn)
	}
	f.report("h3", v1.NodeReady, nil)
	sc = f.reconcile("store-17")
	if sc.Status.Turn != "" || sc.Status.State != v1.ClusterRunning {
		t.Fatalf("after the rollout: turn %q state %s", sc.Status.Turn, sc.Status.State)
	}
}

func TestClusterScaleStrategies(t *testing.T) {
	for _, strategy := range []string{v1.ExpandFirst, v1.ContractFirst} {
		t.Run(strategy, func(t *testing.T) {
			f := newClusterFixture(t, "h1", "h2", "h3")
			ctx := context.Background()
			running(t, f, []string{"h1"}, []string{"h2"})
			c, _ := f.svc.GetCluster(ctx, admin, DefaultProject, "store-17")
			c.Spec.Pools[1].Hosts = []string{"h3"} // replace h2 by h3
			c.Spec.Pools[1].UpdateStrategy = strategy
			if _, err := f.svc.UpdateCluster(ctx, admin, DefaultProject, "store-17", c); err != nil {
				t.Fatal(err)
			}
			f.reconcile("store-17")
			h2, h3 := f.spec("h2").Cluster, f.spec("h3").Cluster
			if strategy == v1.ExpandFirst {
				if h3 == nil || h2.Remove {
					t.Fatalf("expand-first: the new host starts and the old one stays: h3 %v, h2 remove %v", h3 != nil, h2.Remove)
				}
				f.report("h3", v1.NodeReady, nil)
				f.reconcile("store-17")
				if !f.spec("h2").Cluster.Remove {
					t.Fatal("expand-first: the old host is not removed once the new one is Ready")
				}
				f.report("h2", v1.NodeReady, nil) // Removed
			} else {
				if h3 != nil || !h2.Remove {
					t.Fatalf("contract-first: the old host goes first: h3 %v, h2 remove %v", h3 != nil, h2.Remove)
				}
				f.report("h2", v1.NodeReady, nil) // Removed
				f.reconcile("store-17")
				if f.spec("h3").Cluster == nil {
					t.Fatal("contract-first: the new host does not start after the old one left")
				}
				f.report("h3", v1.NodeReady, nil)
			}
			c2 := f.reconcile("store-17")
			if c2.Status.State != v1.ClusterRunning || len(c2.Internal.Members) != 2 {
				t.Fatalf("after the replacement: %s members %v", c2.Status.State, c2.Internal.Members)
			}
			h, _ := f.svc.GetHost(ctx, admin, DefaultProject, "h2")
			if h.Status.State != v1.HostReady || f.spec("h2").Cluster != nil {
				t.Fatalf("released host: %s, spec %+v", h.Status.State, f.spec("h2").Cluster)
			}
		})
	}
}

func TestClusterDeleteAndAbort(t *testing.T) {
	f := newClusterFixture(t, "h1", "h2")
	ctx := context.Background()
	if _, err := f.svc.CreateCluster(ctx, admin, DefaultProject, storeEdgeCluster([]string{"h1"}, []string{"h2"})); err != nil {
		t.Fatal(err)
	}
	f.reconcile("store-17")
	f.report("h1", v1.NodeApplying, nil) // in the middle of provisioning
	if _, err := f.svc.AbortCluster(ctx, admin, DefaultProject, "store-17"); err != nil {
		t.Fatal(err)
	}
	c := f.reconcile("store-17")
	if c.Status.State != v1.ClusterDeleting || !f.spec("h1").Cluster.Remove {
		t.Fatalf("abort: %s, h1 remove %v", c.Status.State, f.spec("h1").Cluster.Remove)
	}
	// h2 never got a spec: it is released at once.
	if h, _ := f.svc.GetHost(ctx, admin, DefaultProject, "h2"); h.Status.State != v1.HostReady {
		t.Fatalf("h2 after abort: %s", h.Status.State)
	}
	f.report("h1", v1.NodeReady, nil) // removed
	c = f.reconcile("store-17")
	if c.Status.State != v1.ClusterDeleted {
		t.Fatalf("after teardown: %s", c.Status.State)
	}
	if h, _ := f.svc.GetHost(ctx, admin, DefaultProject, "h1"); h.Status.State != v1.HostReady {
		t.Fatalf("h1 after teardown: %s", h.Status.State)
	}
	if _, err := f.svc.AbortCluster(ctx, admin, DefaultProject, "store-17"); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("abort of a deleted cluster: %v", err)
	}
	if _, err := f.svc.DeleteCluster(ctx, admin, DefaultProject, "store-17"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetCluster(ctx, admin, DefaultProject, "store-17"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("purged cluster: %v", err)
	}
}

func TestClusterForceDelete(t *testing.T) {
	f := newClusterFixture(t, "h1")
	ctx := context.Background()
	c := storeEdgeCluster([]string{"h1"}, nil)
	c.Spec.ForceDeleteAfter = "1m"
	if _, err := f.svc.CreateCluster(ctx, admin, DefaultProject, c); err != nil {
		t.Fatal(err)
	}
	f.reconcile("store-17")
	if _, err := f.svc.DeleteCluster(ctx, admin, DefaultProject, "store-17"); err != nil {
		t.Fatal(err)
	}
	if s := f.reconcile("store-17"); s.Status.State != v1.ClusterDeleting {
		t.Fatalf("before the deadline: %s", s.Status.State)
	}
	f.advance(61 * 1e9)
	if s := f.reconcile("store-17"); s.Status.State != v1.ClusterDeleted {
		t.Fatalf("after the deadline the silent host is released: %s", s.Status.State)
	}
}

func TestClusterValidation(t *testing.T) {
	f := newClusterFixture(t, "h1", "h2", "h3", "h4")
	ctx := context.Background()
	tests := []struct {
		name  string
		mod   func(*v1.Cluster)
		field string
	}{
		{"even control plane", func(c *v1.Cluster) { c.Spec.Pools[0].Hosts = []string{"h1", "h2"}; c.Spec.VIP = "10.0.0.9" }, "spec.pools[cp].hosts"},
		{"vip needed", func(c *v1.Cluster) { c.Spec.Pools[0].Hosts = []string{"h1", "h2", "h3"}; c.Spec.VIP = "" }, "spec.vip"},
		{"unknown host", func(c *v1.Cluster) { c.Spec.Pools[0].Hosts = []string{"nope"} }, "spec.pools[cp].hosts[nope]"},
		{"host twice", func(c *v1.Cluster) {
			c.Spec.Pools = append(c.Spec.Pools, v1.NodePool{Name: "w", Hosts: []string{"h1"}})
		}, "spec.pools[w].hosts[h1]"},
		{"no control plane", func(c *v1.Cluster) { c.Spec.Pools[0].ControlPlane = false }, "spec.pools"},
		{"unknown profile", func(c *v1.Cluster) { c.Spec.Profiles[0].Version = "9.9.9" }, "spec.profiles[0]"},
		{"bad strategy", func(c *v1.Cluster) { c.Spec.Pools[0].UpdateStrategy = "yolo" }, "spec.pools[cp].updateStrategy"},
		{"missing variable", func(c *v1.Cluster) { c.Spec.Variables = nil }, "spec.variables.siteCode"},
		{"override of no layer", func(c *v1.Cluster) { c.Spec.Overrides = []v1.LayerOverride{{Layer: "nginx", Values: "a: 1"}} }, "spec.overrides[0].layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := storeEdgeCluster([]string{"h1"}, nil)
			tt.mod(c)
			_, err := f.svc.CreateCluster(ctx, admin, DefaultProject, c)
			var fl errs.FieldList
			var fe *errs.FieldError
			switch {
			case errors.As(err, &fl):
				for _, e := range fl {
					if e.Field == tt.field {
						return
					}
				}
			case errors.As(err, &fe) && fe.Field == tt.field:
				return
			}
			t.Fatalf("error %v does not name %s", err, tt.field)
		})
	}
	// A host in one cluster cannot join another.
	if _, err := f.svc.CreateCluster(ctx, admin, DefaultProject, storeEdgeCluster([]string{"h1"}, nil)); err != nil {
		t.Fatal(err)
	}
	f.reconcile("store-17")
	other := storeEdgeCluster([]string{"h1"}, nil)
	other.Metadata.Name = "other"
	if _, err := f.svc.CreateCluster(ctx, admin, DefaultProject, other); err == nil || !strings.Contains(err.Error(), "store-17") {
		t.Fatalf("host of another cluster: %v", err)
	}
}

func TestClusterDiffAndReconfigure(t *testing.T) {
	f := newClusterFixture(t, "h1", "h2")
	ctx := context.Background()
	running(t, f, []string{"h1"}, []string{"h2"})
	c, _ := f.svc.GetCluster(ctx, admin, DefaultProject, "store-17")
	proposed := c.Spec
	proposed.Overrides = []v1.LayerOverride{{Layer: "metrics-server", Values: "replicas: 2\n"}}
	d, err := f.svc.DiffCluster(ctx, admin, DefaultProject, "store-17", &proposed)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range d.Hosts {
		if len(h.Actions) != 1 || !strings.Contains(h.Actions[0], "reapply layer metrics-server") {
			t.Fatalf("diff for %s: %v (only the changed layer acts)", h.Host, h.Actions)
		}
	}
	before := f.spec("h1").Cluster
	c.Spec = proposed
	if _, err := f.svc.UpdateCluster(ctx, admin, DefaultProject, "store-17", c); err != nil {
		t.Fatal(err)
	}
	f.reconcile("store-17")
	after := f.spec("h1").Cluster
	if after.Distro.Hash != before.Distro.Hash || after.OS.Hash != before.OS.Hash {
		t.Fatal("a values change of one add-on touched the distro or the OS")
	}
	changed := 0
	for i := range after.Layers {
		if after.Layers[i].Hash != before.Layers[i].Hash {
			changed++
			if after.Layers[i].Name != "metrics-server" || !strings.Contains(after.Layers[i].Values, "replicas: 2") {
				t.Fatalf("changed layer %s: %s", after.Layers[i].Name, after.Layers[i].Values)
			}
		}
	}
	if changed != 1 {
		t.Fatalf("%d layers changed, want 1", changed)
	}
}

// A train moving after a cluster was created shows as an available update;
// the cluster keeps its pinned version until asked to take the newest.
func TestClusterUpdatesAvailableAndLatest(t *testing.T) {
	f := newClusterFixture(t, "h1")
	ctx := context.Background()
	dir := t.TempDir()
	writePack(t, dir, widgetPack)
	if _, err := f.svc.CreateRegistry(ctx, admin, &v1.Registry{Metadata: v1.ObjectMeta{Name: "lab"}, Spec: v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: dir}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateProfile(ctx, admin, DefaultProject, &v1.ClusterProfile{
		Metadata: v1.ObjectMeta{Name: "widgets"},
		Spec:     v1.ClusterProfileSpec{Type: v1.ProfileAddon, Version: "1.0.0", Layers: []v1.ProfileLayer{{Pack: "widget", Registry: "lab", Version: "1.x"}}},
	}); err != nil {
		t.Fatal(err)
	}
	c := storeEdgeCluster([]string{"h1"}, nil)
	c.Spec.Profiles = append(c.Spec.Profiles, v1.ClusterProfileRef{Name: "widgets", Version: "1.0.0"})
	if _, err := f.svc.CreateCluster(ctx, admin, DefaultProject, c); err != nil {
		t.Fatal(err)
	}
	f.reconcile("store-17")
	f.report("h1", v1.NodeReady, nil)
	widget := func() string {
		for _, l := range f.spec("h1").Cluster.Layers {
			if l.Name == "widget" {
				return l.Version
			}
		}
		return ""
	}
	if got := widget(); got != "1.0.0" {
		t.Fatalf("widget layer %q", got)
	}

	writePack(t, dir, widgetPack+strings.Replace(widgetPack[strings.Index(widgetPack, "  - version"):], "1.0.0", "1.3.0", 1))
	if _, err := f.svc.SyncRegistry(ctx, admin, "lab"); err != nil {
		t.Fatal(err)
	}
	p, _ := f.svc.GetProfile(ctx, admin, DefaultProject, "widgets", "1.0.0")
	f.svc.reResolve(ctx, p) // what the train controller does on the pack change
	sc := f.reconcile("store-17")
	if widget() != "1.0.0" {
		t.Fatal("a train move upgraded a running cluster by itself")
	}
	if len(sc.Status.UpdatesAvailable) != 1 || sc.Status.UpdatesAvailable[0].Layer != "widgets/widget" || sc.Status.UpdatesAvailable[0].Version != "1.3.0" {
		t.Fatalf("updates available: %+v", sc.Status.UpdatesAvailable)
	}
	cur, _ := f.svc.GetCluster(ctx, admin, DefaultProject, "store-17")
	cur.Spec.ResolveGeneration++
	if _, err := f.svc.UpdateCluster(ctx, admin, DefaultProject, "store-17", cur); err != nil {
		t.Fatal(err)
	}
	sc = f.reconcile("store-17")
	if widget() != "1.3.0" || len(sc.Status.UpdatesAvailable) != 0 {
		t.Fatalf("after --latest: widget %s, updates %+v", widget(), sc.Status.UpdatesAvailable)
	}
}

// Taking the trains' newest when no train moved changes nothing on any host.
func TestClusterLatestWithoutMovesIsANoop(t *testing.T) {
	f := newClusterFixture(t, "h1")
	ctx := context.Background()
	running(t, f, []string{"h1"}, nil)
	before := f.spec("h1").Hash
	c, _ := f.svc.GetCluster(ctx, admin, DefaultProject, "store-17")
	proposed := c.Spec
	proposed.ResolveGeneration++
	d, err := f.svc.DiffCluster(ctx, admin, DefaultProject, "store-17", &proposed)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Hosts) != 1 || len(d.Hosts[0].Actions) != 0 {
		t.Fatalf("diff: %+v", d.Hosts)
	}
	c.Spec = proposed
	if _, err := f.svc.UpdateCluster(ctx, admin, DefaultProject, "store-17", c); err != nil {
		t.Fatal(err)
	}
	if sc := f.reconcile("store-17"); f.spec("h1").Hash != before || sc.Status.Turn != "" {
		t.Fatalf("host spec changed (%s → %s) or a turn was given (%q)", before, f.spec("h1").Hash, sc.Status.Turn)
	}
}
