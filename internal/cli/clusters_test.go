package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/testutil/hubtest"
	"github.com/outpost-edge/outpost/pki"
)

func testClusterObject() *v1.Cluster {
	deleting := testNow.Add(-90 * time.Second)
	return &v1.Cluster{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindCluster},
		Metadata: v1.ObjectMeta{Name: "shop", Project: "stores", Labels: map[string]string{"site": "berlin"}, CreatedAt: testNow.Add(-2 * time.Hour)},
		Spec: v1.ClusterSpec{
			Profiles: []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}, {Name: "agents", Version: "2.1.0"}},
			Pools: []v1.NodePool{
				{Name: "cp", ControlPlane: true, Hosts: []string{"edge-1"}, UpdateStrategy: v1.ExpandFirst},
				{Name: "workers", Hosts: []string{"edge-2", "edge-4"}, UpdateStrategy: v1.ContractFirst},
			},
		},
		Status: v1.ClusterStatus{
			State: v1.ClusterUpdating, Health: v1.HealthUnhealthy, Endpoint: "10.0.0.11", Turn: "edge-2",
			DeletingSince: &deleting,
			Nodes: []v1.NodeStatus{
				{Host: "edge-1", Pool: "cp", Role: v1.RoleInit, State: v1.NodeReady, StepsDone: 3, Steps: 3},
				{Host: "edge-2", Pool: "workers", Role: v1.RoleWorker, State: v1.NodeFailed, Step: "install-distro", StepsDone: 1, Steps: 3, Message: "download failed:\n503"},
				// A host that leaves: not counted, but shown.
				{Host: "edge-3", Pool: "workers", Role: v1.RoleWorker, State: v1.NodeRemoving, Message: "tearing down"},
			},
			Layers: []v1.ClusterLayerStatus{
				{Profile: "store-edge", Layer: "k3s", Pack: "k3s", Version: "1.32.1+k3s1", Hash: "h1"},
				{Profile: "agents", Layer: "site", Hash: "h2"},
			},
			UpdatesAvailable: []v1.ResolvedLayerVersion{{Layer: "store-edge/k3s", Version: "1.32.2+k3s1"}},
			Conditions:       []v1.Condition{{Type: "Upgrading", Status: "True", Reason: "Turn", LastTransitionTime: testNow.Add(-5 * time.Minute)}},
		},
	}
}

func TestClusterTable(t *testing.T) {
	pending := v1.Cluster{
		Metadata: v1.ObjectMeta{Name: "kiosk", CreatedAt: testNow.Add(-30 * time.Second)},
		Spec:     v1.ClusterSpec{Profiles: []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}}, Pools: []v1.NodePool{{Name: "cp", ControlPlane: true, Hosts: []string{"edge-9"}}}},
		Status:   v1.ClusterStatus{State: v1.ClusterPending, Health: v1.HealthUnknown},
	}
	got := render(t, outputTable, nil, func(now time.Time) *table { return clusterTable([]v1.Cluster{*testClusterObject(), pending}, now) })
	want := "NAME    STATE      HEALTH      NODES   PROFILES                        ENDPOINT    AGE\n" +
		"shop    Updating   Unhealthy   1/3     store-edge@1.0.0,agents@2.1.0   10.0.0.11   2h\n" +
		"kiosk   Pending    Unknown     0/1     store-edge@1.0.0                -           30s\n"
	if got != want {
		t.Errorf("table =\n%s\nwant\n%s", got, want)
	}
}

func TestClusterWatchRowsAlign(t *testing.T) {
	var b bytes.Buffer
	tbl := clusterWatchTable(nil, testNow)
	if err := tbl.write(&b); err != nil {
		t.Fatal(err)
	}
	rw := &rowWriter{w: &b, widths: tbl.widths()}
	if err := rw.write(append([]string{v1.WatchModified}, clusterRow(testClusterObject(), testNow)...)...); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || strings.Index(lines[0], "STATE") != strings.Index(lines[1], "Updating") || strings.Index(lines[0], "NODES") != strings.Index(lines[1], "1/3") {
		t.Errorf("watch row does not line up with the header:\n%s", b.String())
	}
}

