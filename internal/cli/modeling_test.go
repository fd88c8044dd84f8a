package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/profile"
	"github.com/outpost-edge/outpost/internal/testutil/hubtest"
)

// runIn is run with standard input.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if env[envConfig] == "" {
		env[envConfig] = filepath.Join(t.TempDir(), "config.yaml")
	}
	o := &options{version: "v9.9.9", getenv: envOf(env), now: func() time.Time { return testNow }}
	root := newRoot(o)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestSplitDocuments(t *testing.T) {
	in := "# header\na: 1\n---\nb: 2\n--- # second\n---\n\nc: |\n  ---not a marker\n  x\n--- {d: 4}\n"
	got := splitDocuments([]byte(in))
	want := []rawDoc{
		{text: "# header\na: 1\n", line: 1},
		{text: "b: 2\n", line: 4},
		{text: "    # second\n", line: 5},
		{text: "\nc: |\n  ---not a marker\n  x\n", line: 7},
		{text: "    {d: 4}\n", line: 11},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitDocuments =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeApplyDocs(t *testing.T) {
	const project = `apiVersion: outpost.dev/v1
kind: Project
metadata:
  name: plant-9
spec:
  description: Plant 9
`
	const prof = `apiVersion: outpost.dev/v1
kind: ClusterProfile
metadata:
  name: edge
spec:
  type: full
  version: 1.0.0
  layers:
    - pack: k3s
      version: 1.30.x
`
	tests := []struct {
		name  string
		in    string
		kinds []string
		err   string
	}{
		{"several kinds, empty documents skipped", "---\n" + project + "---\n# nothing\n---\n" + prof, []string{"Project", "ClusterProfile"}, ""},
		{"unknown kind", project + "---\napiVersion: outpost.dev/v1\nkind: Widget\nmetadata:\n  name: x\n",
			nil, `f.yaml: document 2 (Widget x): kind: apply does not know "Widget"`},
		{"no kind", "apiVersion: outpost.dev/v1\nmetadata:\n  name: x\n", nil, "f.yaml: document 1 (x): kind: is required"},
		{"wrong apiVersion", strings.Replace(project, "outpost.dev/v1", "v1", 1), nil, `document 1 (Project plant-9): apiVersion: must be outpost.dev/v1, not "v1"`},
		{"unknown key, with the file's line", project + "---\n" + strings.Replace(project, "  description:", "  colour: red\n  description:", 1),
			nil, "document 2 (Project plant-9): line 13: field colour not found"},
		{"profile field names the layer and line", project + "---\n" + strings.Replace(prof, "      version: 1.30.x", "      version: [1, 2]", 1),
			nil, "document 2 (ClusterProfile edge@1.0.0): spec.layers[k3s].version: must be a string"},
		{"profile line is the file's", "\n\n" + strings.Replace(prof, "    - pack: k3s", "    - pack: k3s\n      valuez: x", 1),
			nil, "spec.layers[k3s].valuez: unknown key (line 12)"},
		{"no name", "apiVersion: outpost.dev/v1\nkind: Registry\nspec:\n  type: helm\n", nil, "document 1 (Registry): metadata.name: is required"},
		{"not an object", "- a\n- b\n", nil, "document 1: not an object (line 1)"},
		{"bad yaml", "a: [\n", nil, "f.yaml: document 1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := decodeApplyDocs("f.yaml", []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for i, d := range docs {
				kinds = append(kinds, d.kind)
				if d.index != i+1 {
					t.Errorf("document %d has index %d", i+1, d.index)
				}
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, tt.kinds)
			}
		})
	}
}

func TestReadApplyDocsDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, kind, objName string) {
		body := "apiVersion: outpost.dev/v1\nkind: " + kind + "\nmetadata:\n  name: " + objName + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20-registry.yml", "Registry", "second")
	write("10-project.yaml", "Project", "first")
	write("30-host.yaml", "EdgeHost", "third")
	write("notes.txt", "Project", "ignored")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	docs, err := readApplyDocs([]string{dir, "-"}, strings.NewReader("apiVersion: outpost.dev/v1\nkind: Project\nmetadata:\n  name: fourth\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.name+"@"+filepath.Base(d.source))
	}
	want := []string{"first@10-project.yaml", "second@20-registry.yml", "third@30-host.yaml", "fourth@stdin"}
	if !slices.Equal(got, want) {
		t.Errorf("documents = %v, want %v", got, want)
	}
	if _, err := readApplyDocs([]string{"-", "-"}, strings.NewReader("")); err == nil {
		t.Error("reading stdin twice: no error")
	}
	if _, err := readApplyDocs([]string{filepath.Join(dir, "sub.yaml")}, nil); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Errorf("empty directory: err = %v", err)
	}
}

