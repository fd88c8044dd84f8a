package catalog

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func builtinByName(t *testing.T) map[string]v1.Pack {
	t.Helper()
	packs, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	m := map[string]v1.Pack{}
	for _, p := range packs {
		m[p.Spec.Name] = p
	}
	return m
}

func TestBuiltinValidates(t *testing.T) {
	packs, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	for i, p := range packs {
		if err := ValidatePack(&p.Spec); err != nil {
			t.Errorf("%s: %v", p.Metadata.Name, err)
		}
		if p.APIVersion != v1.APIVersion || p.Kind != v1.KindPack {
			t.Errorf("%s: type meta %+v", p.Metadata.Name, p.TypeMeta)
		}
		if p.Metadata.Name != "builtin/"+p.Spec.Name || p.Spec.Registry != "builtin" {
			t.Errorf("pack %s is named %q in registry %q", p.Spec.Name, p.Metadata.Name, p.Spec.Registry)
		}
		if i > 0 && packs[i-1].Metadata.Name >= p.Metadata.Name {
			t.Errorf("packs are not sorted by name: %s before %s", packs[i-1].Metadata.Name, p.Metadata.Name)
		}
		for j := 1; j < len(p.Spec.Versions); j++ {
			if !Newer(p.Spec.Versions[j-1].Version, p.Spec.Versions[j].Version) {
				t.Errorf("%s: versions are not newest first: %s before %s", p.Metadata.Name, p.Spec.Versions[j-1].Version, p.Spec.Versions[j].Version)
			}
		}
		if p.Spec.Description == "" || p.Spec.DisplayName == "" {
			t.Errorf("%s has no description or display name", p.Metadata.Name)
		}
	}
}

// Each built-in pack lives in builtin/<name>.yaml, so it can be found.
func TestBuiltinFileNames(t *testing.T) {
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(builtinFS, "builtin/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePackFile(data)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if e.Name() != p.Name+".yaml" {
			t.Errorf("file %s holds pack %q", e.Name(), p.Name)
		}
	}
}

