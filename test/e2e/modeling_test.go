package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/profile"
)

// chartRepo is a Helm chart repository served by the test: the hub process
// fetches its index over loopback, as it would a real one.
type chartRepo struct {
	*httptest.Server
	mu    sync.Mutex
	index string
}

func newChartRepo(t *testing.T, index string) *chartRepo {
	r := &chartRepo{index: index}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/index.yaml" {
			http.NotFound(w, req)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		io.WriteString(w, r.index)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *chartRepo) serve(index string) {
	r.mu.Lock()
	r.index = index
	r.mu.Unlock()
}

// siteAgentIndex lists site-agent at the given versions, and a library
// chart that must not become a pack.
func siteAgentIndex(versions ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nentries:\n  site-agent:\n")
	for _, v := range versions {
		b.WriteString("  - apiVersion: v2\n    name: site-agent\n    version: " + v +
			"\n    description: Collects site telemetry\n    kubeVersion: \">=1.27.0-0\"\n    urls:\n    - site-agent-" + v + ".tgz\n")
	}
	b.WriteString("  common:\n  - apiVersion: v2\n    name: common\n    type: library\n    version: 2.0.0\n    urls:\n    - common-2.0.0.tgz\n")
	return b.String()
}

const edgeProfileYAML = `apiVersion: outpost.dev/v1
kind: ClusterProfile
metadata:
  name: edge-k3s
  labels:
    tier: edge
spec:
  type: full
  version: 1.0.0
  description: Ubuntu with k3s on the 1.30 train, Calico, local-path and the site agent
  layers:
    - pack: ubuntu
      version: 24.04.x
    - pack: k3s
      version: 1.30.x
      presets: [disable-traefik]
      values: |
        config:
          node-label:
            - site={{ .Vars.site }}
    - pack: calico
      version: 3.x
    - pack: local-path
      version: 0.0.30
    - name: agent
      pack: site-agent
      registry: lab
      version: 1.x
      values: |
        replicas: 2
        site: {{ .Vars.site }}
      manifests:
        - name: site-namespace
          content: |
            apiVersion: v1
            kind: Namespace
            metadata:
              name: site-{{ .Vars.site }}
  variables:
    - name: site
      type: string
      default: lab
      regex: "[a-z0-9-]+"
`