func TestParseRefs(t *testing.T) {
	for _, tt := range []struct {
		in            string
		needVersion   bool
		name, version string
		err           bool
	}{
		{"edge", false, "edge", "", false},
		{"edge@1.0.0", true, "edge", "1.0.0", false},
		{"edge@1.0.0+b.1", false, "edge", "1.0.0+b.1", false},
		{"edge", true, "", "", true},
		{"edge@", false, "", "", true},
		{"@1.0.0", false, "", "", true},
	} {
		name, version, err := parseProfileRef(tt.in, tt.needVersion)
		if (err != nil) != tt.err || name != tt.name || version != tt.version {
			t.Errorf("parseProfileRef(%q, %v) = %q, %q, %v", tt.in, tt.needVersion, name, version, err)
		}
	}
	for _, tt := range []struct {
		in, registry, name string
		err                bool
	}{
		{"k3s", "", "k3s", false},
		{"builtin/k3s", "builtin", "k3s", false},
		{"/k3s", "", "", true},
		{"builtin/", "", "", true},
		{"a/b/c", "", "", true},
	} {
		registry, name, err := parsePackRef(tt.in)
		if (err != nil) != tt.err || registry != tt.registry || name != tt.name {
			t.Errorf("parsePackRef(%q) = %q, %q, %v", tt.in, registry, name, err)
		}
	}
	vars, err := parseVars([]string{"site=berlin", "cidr=10.0.0.0/8", "empty=", "eq=a=b"})
	if err != nil || !reflect.DeepEqual(vars, map[string]string{"site": "berlin", "cidr": "10.0.0.0/8", "empty": "", "eq": "a=b"}) {
		t.Errorf("parseVars = %v, %v", vars, err)
	}
	for _, bad := range [][]string{{"site"}, {"=x"}, {"a=1", "a=2"}} {
		if _, err := parseVars(bad); err == nil {
			t.Errorf("parseVars(%q): no error", bad)
		}
	}
}

func TestLatestVersion(t *testing.T) {
	for _, tt := range []struct {
		versions []v1.PackVersion
		want     string
	}{
		{[]v1.PackVersion{{Version: "1.30.2+k3s1"}, {Version: "1.30.2+k3s2"}, {Version: "1.29.9+k3s1"}}, "1.30.2+k3s2"},
		{[]v1.PackVersion{{Version: "2.0.0", Deprecated: true}, {Version: "1.9.0"}}, "1.9.0"},
		{[]v1.PackVersion{{Version: "2.0.0", Deprecated: true}, {Version: "1.9.0", Deprecated: true}}, "2.0.0"},
		{nil, ""},
	} {
		if got := latestVersion(&v1.PackSpec{Versions: tt.versions}); got != tt.want {
			t.Errorf("latestVersion(%v) = %q, want %q", tt.versions, got, tt.want)
		}
	}
}