func TestBuiltinHasTheRequiredPacks(t *testing.T) {
	m := builtinByName(t)
	want := map[string][2]string{
		"ubuntu":         {v1.LayerOS, v1.PackDistro},
		"opensuse-leap":  {v1.LayerOS, v1.PackDistro},
		"k3s":            {v1.LayerK8s, v1.PackDistro},
		"rke2":           {v1.LayerK8s, v1.PackDistro},
		"kubeadm":        {v1.LayerK8s, v1.PackDistro},
		"calico":         {v1.LayerCNI, v1.PackHelm},
		"flannel":        {v1.LayerCNI, v1.PackHelm},
		"cilium":         {v1.LayerCNI, v1.PackHelm},
		"local-path":     {v1.LayerCSI, v1.PackManifest},
		"longhorn":       {v1.LayerCSI, v1.PackHelm},
		"rook-ceph":      {v1.LayerCSI, v1.PackHelm},
		"kube-vip":       {v1.LayerAddon, v1.PackManifest},
		"metrics-server": {v1.LayerAddon, v1.PackHelm},
		"ingress-nginx":  {v1.LayerAddon, v1.PackHelm},
		"cert-manager":   {v1.LayerAddon, v1.PackHelm},
	}
	for name, lt := range want {
		p, ok := m[name]
		if !ok {
			t.Errorf("no built-in pack %s", name)
			continue
		}
		if p.Spec.Layer != lt[0] || p.Spec.Type != lt[1] {
			t.Errorf("%s is %s/%s, want %s/%s", name, p.Spec.Layer, p.Spec.Type, lt[0], lt[1])
		}
		if p.Spec.Layer != v1.LayerOS && p.Spec.Layer != v1.LayerK8s && len(p.Spec.Versions) < 3 {
			t.Errorf("%s has %d versions, want a few", name, len(p.Spec.Versions))
		}
	}
	for _, s := range []struct{ pack, series string }{
		{"ubuntu", "22.04"}, {"ubuntu", "24.04"}, {"opensuse-leap", "15.5"}, {"opensuse-leap", "15.6"},
	} {
		if _, err := ResolvePack(ptr(m[s.pack].Spec), s.series+".x"); err != nil && !strings.Contains(err.Error(), "deprecated") {
			t.Errorf("%s %s: %v", s.pack, s.series, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestBuiltinDistros(t *testing.T) {
	m := builtinByName(t)
	for _, d := range []struct{ name, meta, checksum string }{
		{"k3s", "k3s", "https://github.com/k3s-io/k3s/releases/download/"},
		{"rke2", "rke2r", "https://github.com/rancher/rke2/releases/download/"},
		{"kubeadm", "", "https://dl.k8s.io/release/"},
	} {
		p := m[d.name].Spec
		minors := map[string]int{}
		for _, pv := range p.Versions {
			v, _ := parseVersion(pv.Version)
			kv, err := parseVersion(pv.KubernetesVersion)
			if err != nil {
				t.Errorf("%s %s: kubernetesVersion: %v", d.name, pv.Version, err)
				continue
			}
			if v.Compare(kv) != 0 || kv.Metadata() != "" {
				t.Errorf("%s %s carries Kubernetes %s", d.name, pv.Version, pv.KubernetesVersion)
			}
			if d.meta != "" && !strings.HasPrefix(v.Metadata(), d.meta) {
				t.Errorf("%s %s: build metadata should start with %q", d.name, pv.Version, d.meta)
			}
			minors[strings.Join(strings.Split(pv.KubernetesVersion, ".")[:2], ".")]++
			arches := map[string]bool{}
			for _, a := range pv.Artifacts {
				arches[a.Arch] = true
				// Never an invented hash: upstream checksum files only.
				if a.SHA256 != "" || a.ChecksumURL == "" {
					t.Errorf("%s %s %s/%s: want a checksumURL and no sha256", d.name, pv.Version, a.Name, a.Arch)
				}
				// k3s's amd64 binary is the one without a suffix.
				k3sAMD64 := d.name == "k3s" && a.Arch == "amd64" && strings.HasSuffix(a.URL, "/k3s")
				if !k3sAMD64 && !strings.Contains(a.URL, a.Arch) {
					t.Errorf("%s %s: %s does not look like the %s build", d.name, pv.Version, a.URL, a.Arch)
				}
			}
			if !arches["amd64"] || !arches["arm64"] {
				t.Errorf("%s %s: artifacts for %v, want amd64 and arm64", d.name, pv.Version, arches)
			}
			if !strings.HasPrefix(pv.Artifacts[0].URL, d.checksum) {
				t.Errorf("%s %s: first artifact %s is not from %s", d.name, pv.Version, pv.Artifacts[0].URL, d.checksum)
			}
		}
		if len(minors) < 3 {
			t.Errorf("%s covers Kubernetes minors %v, want at least three", d.name, minors)
		}
		several := false
		for _, n := range minors {
			several = several || n >= 2
		}
		if !several {
			t.Errorf("%s has no minor with two patch versions: trains would mean nothing", d.name)
		}
	}

	// The upstream URL shapes, spelled out once.
	k3s := m["k3s"].Spec
	pv, err := ResolvePack(&k3s, "1.30.x")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range pv.Artifacts {
		base := "https://github.com/k3s-io/k3s/releases/download/v1.30.6%2Bk3s1/"
		want := map[string][2]string{"amd64": {base + "k3s", base + "sha256sum-amd64.txt"}, "arm64": {base + "k3s-arm64", base + "sha256sum-arm64.txt"}}[a.Arch]
		if a.URL != want[0] || a.ChecksumURL != want[1] {
			t.Errorf("k3s %s artifact = %s, %s; want %s, %s", a.Arch, a.URL, a.ChecksumURL, want[0], want[1])
		}
	}
	kubeadm := m["kubeadm"].Spec
	pv, err = ResolvePack(&kubeadm, "1.31.x")
	if err != nil {
		t.Fatal(err)
	}
	if a := pv.Artifacts[0]; a.URL != "https://dl.k8s.io/release/v1.31.4/bin/linux/amd64/kubeadm" || a.ChecksumURL != a.URL+".sha256" {
		t.Errorf("kubeadm artifact = %+v", a)
	}
	// A k3s re-release wins on the train, and the one it replaced is kept
	// for pins but taken off trains.
	if pv, err := ResolvePack(&k3s, "1.30.2"); err != nil || pv.Version != "1.30.2+k3s2" {
		t.Errorf("k3s 1.30.2 = %v, %v; want 1.30.2+k3s2", pv, err)
	}
	if pv, err := ResolvePack(&k3s, "1.30.2+k3s1"); err != nil || !pv.Deprecated {
		t.Errorf("k3s 1.30.2+k3s1 = %v, %v; want the deprecated version", pv, err)
	}
}

func TestBuiltinPresets(t *testing.T) {
	m := builtinByName(t)
	for pack, presets := range map[string][]string{
		"k3s":     {PresetExternalCNI, PresetExternalCSI, "ha-etcd", "disable-traefik", "disable-servicelb", "disable-kube-proxy"},
		"rke2":    {PresetExternalCNI, "disable-ingress-nginx"},
		"kubeadm": {"ipvs", "skip-kube-proxy"},
	} {
		for _, pv := range m[pack].Spec.Versions {
			for _, name := range presets {
				i := slices.IndexFunc(pv.Presets, func(p v1.Preset) bool { return p.Name == name })
				if i < 0 {
					t.Errorf("%s %s has no preset %s", pack, pv.Version, name)
					continue
				}
				if name == PresetExternalCNI && pv.Presets[i].Group != "cni" {
					t.Errorf("%s %s: %s is in group %q, want cni", pack, pv.Version, name, pv.Presets[i].Group)
				}
			}
		}
	}

	// The seed's defaults for a k3s profile with a CNI layer.
	k3s := m["k3s"].Spec.Versions[0]
	var add struct {
		ConfigDropIns map[string]map[string]any `yaml:"configDropIns"`
	}
	i := slices.IndexFunc(k3s.Presets, func(p v1.Preset) bool { return p.Name == PresetExternalCNI })
	if err := yaml.Unmarshal([]byte(k3s.Presets[i].Add), &add); err != nil {
		t.Fatal(err)
	}
	got := add.ConfigDropIns[PresetExternalCNI]
	if got["flannel-backend"] != "none" || got["disable-network-policy"] != true || !slices.Equal(toStrings(got["disable+"]), []string{"metrics-server"}) {
		t.Errorf("k3s external-cni adds %v", got)
	}
	// rke2 turns its CNI off.
	rke2 := m["rke2"].Spec.Versions[0]
	i = slices.IndexFunc(rke2.Presets, func(p v1.Preset) bool { return p.Name == PresetExternalCNI })
	if !strings.Contains(rke2.Presets[i].Add, "cni: none") {
		t.Errorf("rke2 external-cni adds %q", rke2.Presets[i].Add)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// The CNI packs and the distros agree on the pod CIDR out of the box.
func TestBuiltinPodCIDRsAgree(t *testing.T) {
	m := builtinByName(t)
	for _, name := range []string{"k3s", "rke2", "kubeadm", "calico", "flannel", "cilium"} {
		for _, pv := range m[name].Spec.Versions {
			if !strings.Contains(pv.Values, "10.42.0.0/16") {
				t.Errorf("%s %s: values do not use the pod CIDR 10.42.0.0/16", name, pv.Version)
			}
		}
	}
}

func TestBuiltinCharts(t *testing.T) {
	for _, p := range builtinByName(t) {
		if p.Spec.Type != v1.PackHelm {
			continue
		}
		for _, pv := range p.Spec.Versions {
			c := pv.Chart
			if u, err := url.Parse(c.Repository); err != nil || u.Scheme != "https" {
				t.Errorf("%s %s: repository %q is not https", p.Spec.Name, pv.Version, c.Repository)
			}
			// The pack version is the chart version without Helm's v.
			if strings.TrimPrefix(c.Version, "v") != pv.Version {
				t.Errorf("%s %s: chart version %s", p.Spec.Name, pv.Version, c.Version)
			}
		}
	}
}

// Every manifest template renders with its pack's default values the way
// the renderer runs it (text/template, missingkey=error), into Kubernetes
// objects that name themselves.
func TestBuiltinManifestsRender(t *testing.T) {
	for _, p := range builtinByName(t) {
		for _, pv := range p.Spec.Versions {
			var values map[string]any
			if err := yaml.Unmarshal([]byte(pv.Values), &values); err != nil {
				t.Fatalf("%s %s: values: %v", p.Spec.Name, pv.Version, err)
			}
			for _, mf := range pv.Manifests {
				tmpl, err := template.New(mf.Name).Option("missingkey=error").Parse(mf.Content)
				if err != nil {
					t.Errorf("%s %s %s: %v", p.Spec.Name, pv.Version, mf.Name, err)
					continue
				}
				var out bytes.Buffer
				data := map[string]any{"Values": values, "Vars": map[string]string{}}
				if err := tmpl.Execute(&out, data); err != nil {
					t.Errorf("%s %s %s: %v", p.Spec.Name, pv.Version, mf.Name, err)
					continue
				}
				dec := yaml.NewDecoder(&out)
				n := 0
				for {
					var obj struct {
						APIVersion string `yaml:"apiVersion"`
						Kind       string `yaml:"kind"`
						Metadata   struct {
							Name string `yaml:"name"`
						} `yaml:"metadata"`
					}
					err := dec.Decode(&obj)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Errorf("%s %s %s: document %d: %v", p.Spec.Name, pv.Version, mf.Name, n+1, err)
						break
					}
					n++
					if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
						t.Errorf("%s %s %s: document %d is %+v", p.Spec.Name, pv.Version, mf.Name, n, obj)
					}
				}
				if n == 0 {
					t.Errorf("%s %s %s: no objects", p.Spec.Name, pv.Version, mf.Name)
				}
			}
		}
	}
	// The image follows the version.
	lp := builtinByName(t)["local-path"].Spec.Versions[0]
	if !strings.Contains(lp.Values, "local-path-provisioner:v"+lp.Version) {
		t.Errorf("local-path %s uses %q", lp.Version, lp.Values)
	}
}

func TestBuiltinIsAFreshCopy(t *testing.T) {
	a, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	a[0].Spec.Versions[0].Values = "changed: true"
	b, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if b[0].Spec.Versions[0].Values == "changed: true" {
		t.Error("a change to one Builtin result shows in the next")
	}
}

func TestParsePackFile(t *testing.T) {
	good := "name: x\nregistry: builtin\nlayer: addon\ntype: helm\nversions: []\n"
	if p, err := ParsePackFile([]byte(good + "---\n")); err != nil || p.Name != "x" {
		t.Errorf("ParsePackFile = %+v, %v", p, err)
	}
	for _, tt := range []struct{ name, data, err string }{
		{"unknown field", good + "versoins: []\n", "field versoins not found"},
		{"two documents", good + "---\nname: y\n", "exactly one YAML document"},
		{"empty", "", "empty"},
		{"values as a map", "name: x\nversions:\n  - version: 1.0.0\n    values:\n      a: 1\n", "cannot unmarshal"},
	} {
		if _, err := ParsePackFile([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want …%s…", tt.name, err, tt.err)
		}
	}
}

func TestParsePackIndex(t *testing.T) {
	idx, err := ParsePackIndex([]byte("apiVersion: outpost.dev/v1\nkind: PackIndex\ngenerated: 2025-01-01\npacks:\n  - name: a\n    futureField: 1\n"))
	if err != nil || len(idx.Packs) != 1 || idx.Packs[0].Name != "a" {
		t.Fatalf("ParsePackIndex = %+v, %v (unknown fields must be ignored)", idx, err)
	}
	for _, tt := range []struct{ data, err string }{
		{"apiVersion: v1\nkind: PackIndex\n", `apiVersion is "v1"`},
		{"apiVersion: outpost.dev/v1\nkind: Pack\n", `kind is "Pack"`},
		{"apiVersion: outpost.dev/v1\nkind: PackIndex\npacks: {}\n", "cannot unmarshal"},
	} {
		if _, err := ParsePackIndex([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParsePackIndex(%q): error %v, want …%s…", tt.data, err, tt.err)
		}
	}
}

func TestLoadBuiltinRefusesStrays(t *testing.T) {
	pack := "name: x\nregistry: %s\nlayer: addon\ntype: helm\nversions: [{version: 1.0.0, chart: {repository: https://x.example, name: x, version: 1.0.0}}]\n"
	for _, tt := range []struct{ file, content, err string }{
		{"x.yaml", strings.Replace(pack, "%s", "acme", 1), `built-in catalog: x.yaml: registry is "acme", not "builtin"`},
		{"x.yaml", "name: x\nregistry: builtin\nlayer: addon\ntype: helm\nversions: []\n", `built-in catalog: x.yaml: pack "x": versions: a pack needs at least one version`},
		{"x.yaml", "name: [x]\n", "built-in catalog: x.yaml: "},
	} {
		_, err := loadBuiltin(fstest.MapFS{tt.file: {Data: []byte(tt.content)}})
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("loadBuiltin: %v, want …%s…", err, tt.err)
		}
	}
	packs, err := loadBuiltin(fstest.MapFS{"x.yaml": {Data: []byte(strings.Replace(pack, "%s", "builtin", 1))}, "sub/y.yaml": {Data: []byte("junk")}})
	if err != nil || len(packs) != 1 {
		t.Errorf("loadBuiltin = %d packs, %v", len(packs), err)
	}
}