// TestIntegrationProfileRoundTrip drives the modeling API through the real
// outpost binary: a Helm registry and a full profile applied from one file,
// exported and applied again unchanged, rendered with a variable, and moved
// along its train when the registry gains a version.
func TestIntegrationProfileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir)
	admin := newCLI(t, h, h.adminToken)
	repo := newChartRepo(t, siteAgentIndex("1.4.0", "1.4.1"))

	file := filepath.Join(dir, "edge.yaml")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, `# The lab's chart repository and the profile that uses it.
apiVersion: outpost.dev/v1
kind: Registry
metadata:
  name: lab
spec:
  type: helm
  url: `+repo.URL+`
  syncInterval: "0"
---
`+edgeProfileYAML)

	out := admin.must("apply", "-f", file)
	if want := "registry/lab created\nclusterprofile/edge-k3s@1.0.0 created\n"; out != want {
		t.Fatalf("apply:\n%s\nwant\n%s", out, want)
	}

	// Export, apply the export: nothing to do.
	exported := admin.must("profiles", "get", "edge-k3s@1.0.0", "-o", "yaml", "--export")
	for _, owned := range []string{"revision:", "createdAt:", "status:", "project:"} {
		if strings.Contains(exported, owned) {
			t.Errorf("the export has %s:\n%s", owned, exported)
		}
	}
	exportFile := filepath.Join(dir, "export.yaml")
	write(exportFile, exported)
	if out := admin.must("apply", "-f", exportFile); out != "clusterprofile/edge-k3s@1.0.0 unchanged\n" {
		t.Errorf("apply of the export: %q", out)
	}
	if out := admin.must("apply", "-f", file); out != "registry/lab unchanged\nclusterprofile/edge-k3s@1.0.0 unchanged\n" {
		t.Errorf("second apply of the file: %q", out)
	}

	// The export says what the file said, field by field.
	orig, err := profile.Decode([]byte(edgeProfileYAML))
	if err != nil {
		t.Fatal(err)
	}
	profile.Normalize(orig) // the hub names unnamed layers after their pack
	back, err := profile.Decode([]byte(exported))
	if err != nil {
		t.Fatalf("the export does not decode: %v\n%s", err, exported)
	}
	compareSpecs(t, back, orig)

	// Render with a variable: what a host would receive.
	var k3sVersions []v1.PackVersion
	admin.json(&k3sVersions, "packs", "versions", "builtin/k3s")
	train := ""
	for _, v := range k3sVersions {
		if strings.HasPrefix(v.Version, "1.30.") && !v.Deprecated && (train == "" || catalog.Newer(v.Version, train)) {
			train = v.Version
		}
	}
	if train == "" {
		t.Fatalf("the built-in k3s has no 1.30 version: %+v", k3sVersions)
	}
	var rp v1.RenderedProfile
	admin.json(&rp, "profiles", "render", "edge-k3s@1.0.0", "--set", "site=berlin")
	var layers []string
	for _, l := range rp.Layers {
		layers = append(layers, l.Name+"="+l.Version)
	}
	if want := []string{"ubuntu=", "k3s=" + train, "calico=", "local-path=0.0.30", "agent=1.4.1"}; len(layers) != len(want) {
		t.Fatalf("rendered layers %v, want %v", layers, want)
	} else {
		for i, w := range want {
			if !strings.HasPrefix(layers[i], w) {
				t.Errorf("rendered layer %d = %s, want %s…", i+1, layers[i], w)
			}
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(rp.Hash) || rp.Profile != "edge-k3s" || rp.Version != "1.0.0" {
		t.Errorf("rendered %s@%s hash %q", rp.Profile, rp.Version, rp.Hash)
	}
	k3s := rp.Layers[1]
	if k3s.Train != "1.30.x" || k3s.KubernetesVersion == "" || len(k3s.Artifacts) == 0 {
		t.Errorf("k3s layer: train %q, kubernetes %q, %d artifacts", k3s.Train, k3s.KubernetesVersion, len(k3s.Artifacts))
	}
	// The calico layer switches on k3s's external-cni preset; the profile
	// chose disable-traefik and filled in the variable.
	for _, want := range []string{"flannel-backend: none", "disable-network-policy: true", "- traefik", "- site=berlin", "cluster-cidr:"} {
		if !strings.Contains(k3s.Values, want) {
			t.Errorf("k3s values lack %q:\n%s", want, k3s.Values)
		}
	}
	agent := rp.Layers[4]
	if agent.Values != "replicas: 2\nsite: berlin\n" || agent.Train != "1.x" || agent.Chart == nil || agent.Chart.Repository != repo.URL || agent.Chart.Version != "1.4.1" {
		t.Errorf("agent layer: values %q, train %q, chart %+v", agent.Values, agent.Train, agent.Chart)
	}
	if len(agent.Manifests) != 1 || !strings.Contains(agent.Manifests[0].Content, "name: site-berlin") {
		t.Errorf("agent manifests: %+v", agent.Manifests)
	}
	var def v1.RenderedProfile
	admin.json(&def, "profiles", "render", "edge-k3s@1.0.0")
	if def.Hash == rp.Hash || !strings.Contains(def.Layers[4].Values, "site: lab") {
		t.Errorf("render with the default variable: hash %s (with site=berlin %s), agent values %q", def.Hash, rp.Hash, def.Layers[4].Values)
	}
	if summary := admin.must("profiles", "render", "edge-k3s@1.0.0", "--set", "site=berlin"); !strings.Contains(summary, "hash "+rp.Hash) ||
		!strings.Contains(summary, "pack builtin/k3s "+train+" (train 1.30.x)") || !strings.Contains(summary, "name: site-berlin") {
		t.Errorf("render summary:\n%s", summary)
	}

	// The registry's chart is a pack; the library chart is not.
	var packs v1.List[v1.Pack]
	admin.json(&packs, "packs", "ls")
	var names []string
	for _, p := range packs.Items {
		names = append(names, p.Metadata.Name)
	}
	if !slices.Contains(names, "lab/site-agent") || slices.Contains(names, "lab/common") || !slices.Contains(names, "builtin/k3s") {
		t.Errorf("packs: %v", names)
	}

	// Publish; the published version stays as it is while its train moves.
	admin.must("profiles", "publish", "edge-k3s@1.0.0")
	repo.serve(siteAgentIndex("1.4.0", "1.4.1", "1.5.0"))
	var reg v1.Registry
	admin.json(&reg, "registries", "sync", "lab")
	if reg.Status.Versions != 3 || reg.Status.LastError != "" {
		t.Fatalf("sync: status %+v", reg.Status)
	}
	eventually(t, 15*time.Second, "the agent layer moves to 1.5.0", func() (bool, string) {
		var cp v1.ClusterProfile
		admin.json(&cp, "profiles", "get", "edge-k3s@1.0.0")
		for _, r := range cp.Status.Resolved {
			if r.Layer == "agent" {
				return r.Version == "1.5.0", r.Version
			}
		}
		return false, "no agent layer in status.resolved"
	})
	var events v1.List[v1.Event]
	admin.json(&events, "events", "--object", "ClusterProfile/edge-k3s@1.0.0")
	moved := false
	for _, e := range events.Items {
		moved = moved || e.Reason == "VersionsResolved" && strings.Contains(e.Message, "agent 1.4.1 → 1.5.0")
	}
	if !moved {
		t.Errorf("no VersionsResolved event about the agent layer: %+v", events.Items)
	}
	if out := admin.must("events", "--object", "ClusterProfile/edge-k3s@1.0.0"); !strings.Contains(out, "VersionsResolved") {
		t.Errorf("outpost events does not show VersionsResolved:\n%s", out)
	}
	admin.json(&rp, "profiles", "render", "edge-k3s@1.0.0", "--set", "site=berlin")
	if rp.Layers[4].Version != "1.5.0" {
		t.Errorf("render after the train moved: agent at %s", rp.Layers[4].Version)
	}

	// The published version refuses a change, naming the document and the
	// layer; the file's objects before it are reported as applied.
	write(file, strings.Replace(edgeProfileYAML, "replicas: 2", "replicas: 3", 1))
	out, err = admin.run("apply", "-f", file)
	if err == nil || !strings.Contains(err.Error(), file+": document 1 (ClusterProfile edge-k3s@1.0.0): profile edge-k3s@1.0.0 is published") ||
		!strings.Contains(err.Error(), "spec.layers[agent]") || !strings.Contains(err.Error(), "bump") {
		t.Errorf("apply of a change to a published version: %v\n%s", err, out)
	}
}

// compareSpecs compares two profile versions field by field, so a failure
// names what the round trip lost.
func compareSpecs(t *testing.T, got, want *v1.ClusterProfile) {
	t.Helper()
	check := func(field string, g, w any) {
		t.Helper()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: got %#v, want %#v", field, g, w)
		}
	}
	check("metadata.name", got.Metadata.Name, want.Metadata.Name)
	check("metadata.labels", got.Metadata.Labels, want.Metadata.Labels)
	check("spec.type", got.Spec.Type, want.Spec.Type)
	check("spec.version", got.Spec.Version, want.Spec.Version)
	check("spec.description", got.Spec.Description, want.Spec.Description)
	check("spec.published", got.Spec.Published, want.Spec.Published)
	check("len(spec.layers)", len(got.Spec.Layers), len(want.Spec.Layers))
	for i := range min(len(got.Spec.Layers), len(want.Spec.Layers)) {
		g, w := got.Spec.Layers[i], want.Spec.Layers[i]
		f := "spec.layers[" + w.Name + "]."
		check(f+"name", g.Name, w.Name)
		check(f+"pack", g.Pack, w.Pack)
		check(f+"registry", g.Registry, w.Registry)
		check(f+"version", g.Version, w.Version)
		check(f+"values", g.Values, w.Values)
		check(f+"presets", g.Presets, w.Presets)
		check(f+"manifests", g.Manifests, w.Manifests)
	}
	check("spec.variables", got.Spec.Variables, want.Spec.Variables)
}