func TestProfileTable(t *testing.T) {
	p := v1.ClusterProfile{
		Metadata: v1.ObjectMeta{Name: "edge", CreatedAt: testNow.Add(-3 * time.Hour)},
		Spec: v1.ClusterProfileSpec{Type: v1.ProfileFull, Version: "1.0.0", Published: true, Layers: []v1.ProfileLayer{
			{Name: "k3s", Pack: "k3s", Version: "1.30.x"},
			{Name: "cni", Pack: "calico", Version: "3.29.1"},
			{Name: "extras", Manifests: []v1.Manifest{{Name: "ns"}}},
		}},
		Status: v1.ClusterProfileStatus{Resolved: []v1.ResolvedLayerVersion{{Layer: "k3s", Version: "1.30.6+k3s1"}}},
	}
	var b bytes.Buffer
	if err := profileTable([]v1.ClusterProfile{p}, testNow).write(&b); err != nil {
		t.Fatal(err)
	}
	want := "NAME   VERSION   TYPE   PUBLISHED   LAYERS                                            AGE\n" +
		"edge   1.0.0     full   yes         k3s@1.30.6+k3s1,calico@3.29.1,extras(manifests)   3h\n"
	if b.String() != want {
		t.Errorf("table =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteRendered(t *testing.T) {
	rp := &v1.RenderedProfile{Profile: "edge", Version: "1.0.0", Type: "full", Hash: "abc123", Layers: []v1.RenderedLayer{
		{Name: "k3s", Layer: "k8s", Type: "distro", Pack: "k3s", Registry: "builtin", Train: "1.30.x", Version: "1.30.6+k3s1",
			KubernetesVersion: "1.30.6", Values: "config:\n  node-label:\n    - site=berlin\n", Hash: "h1",
			Artifacts: []v1.Artifact{{Name: "k3s", Arch: "amd64", URL: "https://example.com/k3s"}}},
		{Name: "agent", Layer: "addon", Type: "helm", Pack: "edge-agent", Registry: "lab", Version: "1.2.0", Hash: "h2",
			Chart:     &v1.ChartRef{Repository: "https://charts.example.com", Name: "edge-agent", Version: "1.2.0"},
			Manifests: []v1.Manifest{{Name: "ns", Content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: berlin\n"}}},
	}}
	var b bytes.Buffer
	if err := writeRendered(&b, rp); err != nil {
		t.Fatal(err)
	}
	want := `profile edge@1.0.0 (full), 2 layers
hash abc123

1. k3s  [k8s, distro]
   pack builtin/k3s 1.30.6+k3s1 (train 1.30.x)
   kubernetes 1.30.6
   artifacts:
     k3s (amd64) https://example.com/k3s
   values:
     config:
       node-label:
         - site=berlin
   hash h1

2. agent  [addon, helm]
   pack lab/edge-agent 1.2.0
   chart edge-agent 1.2.0 from https://charts.example.com
   manifests:
     --- # ns
     apiVersion: v1
     kind: Namespace
     metadata:
       name: berlin
   hash h2
`
	if b.String() != want {
		t.Errorf("render summary =\n%s\nwant\n%s", b.String(), want)
	}
}

// TestExportRoundTrips: what get --export prints decodes as a profile
// with the same spec and no server-owned fields.
func TestExportRoundTrips(t *testing.T) {
	created := testNow.Add(-time.Hour)
	p := &v1.ClusterProfile{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindClusterProfile},
		Metadata: v1.ObjectMeta{Name: "edge", Project: "plant-9", Labels: map[string]string{"team": "ops"}, Revision: 42, CreatedAt: created, UpdatedAt: created},
		Spec: v1.ClusterProfileSpec{Type: v1.ProfileFull, Version: "1.0.0", Published: true, Description: "edge: k3s",
			Layers:    []v1.ProfileLayer{{Name: "k3s", Pack: "k3s", Version: "1.30.x", Values: "config:\n  a: '{{ .Vars.x }}'\n", Presets: []string{"ha-etcd"}}},
			Variables: []v1.ProfileVariable{{Name: "x", Type: v1.VarString, Default: "1", Required: true}}},
		Status: v1.ClusterProfileStatus{Resolved: []v1.ResolvedLayerVersion{{Layer: "k3s", Version: "1.30.6+k3s1"}}, ResolvedHash: "abc"},
	}
	var b bytes.Buffer
	pr := &printer{out: &b, format: outputYAML, now: testNow}
	if err := pr.print(exportProfile(p), nil); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"revision", "createdAt", "updatedAt", "status", "project", "resolved"} {
		if strings.Contains(b.String(), gone+":") {
			t.Errorf("export has %s:\n%s", gone, b.String())
		}
	}
	back, err := profile.Decode(b.Bytes())
	if err != nil {
		t.Fatalf("export does not decode: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(back.Spec, p.Spec) || !reflect.DeepEqual(back.Metadata.Labels, p.Metadata.Labels) || back.Metadata.Name != "edge" {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, p)
	}
}

func TestModelingCommandErrors(t *testing.T) {
	hub := map[string]string{envServer: "https://127.0.0.1:1", envToken: "t"}
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"apply"}, nil, "pass -f FILE"},
		{[]string{"apply", "-f", "/nonexistent/x.yaml"}, nil, "-f /nonexistent/x.yaml"},
		{[]string{"profiles", "get"}, nil, "usage: outpost profiles get NAME[@VERSION]"},
		{[]string{"profiles", "publish", "edge"}, nil, "name the version"},
		{[]string{"profiles", "delete", "edge@"}, nil, "want NAME@VERSION"},
		{[]string{"profiles", "clone", "edge@1.0.0"}, nil, "pass --to"},
		{[]string{"profiles", "bump", "edge@1.0.0"}, nil, "pass --part"},
		{[]string{"profiles", "render", "edge", "--set", "site"}, nil, "want variable=value"},
		{[]string{"profiles", "versions", "edge@1.0.0"}, nil, "without a version"},
		{[]string{"packs", "get", "/k3s"}, nil, "want NAME or REGISTRY/NAME"},
		{[]string{"registries", "add", "lab"}, nil, "pass --type"},
		{[]string{"registries", "add", "lab", "--type", "helm"}, nil, "exactly one of --url and --dir"},
		{[]string{"registries", "add", "lab", "--type", "helm", "--url", "https://x", "--registry-ca-file", "/nonexistent/ca.pem"}, nil, "read the registry's CA file"},
		{[]string{"registries", "ls"}, nil, "no hub server"},
		{[]string{"profiles", "ls", "-o", "xml"}, hub, `output format "xml"`},
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

// helmRepo serves a Helm repository index that a test can change.
type helmRepo struct {
	*httptest.Server
	mu    sync.Mutex
	index string
}

func newHelmRepo(t *testing.T, index string) *helmRepo {
	r := &helmRepo{index: index}
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

func helmIndex(versions ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nentries:\n  edge-agent:\n")
	for _, v := range versions {
		b.WriteString("  - apiVersion: v2\n    name: edge-agent\n    version: " + v + "\n    description: Site agent\n    urls:\n    - edge-agent-" + v + ".tgz\n")
	}
	return b.String()
}

// TestIntegrationApply drives apply against an in-process hub: creation,
// re-application, updates of unpublished versions, the refusal to change a
// published one, and the round trip through get --export.
func TestIntegrationApply(t *testing.T) {
	hub := hubtest.Start(t)
	repo := newHelmRepo(t, helmIndex("1.1.0", "1.2.0"))
	env := func() map[string]string {
		return map[string]string{envServer: hub.URL, envToken: hub.AdminToken, envCAFile: hub.CAFile, envProject: "plant-9"}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.yaml")
	fleet := `apiVersion: outpost.dev/v1
kind: Project
metadata:
  name: plant-9
spec:
  description: Plant 9
---
apiVersion: outpost.dev/v1
kind: Registry
metadata:
  name: lab
spec:
  type: helm
  url: ` + repo.URL + `
---
apiVersion: outpost.dev/v1
kind: RegistrationToken
metadata:
  name: rack-a
spec:
  maxUses: 3
---
apiVersion: outpost.dev/v1
kind: EdgeHost
metadata:
  name: edge-1
  labels:
    site: berlin
---
apiVersion: outpost.dev/v1
kind: ClusterProfile
metadata:
  name: agents
spec:
  type: addon
  version: 1.0.0
  layers:
    - pack: edge-agent
      registry: lab
      version: 1.x
      values: |
        site: {{ .Vars.site }}
  variables:
    - name: site
      type: string
      default: lab
`
	writeFile := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(wantErr string, args ...string) string {
		t.Helper()
		out, _, err := runIn(t, env(), "", append([]string{"apply", "-f", file}, args...)...)
		if wantErr == "" && err != nil {
			t.Fatalf("apply: %v\n%s", err, out)
		}
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("apply: err = %v, want %q\n%s", err, wantErr, out)
		}
		return out
	}
	lines := func(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

	writeFile(fleet)
	out := apply("")
	got := lines(out)
	if len(got) != 6 || !strings.HasPrefix(got[3], "  its secret, shown only now: ort_") {
		t.Fatalf("first apply:\n%s", out)
	}
	want := []string{"project/plant-9 created", "registry/lab created", "registrationtoken/rack-a created", "edgehost/edge-1 created", "clusterprofile/agents@1.0.0 created"}
	if !slices.Equal(append(got[:3:3], got[4:]...), want) {
		t.Errorf("first apply:\n%s", out)
	}

	out = apply("")
	if want := []string{"project/plant-9 unchanged", "registry/lab unchanged", "registrationtoken/rack-a unchanged", "edgehost/edge-1 unchanged", "clusterprofile/agents@1.0.0 unchanged"}; !slices.Equal(lines(out), want) {
		t.Errorf("second apply:\n%s", out)
	}

	// Changes: the project's description, a host label, the profile's values.
	changed := strings.NewReplacer("description: Plant 9", "description: Plant 9, hall 2", "site: berlin", "site: berlin\n    rack: r7",
		"site: {{ .Vars.site }}", "site: {{ .Vars.site }}\n        replicas: 2").Replace(fleet)
	writeFile(changed)
	out = apply("")
	if want := []string{"project/plant-9 configured", "registry/lab unchanged", "registrationtoken/rack-a unchanged", "edgehost/edge-1 configured", "clusterprofile/agents@1.0.0 configured"}; !slices.Equal(lines(out), want) {
		t.Errorf("apply of changes:\n%s", out)
	}

	// Publish, then the same document is unchanged and a different one is
	// refused, naming the document and the layer, after applying the rest.
	if _, _, err := runIn(t, env(), "", "profiles", "publish", "agents@1.0.0"); err != nil {
		t.Fatal(err)
	}
	out = apply("")
	if !strings.Contains(out, "clusterprofile/agents@1.0.0 unchanged") {
		t.Errorf("apply after publish:\n%s", out)
	}
	writeFile(strings.Replace(changed, "replicas: 2", "replicas: 3", 1))
	out = apply(file + ": document 5 (ClusterProfile agents@1.0.0): profile agents@1.0.0 is published and cannot change (the document changes spec.layers[edge-agent])")
	if want := []string{"project/plant-9 unchanged", "registry/lab unchanged", "registrationtoken/rack-a unchanged", "edgehost/edge-1 unchanged"}; !slices.Equal(lines(out), want) {
		t.Errorf("the objects before the error were not reported:\n%s", out)
	}

	// A bad layer: the hub's field error, prefixed with the document.
	writeFile(strings.NewReplacer("registry: lab", "registry: nowhere", "version: 1.0.0", "version: 1.5.0").Replace(fleet) + "---\n")
	apply(`document 5 (ClusterProfile agents@1.5.0): spec.layers[edge-agent].pack: pack "edge-agent" in registry "nowhere": `)

	// get --export | apply -f -: unchanged, and the same spec.
	exported, _, err := runIn(t, env(), "", "profiles", "get", "agents@1.0.0", "-o", "yaml", "--export")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runIn(t, env(), exported, "apply", "-f", "-")
	if err != nil || strings.TrimSpace(out) != "clusterprofile/agents@1.0.0 unchanged" {
		t.Errorf("apply of the export: %v\n%s\nexport:\n%s", err, out, exported)
	}
	full, _, err := runIn(t, env(), "", "profiles", "get", "agents", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var stored v1.ClusterProfile
	if err := json.Unmarshal([]byte(full), &stored); err != nil {
		t.Fatal(err)
	}
	back, err := profile.Decode([]byte(exported))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Spec, stored.Spec) || stored.Metadata.Revision == 0 || len(stored.Status.Resolved) != 1 {
		t.Errorf("export spec %+v, stored %+v", back.Spec, stored)
	}

	// -o json reports results for scripts, the token's secret included.
	out, _, err = runIn(t, env(), "apiVersion: outpost.dev/v1\nkind: RegistrationToken\nmetadata:\n  name: rack-b\n", "apply", "-f", "-", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var results []applyResult
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 1 || results[0].Result != applyCreated || !strings.HasPrefix(results[0].Token, "ort_") || results[0].Project != "plant-9" {
		t.Errorf("apply -o json = %s (%v)", out, err)
	}
}

// TestIntegrationProfileCommands runs the profile, pack and registry
// commands against an in-process hub and a Helm repository whose index
// gains a version.
func TestIntegrationProfileCommands(t *testing.T) {
	hub := hubtest.Start(t)
	repo := newHelmRepo(t, helmIndex("1.1.0", "1.2.0"))
	env := func() map[string]string {
		return map[string]string{envServer: hub.URL, envToken: hub.AdminToken, envCAFile: hub.CAFile}
	}
	run := func(args ...string) string {
		t.Helper()
		out, _, err := runIn(t, env(), "", args...)
		if err != nil {
			t.Fatalf("outpost %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out := run("registries", "add", "lab", "--type", "helm", "--url", repo.URL, "--interval", "0"); out != "registry \"lab\" added: 1 pack, 2 versions\n" {
		t.Errorf("registries add: %q", out)
	}
	var packs v1.List[v1.Pack]
	if err := json.Unmarshal([]byte(run("packs", "ls", "--registry", "lab", "-o", "json")), &packs); err != nil || len(packs.Items) != 1 || packs.Items[0].Metadata.Name != "lab/edge-agent" {
		t.Fatalf("packs ls --registry lab: %+v %v", packs, err)
	}
	if out := run("packs", "ls", "--layer", "K8S"); !strings.Contains(out, "builtin    k3s ") || strings.Contains(out, "calico") {
		t.Errorf("packs ls --layer K8S:\n%s", out)
	}
	if out := run("packs", "versions", "edge-agent"); !strings.Contains(out, "1.2.0     -            no           -         chart edge-agent@1.2.0") {
		t.Errorf("packs versions edge-agent:\n%s", out)
	}

	prof := "apiVersion: outpost.dev/v1\nkind: ClusterProfile\nmetadata:\n  name: agents\nspec:\n  type: addon\n  version: 1.0.0\n  layers:\n    - pack: edge-agent\n      version: 1.x\n      values: |\n        site: {{ .Vars.site }}\n  variables:\n    - name: site\n      type: string\n      default: lab\n"
	if out, _, err := runIn(t, env(), prof, "apply", "-f", "-"); err != nil || out != "clusterprofile/agents@1.0.0 created\n" {
		t.Fatalf("apply: %v %q", err, out)
	}
	var rp v1.RenderedProfile
	if err := json.Unmarshal([]byte(run("profiles", "render", "agents@1.0.0", "--set", "site=berlin", "-o", "json")), &rp); err != nil {
		t.Fatal(err)
	}
	if len(rp.Layers) != 1 || rp.Layers[0].Version != "1.2.0" || rp.Layers[0].Train != "1.x" || rp.Layers[0].Values != "site: berlin\n" || rp.Hash == "" {
		t.Errorf("render: %+v", rp)
	}
	if out := run("profiles", "render", "agents"); !strings.Contains(out, "pack lab/edge-agent 1.2.0 (train 1.x)") || !strings.Contains(out, "     site: lab\n") || !strings.HasPrefix(strings.Split(out, "\n")[1], "hash ") {
		t.Errorf("render summary:\n%s", out)
	}

	run("profiles", "publish", "agents@1.0.0")
	run("profiles", "bump", "agents@1.0.0", "--part", "minor")
	run("profiles", "clone", "agents@1.0.0", "--to", "agents-ha@2.0.0")
	if out := run("profiles", "ls"); !strings.Contains(out, "agents      1.0.0     addon   yes") || !strings.Contains(out, "agents      1.1.0     addon   no") || !strings.Contains(out, "agents-ha   2.0.0") {
		t.Errorf("profiles ls:\n%s", out)
	}
	if out := run("profiles", "get", "agents"); !strings.Contains(out, "1.1.0") {
		t.Errorf("get without a version is not the newest:\n%s", out)
	}

	// The repository gains 1.3.0: a sync moves the train.
	repo.mu.Lock()
	repo.index = helmIndex("1.1.0", "1.2.0", "1.3.0")
	repo.mu.Unlock()
	if out := run("registries", "sync", "lab"); !strings.Contains(out, "lab    helm   "+repo.URL+"   1       3 ") {
		t.Errorf("registries sync:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(run("profiles", "versions", "agents"), "edge-agent@1.3.0") {
		if time.Now().After(deadline) {
			t.Fatalf("the train did not move:\n%s", run("profiles", "versions", "agents"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A registry that cannot be read: sync says so and fails.
	repo.mu.Lock()
	repo.index = "not: [an index"
	repo.mu.Unlock()
	out, _, err := runIn(t, env(), "", "registries", "sync", "lab")
	if err == nil || !strings.Contains(err.Error(), `sync registry "lab" failed; it keeps its last good packs`) || !strings.Contains(out, "not a Helm repository index") {
		t.Errorf("failed sync: %v\n%s", err, out)
	}

	run("profiles", "delete", "agents@1.1.0")
	if out := run("profiles", "versions", "agents"); strings.Contains(out, "1.1.0") {
		t.Errorf("deleted version still listed:\n%s", out)
	}
	run("registries", "delete", "lab")
	if out, _, err := runIn(t, env(), "", "registries", "get", "lab"); err == nil {
		t.Errorf("deleted registry: %s", out)
	}
}