func TestWriteClusterDetails(t *testing.T) {
	var b bytes.Buffer
	if err := writeClusterDetails(&b, testClusterObject(), testNow); err != nil {
		t.Fatal(err)
	}
	want := `Name:           shop
Project:        stores
State:          Updating
Health:         Unhealthy
Nodes:          1/3 ready
Profiles:       store-edge@1.0.0,agents@2.1.0
Endpoint:       10.0.0.11
Upgrading:      edge-2
Deleting since: 1m ago
Labels:         site=berlin
Age:            2h

HOST     POOL      ROLE     STATE      KUBERNETES   STEP                   MESSAGE
edge-1   cp        init     Ready      -            3/3                    -
edge-2   workers   worker   Failed     -            install-distro (1/3)   download failed: 503
edge-3   workers   worker   Removing   -            -                      tearing down
edge-4   workers   -        -          -            -                      not claimed by the cluster yet

LAYER            PACK   VERSION       HEALTH
store-edge/k3s   k3s    1.32.1+k3s1   -
agents/site      -      -             -

UPDATE AVAILABLE   VERSION
store-edge/k3s     1.32.2+k3s1

CONDITION   STATUS   REASON   MESSAGE   AGE
Upgrading   True     Turn     -         5m

take them with: outpost clusters upgrade shop --latest
`
	if b.String() != want {
		t.Errorf("details =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteDiff(t *testing.T) {
	var b bytes.Buffer
	d := &v1.ClusterDiff{Cluster: "shop", Hosts: []v1.HostDiff{
		{Host: "edge-1", Role: v1.RoleInit, Actions: []string{}},
		{Host: "edge-2", Role: v1.RoleWorker, Actions: []string{"reapply layer calico (values or manifests changed)", "upgrade layer agent 1.2.0 → 1.3.0"}},
		{Host: "edge-3", Actions: []string{"leave the cluster: remove every layer and the distro, then return to Ready"}},
	}}
	if err := writeDiff(&b, d); err != nil {
		t.Fatal(err)
	}
	want := `edge-1 (init): no changes
edge-2 (worker):
  - reapply layer calico (values or manifests changed)
  - upgrade layer agent 1.2.0 → 1.3.0
edge-3 (leaving):
  - leave the cluster: remove every layer and the distro, then return to Ready
`
	if b.String() != want {
		t.Errorf("diff =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestClusterChange(t *testing.T) {
	dir := t.TempDir()
	values := filepath.Join(dir, "mtu.yaml")
	if err := os.WriteFile(values, []byte("installation:\n  mtu: 1400\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notMapping := filepath.Join(dir, "list.yaml")
	if err := os.WriteFile(notMapping, []byte("- a\n- b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := func() v1.ClusterSpec {
		return v1.ClusterSpec{
			Profiles:  []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}, {Name: "agents", Version: "2.0.0"}},
			Variables: map[string]string{"siteCode": "de-017"},
			Overrides: []v1.LayerOverride{{Layer: "k3s", Values: "a: 1\n"}},
			Pools: []v1.NodePool{
				{Name: "cp", ControlPlane: true, Hosts: []string{"edge-1"}},
				{Name: "workers", Hosts: []string{"edge-2", "edge-3"}, UpdateStrategy: v1.ContractFirst},
			},
		}
	}
	tests := []struct {
		name  string
		ch    clusterChange
		stdin string
		// err is a check or apply error; what the change's description.
		err  string
		what []string
		want func(*v1.ClusterSpec)
	}{
		{name: "add", ch: clusterChange{pool: "workers", add: []string{"edge-4"}},
			what: []string{"pool workers: edge-2,edge-3 → edge-2,edge-3,edge-4 (contract-first)"},
			want: func(s *v1.ClusterSpec) { s.Pools[1].Hosts = []string{"edge-2", "edge-3", "edge-4"} }},
		{name: "replace", ch: clusterChange{pool: "workers", add: []string{"edge-4"}, remove: []string{"edge-2"}},
			what: []string{"pool workers: edge-2,edge-3 → edge-3,edge-4 (contract-first)"},
			want: func(s *v1.ClusterSpec) { s.Pools[1].Hosts = []string{"edge-3", "edge-4"} }},
		{name: "whole pool", ch: clusterChange{pool: "cp", hosts: []string{"edge-1", "edge-5", "edge-6"}},
			what: []string{"pool cp: edge-1 → edge-1,edge-5,edge-6 (expand-first)"},
			want: func(s *v1.ClusterSpec) { s.Pools[0].Hosts = []string{"edge-1", "edge-5", "edge-6"} }},
		{name: "same pool", ch: clusterChange{pool: "workers", hosts: []string{"edge-2", "edge-3"}}, err: errNoChange.Error()},
		{name: "no pool", ch: clusterChange{add: []string{"edge-4"}}, err: "pass --pool POOL"},
		{name: "pool without hosts", ch: clusterChange{pool: "workers"}, err: `pool "workers": pass --add HOST`},
		{name: "hosts with add", ch: clusterChange{pool: "workers", hosts: []string{"edge-2"}, add: []string{"edge-4"}}, err: "leave out --add and --remove"},
		{name: "add and remove one host", ch: clusterChange{pool: "workers", add: []string{"edge-4"}, remove: []string{"edge-4"}}, err: "edge-4 is both added and removed"},
		{name: "unknown pool", ch: clusterChange{pool: "gpu", add: []string{"edge-4"}}, err: `cluster "shop" has no pool "gpu" (its pools: cp, workers)`},
		{name: "add twice", ch: clusterChange{pool: "workers", add: []string{"edge-3"}}, err: `host edge-3 is already in pool "workers"`},
		{name: "add from another pool", ch: clusterChange{pool: "workers", add: []string{"edge-1"}}, err: `host edge-1 is in pool "cp"`},
		{name: "remove a stranger", ch: clusterChange{pool: "workers", remove: []string{"edge-9"}}, err: `host edge-9 is not in pool "workers"`},
		{name: "hosts twice", ch: clusterChange{pool: "workers", hosts: []string{"edge-4", "edge-4"}}, err: "--hosts names edge-4 twice"},

		{name: "upgrade", ch: clusterChange{profiles: []string{"agents@2.1.0"}},
			what: []string{"profile agents 2.0.0 → 2.1.0"},
			want: func(s *v1.ClusterSpec) { s.Profiles[1].Version = "2.1.0" }},
		{name: "upgrade to the same", ch: clusterChange{profiles: []string{"store-edge@1.0.0"}}, err: errNoChange.Error()},
		{name: "upgrade a profile it does not run", ch: clusterChange{profiles: []string{"other@1.0.0"}}, err: `cluster "shop" does not run profile "other" (it runs store-edge@1.0.0, agents@2.0.0)`},
		{name: "upgrade without version", ch: clusterChange{profiles: []string{"agents"}}, err: "name the version"},
		{name: "latest", ch: clusterChange{latest: true},
			what: []string{"resolve generation 0 → 1: the trains' newest versions"},
			want: func(s *v1.ClusterSpec) { s.ResolveGeneration = 1 }},
		{name: "latest and a profile", ch: clusterChange{latest: true, profiles: []string{"agents@2.1.0"}}, err: "leave out --profile"},

		{name: "new override", ch: clusterChange{layer: "store-edge/calico", valuesFile: values},
			what: []string{"values of layer store-edge/calico overridden"},
			want: func(s *v1.ClusterSpec) {
				s.Overrides = append(s.Overrides, v1.LayerOverride{Profile: "store-edge", Layer: "calico", Values: "installation:\n  mtu: 1400\n"})
			}},
		// The existing override of k3s without a profile is the same layer.
		{name: "replaced override", ch: clusterChange{layer: "store-edge/k3s", valuesFile: "-"}, stdin: "b: 2\n",
			what: []string{"values of layer store-edge/k3s replaced"},
			want: func(s *v1.ClusterSpec) {
				s.Overrides[0] = v1.LayerOverride{Profile: "store-edge", Layer: "k3s", Values: "b: 2\n"}
			}},
		{name: "same override", ch: clusterChange{layer: "k3s", valuesFile: "-"}, stdin: "a: 1\n", err: errNoChange.Error()},
		{name: "layer without values", ch: clusterChange{layer: "k3s"}, err: "--layer and --values-file go together"},
		{name: "bad layer", ch: clusterChange{layer: "a/b/c", valuesFile: values}, err: `--layer "a/b/c": want [PROFILE/]LAYER`},
		{name: "values not a mapping", ch: clusterChange{layer: "k3s", valuesFile: notMapping}, err: "not a YAML mapping"},
		{name: "empty values", ch: clusterChange{layer: "k3s", valuesFile: "-"}, stdin: "# nothing\n", err: "no values in it"},
		{name: "missing values file", ch: clusterChange{layer: "k3s", valuesFile: filepath.Join(dir, "nope.yaml")}, err: "read values file"},

		{name: "variables", ch: clusterChange{variables: []string{"siteCode=de-018", "podCIDR=10.44.0.0/16", "siteCode=de-018"}},
			what: []string{`variable podCIDR = "10.44.0.0/16"`, `variable siteCode = "de-018"`},
			want: func(s *v1.ClusterSpec) {
				s.Variables = map[string]string{"siteCode": "de-018", "podCIDR": "10.44.0.0/16"}
			}},
		{name: "same variable", ch: clusterChange{variables: []string{"siteCode=de-017"}}, err: errNoChange.Error()},
		{name: "variable without value", ch: clusterChange{variables: []string{"siteCode"}}, err: `--set-variable "siteCode": want name=value`},
		{name: "variable twice", ch: clusterChange{variables: []string{"a=1", "a=2"}}, err: `variable "a" is set twice`},

		{name: "everything at once", ch: clusterChange{pool: "workers", add: []string{"edge-4"}, latest: true, variables: []string{"siteCode=de-018"}},
			what: []string{"pool workers: edge-2,edge-3 → edge-2,edge-3,edge-4 (contract-first)", "resolve generation 0 → 1: the trains' newest versions", `variable siteCode = "de-018"`},
			want: func(s *v1.ClusterSpec) {
				s.Pools[1].Hosts = append(s.Pools[1].Hosts, "edge-4")
				s.ResolveGeneration = 1
				s.Variables["siteCode"] = "de-018"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base()
			var what []string
			cc, err := tt.ch.check(strings.NewReader(tt.stdin))
			if err == nil {
				what, err = cc.apply("shop", &spec)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := base()
			tt.want(&want)
			if !reflect.DeepEqual(spec, want) {
				t.Errorf("spec =\n%+v\nwant\n%+v", spec, want)
			}
			if !slices.Equal(what, tt.what) {
				t.Errorf("described as %q, want %q", what, tt.what)
			}
		})
	}
}

// TestExampleCluster: examples/cluster.yaml is a Cluster that apply and
// create take, on the demo fleet's first three hosts.
func TestExampleCluster(t *testing.T) {
	data, err := os.ReadFile("../../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeApplyDocs("cluster.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].kind != v1.KindCluster {
		t.Fatalf("documents: %+v", docs)
	}
	c := docs[0].obj.(*v1.Cluster)
	if !reflect.DeepEqual(c.Spec.Profiles, []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}}) || c.Spec.Variables["siteCode"] == "" {
		t.Errorf("profiles %v, variables %v", c.Spec.Profiles, c.Spec.Variables)
	}
	var cp, workers []string
	for _, p := range c.Spec.Pools {
		if p.ControlPlane {
			cp = append(cp, p.Hosts...)
		} else {
			workers = append(workers, p.Hosts...)
		}
	}
	if !slices.Equal(cp, []string{"edge-sim000001"}) || !slices.Equal(workers, []string{"edge-sim000002", "edge-sim000003"}) {
		t.Errorf("control plane %v, workers %v", cp, workers)
	}
}

func TestDefaultedClusterSpec(t *testing.T) {
	in := v1.ClusterSpec{Pools: []v1.NodePool{{Name: "cp"}, {Name: "w", UpdateStrategy: v1.ContractFirst}}}
	out := defaultedClusterSpec(in)
	if out.Pools[0].UpdateStrategy != v1.ExpandFirst || out.Pools[1].UpdateStrategy != v1.ContractFirst {
		t.Errorf("pools = %+v", out.Pools)
	}
	if in.Pools[0].UpdateStrategy != "" {
		t.Error("the document's spec was changed")
	}
}

func TestClusterCommandErrors(t *testing.T) {
	hub := map[string]string{envServer: "https://127.0.0.1:1", envToken: "t"}
	dir := t.TempDir()
	profileDoc := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(profileDoc, []byte("apiVersion: outpost.dev/v1\nkind: Project\nmetadata:\n  name: p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte("apiVersion: outpost.dev/v1\nkind: Cluster\nmetadata:\n  name: other\nspec:\n  profiles: []\n  pools: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"clusters", "create"}, nil, "pass -f FILE"},
		{[]string{"clusters", "create", "-f", profileDoc}, nil, "create -f takes Cluster documents; use outpost apply -f for a Project"},
		{[]string{"clusters", "get"}, nil, "usage: outpost clusters get NAME"},
		{[]string{"clusters", "events"}, nil, "usage: outpost clusters events NAME"},
		{[]string{"clusters", "scale", "shop"}, nil, "pass --pool POOL"},
		{[]string{"clusters", "scale", "shop", "--pool", "w"}, nil, `pool "w": pass --add HOST`},
		{[]string{"clusters", "upgrade", "shop"}, nil, "pass --profile NAME@VERSION or --latest"},
		{[]string{"clusters", "upgrade", "shop", "--profile", "store-edge"}, nil, "name the version"},
		{[]string{"clusters", "set", "shop"}, nil, "pass --layer LAYER --values-file FILE"},
		{[]string{"clusters", "set", "shop", "--values-file", "x.yaml"}, nil, "--layer and --values-file go together"},
		{[]string{"clusters", "diff", "shop", "-f", other, "--latest"}, nil, "leave out the change flags"},
		{[]string{"clusters", "diff", "shop", "-f", other}, nil, `the document is cluster "other", not "shop"`},
		{[]string{"clusters", "delete"}, nil, "usage: outpost clusters delete NAME"},
		{[]string{"clusters", "abort", " "}, nil, "NAME is empty"},
		{[]string{"clusters", "ls"}, nil, "no hub server"},
		{[]string{"clusters", "ls", "-o", "xml"}, hub, `output format "xml"`},
		{[]string{"clusters", "lss"}, nil, `unknown command "lss" for "outpost clusters"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			_, _, err := runIn(t, env, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestClusterCommandTree(t *testing.T) {
	root := NewRootCommand("dev")
	for _, path := range []string{"create", "ls", "get", "events", "scale", "upgrade", "set", "diff", "delete", "abort"} {
		cmd, rest, err := root.Find([]string{"cluster", path})
		if err != nil || len(rest) != 0 || cmd.CommandPath() != "outpost clusters "+path {
			t.Errorf("%q: found %q rest %q err %v", path, cmd.CommandPath(), rest, err)
		}
	}
}

// --- against a real hub ---

// simHost plays an agent through the agent API: enough to hold a node's
// part in a cluster (read its spec, report on it).
type simHost struct {
	id     string
	hub    *hubtest.Hub
	client *http.Client
	since  int64
}

func agentCall(t *testing.T, hub *hubtest.Hub, c *http.Client, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, hub.AgentURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(v1.HeaderAgentProtocol, fmt.Sprint(v1.AgentProtocolVersion))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func enrollSimHost(t *testing.T, hub *hubtest.Hub, token, id string) *simHost {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	status, data := agentCall(t, hub, hub.AgentClient(nil), http.MethodPost, v1.AgentPathEnroll, v1.EnrollRequest{HostID: id, CSR: csr, RegistrationToken: token})
	if status != http.StatusOK {
		t.Fatalf("enroll %s: %d %s", id, status, data)
	}
	var resp v1.EnrollResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair([]byte(resp.Certificate), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &simHost{id: id, hub: hub, client: hub.AgentClient(&cert)}
}

// spec waits for the host's next spec for which ok holds.
func (h *simHost) spec(t *testing.T, ok func(*v1.HostSpec) bool) *v1.HostSpec {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		status, data := agentCall(t, h.hub, h.client, http.MethodGet, fmt.Sprintf("%s?since=%d&wait=2", v1.AgentPathSpec, h.since), nil)
		if status == http.StatusNotModified {
			continue
		}
		if status != http.StatusOK {
			t.Fatalf("spec of %s: %d %s", h.id, status, data)
		}
		var s v1.HostSpec
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		h.since = s.Metadata.Revision
		if !ok(&s) {
			continue
		}
		// The controller may write a spec twice in a row; a report counts
		// only for the spec the host has now, so wait for a quiet second.
		for {
			status, data := agentCall(t, h.hub, h.client, http.MethodGet, fmt.Sprintf("%s?since=%d&wait=1", v1.AgentPathSpec, h.since), nil)
			if status == http.StatusNotModified {
				return &s
			}
			var next v1.HostSpec
			if status != http.StatusOK || json.Unmarshal(data, &next) != nil || !ok(&next) {
				t.Fatalf("spec of %s moved on unexpectedly: %d %s", h.id, status, data)
			}
			s, h.since = next, next.Metadata.Revision
		}
	}
	t.Fatalf("no spec for %s came", h.id)
	return nil
}

func (h *simHost) report(t *testing.T, rep v1.NodeReportSpec) {
	t.Helper()
	if status, data := agentCall(t, h.hub, h.client, http.MethodPost, v1.AgentPathStatus, rep); status != http.StatusNoContent {
		t.Fatalf("report of %s: %d %s", h.id, status, data)
	}
}

// applyAll makes the host take its cluster spec and report it done.
func (h *simHost) applyAll(t *testing.T, address string) {
	t.Helper()
	s := h.spec(t, func(s *v1.HostSpec) bool { return s.Cluster != nil && !s.Cluster.Remove })
	h.report(t, v1.NodeReportSpec{
		SpecHash: s.Hash, State: v1.NodeReady, ControlPlaneUp: s.Cluster.Role != v1.RoleWorker, NodeReady: true, Address: address,
		Steps: []v1.StepStatus{{Name: "os", State: v1.StepDone}, {Name: "distro", State: v1.StepDone}, {Name: "layers", State: v1.StepDone}},
	})
}

// syncBuffer is a buffer a running command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// background runs a command that keeps running (a follow, a wait) until
// stop cancels it; stop returns its error.
type background struct {
	out, errOut syncBuffer
	cancel      context.CancelFunc
	done        chan error
}

func startIn(t *testing.T, env map[string]string, args ...string) *background {
	t.Helper()
	o := &options{version: "v9.9.9", getenv: envOf(env), now: func() time.Time { return testNow }}
	root := newRoot(o)
	bg := &background{done: make(chan error, 1)}
	root.SetOut(&bg.out)
	root.SetErr(&bg.errOut)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	bg.cancel = cancel
	go func() { bg.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() { bg.stop() })
	return bg
}

// waitFor waits until the command's output holds want.
func (bg *background) waitFor(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(bg.out.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output never held %q:\n%s\nstderr:\n%s", want, bg.out.String(), bg.errOut.String())
		}
	}
}

func (bg *background) stop() error {
	bg.cancel()
	select {
	case err := <-bg.done:
		bg.done <- err
		return err
	case <-time.After(10 * time.Second):
		return errors.New("the command did not stop")
	}
}

// TestIntegrationClusters drives the cluster commands against an
// in-process hub whose hosts are played through the agent API: create from
// the example file, list and get, events (and --follow), diff before each
// change, scale, set, upgrade, apply, abort, and delete --wait.
func TestIntegrationClusters(t *testing.T) {
	hub := hubtest.Start(t)
	env := func() map[string]string {
		return map[string]string{envServer: hub.URL, envToken: hub.AdminToken, envCAFile: hub.CAFile, envProject: "demo", envConfig: filepath.Join(t.TempDir(), "config.yaml")}
	}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runIn(t, env(), "", args...)
		if err != nil {
			t.Fatalf("outpost %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	fail := func(want string, args ...string) {
		t.Helper()
		if _, _, err := runIn(t, env(), "", args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("outpost %s: err = %v, want %q", strings.Join(args, " "), err, want)
		}
	}
	getCluster := func(name string) v1.Cluster {
		t.Helper()
		var c v1.Cluster
		if err := json.Unmarshal([]byte(run("clusters", "get", name, "-o", "json")), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitCluster := func(name, what string, ok func(v1.Cluster) bool) v1.Cluster {
		t.Helper()
		var c v1.Cluster
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c = getCluster(name); ok(c) {
				return c
			}
		}
		t.Fatalf("%s: cluster %s is %s, nodes %+v", what, name, c.Status.State, c.Status.Nodes)
		return c
	}

	// The demo fleet's names, played here: edge-sim000001..5 in project demo.
	if resp, body := hub.Do(t, "POST", "/api/v1/projects", hub.AdminToken, map[string]any{"metadata": map[string]any{"name": "demo"}}); resp.StatusCode != 201 {
		t.Fatalf("create project: %d %s", resp.StatusCode, body)
	}
	rt := run("tokens", "create", "rack", "-o", "json")
	var tok v1.RegistrationToken
	if err := json.Unmarshal([]byte(rt), &tok); err != nil || tok.Token == "" {
		t.Fatalf("tokens create: %v %s", err, rt)
	}
	hosts := map[string]*simHost{}
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("edge-sim%06d", i)
		hosts[id] = enrollSimHost(t, hub, tok.Token, id)
	}
	if out := run("apply", "-f", "../../examples/store-edge.yaml"); out != "clusterprofile/store-edge@1.0.0 created\n" {
		t.Fatalf("apply store-edge: %q", out)
	}

	if out := run("clusters", "create", "-f", "../../examples/cluster.yaml"); !strings.HasPrefix(out, `cluster "store-berlin" created in project "demo"`) {
		t.Errorf("create: %q", out)
	}
	fail(`create cluster "store-berlin"`, "clusters", "create", "-f", "../../examples/cluster.yaml")
	if out := run("clusters", "ls"); !strings.Contains(out, "store-berlin ") || !strings.Contains(out, " store-edge@1.0.0 ") || !strings.Contains(out, " 0/3 ") {
		t.Errorf("ls:\n%s", out)
	}

	// The cluster comes up as its hosts do their part.
	hosts["edge-sim000001"].applyAll(t, "192.0.2.10")
	hosts["edge-sim000002"].applyAll(t, "192.0.2.11")
	hosts["edge-sim000003"].applyAll(t, "192.0.2.12")
	waitCluster("store-berlin", "provision", func(c v1.Cluster) bool { return c.Status.State == v1.ClusterRunning })
	out := run("clusters", "get", "store-berlin")
	words := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"State: Running", "Health: Healthy", "Nodes: 3/3 ready", "Endpoint: 192.0.2.10",
		"edge-sim000001 control-plane init Ready - 3/3 -", "edge-sim000003 workers worker Ready - 3/3 -", "LAYER PACK VERSION HEALTH store-edge/ubuntu ubuntu 22.04."} {
		if !strings.Contains(words, want) {
			t.Errorf("get lacks %q:\n%s", want, out)
		}
	}
	if out := run("clusters", "ls"); !strings.Contains(out, " Running ") || !strings.Contains(out, " 3/3 ") || !strings.Contains(out, " 192.0.2.10 ") {
		t.Errorf("ls:\n%s", out)
	}
	if out := run("clusters", "diff", "store-berlin"); out != "edge-sim000001 (init): no changes\nedge-sim000002 (worker): no changes\nedge-sim000003 (worker): no changes\n" {
		t.Errorf("diff of the current spec:\n%s", out)
	}

	// Events of the cluster and its hosts, not of a host outside it.
	events := run("clusters", "events", "store-berlin")
	for _, want := range []string{"Cluster/store-berlin", "Created", "EdgeHost/edge-sim000001", "InUse"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	if strings.Contains(events, "edge-sim000005") {
		t.Errorf("events show a host outside the cluster:\n%s", events)
	}

	// A diff first, then the change: only the layer the variable reaches.
	diff := run("clusters", "diff", "store-berlin", "--set-variable", "siteCode=de-002")
	if strings.Count(diff, "  - reapply layer metrics-server (values or manifests changed)\n") != 3 || strings.Count(diff, "  - ") != 3 {
		t.Errorf("diff of a variable:\n%s", diff)
	}
	if c := getCluster("store-berlin"); c.Spec.Variables["siteCode"] != "de-001" {
		t.Errorf("diff changed the cluster: %v", c.Spec.Variables)
	}
	// The example file is the cluster as it runs: a diff of it is empty.
	example, err := os.ReadFile("../../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := runIn(t, env(), string(example), "clusters", "diff", "store-berlin", "-f", "-"); err != nil || strings.Count(out, ": no changes\n") != 3 {
		t.Errorf("diff -f of the example: %v\n%s", err, out)
	}
	follow := startIn(t, env(), "clusters", "events", "store-berlin", "--follow")
	follow.waitFor(t, "AGE")
	watch := startIn(t, env(), "clusters", "ls", "--watch")
	watch.waitFor(t, "Added      store-berlin")
	if out := run("clusters", "set", "store-berlin", "--set-variable", "siteCode=de-002"); !strings.HasPrefix(out, `cluster "store-berlin" changed: variable siteCode = "de-002"`) {
		t.Errorf("set: %q", out)
	}
	follow.waitFor(t, "SpecChanged")
	watch.waitFor(t, "Modified   store-berlin")
	if err := watch.stop(); err != nil {
		t.Errorf("ls --watch: %v", err)
	}
	if _, errOut, err := runIn(t, env(), "", "clusters", "set", "store-berlin", "--set-variable", "siteCode=de-002"); err != nil || !strings.Contains(errOut, "nothing to change") {
		t.Errorf("set again: %v %q", err, errOut)
	}

	// Scale: diff shows the newcomer's install; the follow picks up its
	// events as it joins.
	diff = run("clusters", "diff", "store-berlin", "--pool", "workers", "--add", "edge-sim000004")
	if !strings.Contains(diff, "edge-sim000004 (worker):\n  - apply os layer ubuntu ") || !strings.Contains(diff, "edge-sim000002 (worker): no changes") {
		t.Errorf("diff of a scale-up:\n%s", diff)
	}
	if out := run("clusters", "scale", "store-berlin", "--pool", "workers", "--add", "edge-sim000004"); !strings.Contains(out, "pool workers: edge-sim000002,edge-sim000003 → edge-sim000002,edge-sim000003,edge-sim000004 (expand-first)") {
		t.Errorf("scale: %q", out)
	}
	follow.waitFor(t, "EdgeHost/edge-sim000004")
	if err := follow.stop(); err != nil {
		t.Errorf("events --follow: %v", err)
	}
	if strings.Contains(follow.out.String(), "edge-sim000005") {
		t.Errorf("events --follow shows a host outside the cluster:\n%s", follow.out.String())
	}
	fail(`cluster "store-berlin" has no pool "gpu"`, "clusters", "scale", "store-berlin", "--pool", "gpu", "--add", "edge-sim000005")
	fail(`spec.pools[workers].hosts[nope-1]`, "clusters", "scale", "store-berlin", "--pool", "workers", "--add", "nope-1")

	// Upgrade: to the trains' newest, and to a new profile version.
	if out := run("clusters", "upgrade", "store-berlin", "--latest", "-o", "json"); !strings.Contains(out, `"resolveGeneration": 1`) {
		t.Errorf("upgrade --latest:\n%s", out)
	}
	run("profiles", "bump", "store-edge@1.0.0", "--part", "minor")
	if out := run("clusters", "diff", "store-berlin", "--profile", "store-edge@1.1.0", "-o", "json"); !strings.Contains(out, `"cluster": "store-berlin"`) {
		t.Errorf("diff -o json:\n%s", out)
	}
	if out := run("clusters", "upgrade", "store-berlin", "--profile", "store-edge@1.1.0"); !strings.Contains(out, "profile store-edge 1.0.0 → 1.1.0") {
		t.Errorf("upgrade --profile: %q", out)
	}
	fail(`does not run profile "other"`, "clusters", "upgrade", "store-berlin", "--profile", "other@1.0.0")
	fail(`spec.profiles[0]`, "clusters", "upgrade", "store-berlin", "--profile", "store-edge@9.9.9")

	// apply: the example file, changed as the cluster was since.
	doc := strings.NewReplacer("version: 1.0.0", "version: 1.1.0", "siteCode: de-001", "siteCode: de-002",
		"        - edge-sim000003\n", "        - edge-sim000003\n        - edge-sim000004\n  resolveGeneration: 1\n").Replace(string(example))
	if out, _, err := runIn(t, env(), doc, "apply", "-f", "-"); err != nil || out != "cluster/store-berlin unchanged\n" {
		t.Errorf("apply of the cluster as it is: %v %q", err, out)
	}
	labelled := strings.Replace(doc, "    site: store-berlin\n", "    site: store-berlin\n    tier: gold\n", 1)
	if out, _, err := runIn(t, env(), labelled, "apply", "-f", "-"); err != nil || out != "cluster/store-berlin configured\n" {
		t.Errorf("apply of a label: %v %q", err, out)
	}
	if c := getCluster("store-berlin"); c.Metadata.Labels["tier"] != "gold" {
		t.Errorf("labels after apply: %v", c.Metadata.Labels)
	}
	fresh := strings.NewReplacer("name: store-berlin", "name: store-lyon", "edge-sim000001", "edge-sim000005").Replace(string(example))
	fresh = strings.Replace(fresh, "        - edge-sim000002\n        - edge-sim000003\n", "        - edge-sim000005\n", 1)
	if _, _, err := runIn(t, env(), fresh, "apply", "-f", "-"); err == nil || !strings.Contains(err.Error(), "spec.pools[workers].hosts[edge-sim000005]: host is already in pool") {
		t.Errorf("apply of a bad cluster: %v", err)
	}

	// abort is for clusters still provisioning.
	fail("delete it instead", "clusters", "abort", "store-berlin")
	lyon := strings.NewReplacer("name: store-berlin", "name: store-lyon", "edge-sim000001", "edge-sim000005").Replace(string(example))
	lyon = strings.Replace(lyon, "    - name: workers\n      updateStrategy: expand-first\n      hosts:\n        - edge-sim000002\n        - edge-sim000003\n", "", 1)
	lyon = strings.Replace(lyon, "spec:\n", "spec:\n  forceDeleteAfter: 1s\n", 1)
	if out, _, err := runIn(t, env(), lyon, "clusters", "create", "-f", "-"); err != nil {
		t.Fatalf("create store-lyon: %v %q", err, out)
	}
	waitCluster("store-lyon", "lyon provisions", func(c v1.Cluster) bool { return c.Status.State == v1.ClusterProvisioning })
	if out := run("clusters", "abort", "store-lyon"); out != "cluster \"store-lyon\" aborted: its hosts tear down and return to Ready\n" {
		t.Errorf("abort: %q", out)
	}
	fail(`cluster "store-lyon" is Deleting: it cannot change any more`, "clusters", "set", "store-lyon", "--set-variable", "siteCode=xx-000")

	// delete --wait returns once every host confirmed its teardown.
	wait := startIn(t, env(), "clusters", "delete", "store-berlin", "--wait")
	for _, id := range []string{"edge-sim000001", "edge-sim000002", "edge-sim000003", "edge-sim000004"} {
		s := hosts[id].spec(t, func(s *v1.HostSpec) bool { return s.Cluster != nil && s.Cluster.Remove })
		hosts[id].report(t, v1.NodeReportSpec{SpecHash: s.Hash, State: v1.NodeRemoved, Removed: true})
	}
	select {
	case err := <-wait.done:
		wait.done <- err
		if err != nil {
			t.Fatalf("delete --wait: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("delete --wait did not return:\n%s\n%s", wait.out.String(), wait.errOut.String())
	}
	if got := wait.out.String(); got != "cluster \"store-berlin\" deleted: its hosts are Ready again\n" {
		t.Errorf("delete --wait: %q (progress %q)", got, wait.errOut.String())
	}
	if !strings.Contains(wait.errOut.String(), "waiting for ") {
		t.Errorf("delete --wait reported no progress: %q", wait.errOut.String())
	}
	if out := run("clusters", "delete", "store-berlin"); out != "cluster \"store-berlin\" removed\n" {
		t.Errorf("second delete: %q", out)
	}
	fail("not found", "clusters", "get", "store-berlin")
	// The events of a removed cluster outlive it.
	if out, errOut, err := runIn(t, env(), "", "clusters", "events", "store-berlin"); err != nil || !strings.Contains(out, "Deleted") || !strings.Contains(errOut, "not found") {
		t.Errorf("events of a removed cluster: %v\n%s%s", err, out, errOut)
	}
}