// TestIntegrationProfileRejected: a profile with a bad layer is refused,
// the apply exits non-zero, and the error names the file, the document,
// the layer and the field.
func TestIntegrationProfileRejected(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir)
	admin := newCLI(t, h, h.adminToken)
	for _, tt := range []struct {
		name, layers string
		want         []string
	}{
		{"cni on an addon profile", "    - pack: calico\n      version: 3.x\n",
			[]string{"document 2 (ClusterProfile addons@1.0.0)", "spec.layers[calico].pack", "an addon profile cannot have a cni layer"}},
		{"unknown pack", "    - pack: metrics-server\n      version: 3.x\n    - pack: no-such-pack\n      version: 1.x\n",
			[]string{"document 2 (ClusterProfile addons@1.0.0)", "spec.layers[no-such-pack].pack", "no-such-pack"}},
		{"no version", "    - name: metrics\n      pack: metrics-server\n",
			[]string{"spec.layers[metrics].version", "is required"}},
		{"unknown key", "    - pack: metrics-server\n      version: 3.x\n      value: x\n",
			[]string{"document 2 (ClusterProfile addons@1.0.0)", "spec.layers[metrics-server].value: unknown key (line 18)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			doc := "apiVersion: outpost.dev/v1\nkind: Project\nmetadata:\n  name: default\nspec:\n  description: the default project\n---\n" +
				"apiVersion: outpost.dev/v1\nkind: ClusterProfile\nmetadata:\n  name: addons\nspec:\n  type: addon\n  version: 1.0.0\n  layers:\n" + tt.layers
			if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := admin.run("apply", "-f", file)
			if err == nil {
				t.Fatalf("apply succeeded:\n%s", out)
			}
			if !strings.Contains(err.Error(), "exit status 1") {
				t.Errorf("exit: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), file+": ") || !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if out, err := admin.run("profiles", "versions", "addons"); err == nil {
		t.Errorf("a refused profile was stored:\n%s", out)
	}
}
