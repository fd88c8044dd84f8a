package profile

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

var storeVars = map[string]string{"siteCode": "de-042", "podCIDR": "10.44.0.0/16"}

func renderFull(t *testing.T, p *v1.ClusterProfile, packs PackLookup, vars map[string]string) *v1.RenderedProfile {
	t.Helper()
	r, err := Render(p, packs, RenderOptions{Resolver: testResolve, Vars: vars})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return r
}

var reHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestRenderFullProfile(t *testing.T) {
	packs := testPacks()
	r := renderFull(t, fullProfile(t), packs, storeVars)

	if r.Profile != "store-edge" || r.Version != "1.0.0" || r.Type != v1.ProfileFull {
		t.Errorf("profile = %s %s %s", r.Profile, r.Version, r.Type)
	}
	if len(r.Layers) != 5 {
		t.Fatalf("%d layers, want 5", len(r.Layers))
	}
	k3s, _ := packs.Pack("builtin", "k3s")
	calico, _ := packs.Pack("builtin", "calico")
	metrics, _ := packs.Pack("builtin", "metrics-server")

	want := []v1.RenderedLayer{
		{
			Name: "ubuntu", Layer: v1.LayerOS, Type: v1.PackDistro, Pack: "ubuntu", Registry: "builtin",
			Version: "22.04.4",
			Values:  "packages:\n  - open-iscsi\ntimezone: UTC\n",
		},
		{
			Name: "k3s", Layer: v1.LayerK8s, Type: v1.PackDistro, Pack: "k3s", Registry: "builtin",
			// 1.30.5+k3s1 is newer but deprecated: the train skips it.
			Train: "1.30.x", Version: "1.30.4+k3s1", KubernetesVersion: "1.30.4",
			// Pack defaults, then external-cni (automatic: there is a CNI
			// layer), then secrets-encryption, then the layer's values.
			Values: `cluster:
  config:
    cluster-cidr: 10.44.0.0/16
    disable:
      - metrics-server
    disable-network-policy: true
    flannel-backend: none
    secrets-encryption: true
    service-cidr: 10.43.0.0/16
    write-kubeconfig-mode: "0644"
`,
			Artifacts: k3s.Spec.Versions[2].Artifacts,
		},
		{
			Name: "calico", Layer: v1.LayerCNI, Type: v1.PackHelm, Pack: "calico", Registry: "builtin",
			Version: "3.28.1",
			Values: `installation:
  calicoNetwork:
    ipPools:
      - cidr: 10.44.0.0/16
        encapsulation: VXLAN
`,
			Chart: calico.Spec.Versions[1].Chart,
		},
		{
			Name: "local-path", Layer: v1.LayerCSI, Type: v1.PackManifest, Pack: "local-path", Registry: "builtin",
			Version: "0.0.28",
			Values:  "storagePath: /opt/local-path-provisioner\n",
			Manifests: []v1.Manifest{{Name: "local-path-config", Content: `apiVersion: v1
kind: ConfigMap
metadata:
  name: local-path-config
  namespace: local-path-storage
data:
  config.json: '{"nodePathMap":[{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":["/opt/local-path-provisioner"]}]}'
`}},
		},
		{
			Name: "metrics-server", Layer: v1.LayerAddon, Type: v1.PackHelm, Pack: "metrics-server", Registry: "builtin",
			Version: "3.12.1",
			Values:  "args:\n  - --kubelet-insecure-tls\nreplicas: 2\n",
			Manifests: []v1.Manifest{{Name: "site-info", Content: `apiVersion: v1
kind: ConfigMap
metadata:
  name: site-info
  namespace: kube-system
data:
  site: "de-042"
`}},
			Chart: metrics.Spec.Versions[1].Chart,
		},
	}
	for i, w := range want {
		got := r.Layers[i]
		if !reHash.MatchString(got.Hash) {
			t.Errorf("layer %s: hash %q", got.Name, got.Hash)
		}
		if h, _ := hashJSON(withoutHash(got)); h != got.Hash {
			t.Errorf("layer %s: hash %s is not the sha256 of its JSON (%s)", got.Name, got.Hash, h)
		}
		got.Hash = ""
		checkLayer(t, got, w)
	}
	if h, _ := hashJSON(r.Layers); h != r.Hash {
		t.Errorf("profile hash %s is not the sha256 of its layers (%s)", r.Hash, h)
	}
	if r.Layers[2].Chart == calico.Spec.Versions[1].Chart {
		t.Error("the rendered chart is the catalog's pointer; a change to one would change the other")
	}
}

func withoutHash(l v1.RenderedLayer) v1.RenderedLayer {
	l.Hash = ""
	return l
}

// checkLayer compares field by field, so a failure says which field.
func checkLayer(t *testing.T, got, want v1.RenderedLayer) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("layer %s: %s =\n%#v\nwant\n%#v", want.Name, g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	first := renderFull(t, fullProfile(t), testPacks(), storeVars)
	firstJSON, _ := json.Marshal(first)
	for range 20 {
		again, _ := json.Marshal(renderFull(t, fullProfile(t), testPacks(), storeVars))
		if string(again) != string(firstJSON) {
			t.Fatalf("two renders differ:\n%s\n%s", firstJSON, again)
		}
	}

	// The same profile written another way renders the same.
	p := fullProfile(t)
	layer(p, "metrics-server").Values = "# two replicas\n{replicas: 2}"
	layer(p, "calico").Values = "installation: {calicoNetwork: {ipPools: [{encapsulation: VXLAN, cidr: '{{ .Vars.podCIDR }}'}]}}"
	if r := renderFull(t, p, testPacks(), storeVars); r.Hash != first.Hash {
		t.Errorf("an equal profile written differently has hash %s, want %s", r.Hash, first.Hash)
	}

	// The hash is of the layers: a new version of an unchanged stack asks
	// hosts to do nothing.
	p = fullProfile(t)
	p.Spec.Version = "1.0.1"
	p.Spec.Description = "same stack"
	if r := renderFull(t, p, testPacks(), storeVars); r.Hash != first.Hash {
		t.Errorf("a version bump changed the hash")
	}
}

func TestRenderHashFollowsContent(t *testing.T) {
	base := renderFull(t, fullProfile(t), testPacks(), storeVars)

	other := renderFull(t, fullProfile(t), testPacks(), map[string]string{"siteCode": "de-042", "podCIDR": "10.50.0.0/16"})
	if other.Hash == base.Hash {
		t.Error("a different variable gave the same profile hash")
	}
	changed := map[string]bool{}
	for i := range base.Layers {
		changed[base.Layers[i].Name] = base.Layers[i].Hash != other.Layers[i].Hash
	}
	if want := map[string]bool{"ubuntu": false, "k3s": true, "calico": true, "local-path": false, "metrics-server": false}; !reflect.DeepEqual(changed, want) {
		t.Errorf("layers whose hash changed: %v, want %v", changed, want)
	}

	// A train moves when the registry gains a version.
	packs := testPacks()
	k3s, _ := packs.Pack("builtin", "k3s")
	k3s.Spec.Versions = append(k3s.Spec.Versions, k3sVersion("1.30.6+k3s1", "1.30.6", false))
	moved := renderFull(t, fullProfile(t), packs, storeVars)
	if moved.Layers[1].Version != "1.30.6+k3s1" || moved.Layers[1].KubernetesVersion != "1.30.6" || moved.Layers[1].Train != "1.30.x" {
		t.Errorf("k3s after the train moved: %s (%s) on %s", moved.Layers[1].Version, moved.Layers[1].KubernetesVersion, moved.Layers[1].Train)
	}
	if moved.Hash == base.Hash || moved.Layers[1].Hash == base.Layers[1].Hash || moved.Layers[0].Hash != base.Layers[0].Hash {
		t.Error("the hashes do not follow the train")
	}
}

func TestRenderExternalCNIPreset(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(p *v1.ClusterProfile)
		want    string // the k3s layer's values
		wantErr string
	}{
		{
			name:   "switched on by the CNI layer",
			mutate: func(p *v1.ClusterProfile) { layer(p, "k3s").Presets = nil; layer(p, "k3s").Values = "" },
			want:   "cluster:\n  config:\n    cluster-cidr: 10.42.0.0/16\n    disable:\n      - metrics-server\n    disable-network-policy: true\n    flannel-backend: none\n    service-cidr: 10.43.0.0/16\n    write-kubeconfig-mode: \"0644\"\n",
		},
		{
			name: "chosen as well is not twice",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "k3s").Presets = []string{PresetExternalCNI}
				layer(p, "k3s").Values = ""
			},
			want: "cluster:\n  config:\n    cluster-cidr: 10.42.0.0/16\n    disable:\n      - metrics-server\n    disable-network-policy: true\n    flannel-backend: none\n    service-cidr: 10.43.0.0/16\n    write-kubeconfig-mode: \"0644\"\n",
		},
		{
			name: "a chosen preset of its group wins",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "k3s").Presets = []string{"flannel-wireguard"}
				layer(p, "k3s").Values = ""
			},
			want: "cluster:\n  config:\n    cluster-cidr: 10.42.0.0/16\n    flannel-backend: wireguard-native\n    service-cidr: 10.43.0.0/16\n    write-kubeconfig-mode: \"0644\"\n",
		},
		{
			name: "the layer's values win over it",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "k3s").Presets = nil
				layer(p, "k3s").Values = "cluster:\n  config:\n    disable: [traefik]\n    disable-network-policy: null\n"
			},
			want: "cluster:\n  config:\n    cluster-cidr: 10.42.0.0/16\n    disable:\n      - traefik\n    flannel-backend: none\n    service-cidr: 10.43.0.0/16\n    write-kubeconfig-mode: \"0644\"\n",
		},
		{
			name: "a distro without the preset",
			mutate: func(p *v1.ClusterProfile) {
				*layer(p, "k3s") = v1.ProfileLayer{Pack: "rke2", Version: "1.30.x"}
			},
			want: "cni: none\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fullProfile(t)
			tt.mutate(p)
			r := renderFull(t, p, testPacks(), map[string]string{"siteCode": "de-042"})
			if got := r.Layers[1].Values; got != tt.want {
				t.Errorf("k3s values:\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestPresetsForWithoutCNI(t *testing.T) {
	pv := k3sVersion("1.30.4+k3s1", "1.30.4", false)
	lp := &layerPlan{kind: v1.LayerK8s, version: &pv, layer: v1.ProfileLayer{Presets: []string{"secrets-encryption"}}}
	if got := (&plan{hasCNI: false}).presetsFor(lp); !slices.Equal(got, []string{"secrets-encryption"}) {
		t.Errorf("without a CNI layer: %v", got)
	}
	if got := (&plan{hasCNI: true}).presetsFor(lp); !slices.Equal(got, []string{PresetExternalCNI, "secrets-encryption"}) {
		t.Errorf("with a CNI layer: %v", got)
	}
}

func TestRenderErrors(t *testing.T) {
	t.Run("invalid profile", func(t *testing.T) {
		p := fullProfile(t)
		layer(p, "calico").Version = "3.99.x"
		_, err := Render(p, testPacks(), RenderOptions{Resolver: testResolve, Vars: storeVars})
		wantFieldError(t, err, "spec.layers[calico].version", "no version on train")
	})
	t.Run("required variable", func(t *testing.T) {
		_, err := Render(fullProfile(t), testPacks(), RenderOptions{Resolver: testResolve})
		wantFieldError(t, err, "variables.siteCode", "is required")
	})
	t.Run("unknown variable", func(t *testing.T) {
		_, err := Render(fullProfile(t), testPacks(), RenderOptions{Resolver: testResolve, Vars: map[string]string{"siteCode": "de-042", "site": "x"}})
		wantFieldError(t, err, "variables.site", "declares no such variable")
	})
	t.Run("a value that breaks the YAML", func(t *testing.T) {
		p := fullProfile(t)
		p.Spec.Variables = append(p.Spec.Variables, v1.ProfileVariable{Name: "label", Type: v1.VarString})
		layer(p, "metrics-server").Values = "podLabels:\n  site: {{ .Vars.label }}\n"
		_, err := Render(p, testPacks(), RenderOptions{Resolver: testResolve, Vars: map[string]string{"siteCode": "de-042", "label": "a: b"}})
		wantFieldError(t, err, "spec.layers[metrics-server].values", "after rendering the template")

		// quote keeps any string a string.
		layer(p, "metrics-server").Values = "podLabels:\n  site: {{ quote .Vars.label }}\n"
		r := renderFull(t, p, testPacks(), map[string]string{"siteCode": "de-042", "label": "a: b\n\"c\""})
		if got := r.Layers[4].Values; !strings.Contains(got, "  site: |-\n    a: b\n    \"c\"\n") {
			t.Errorf("values = %s", got)
		}
	})
	t.Run("numbers from variables", func(t *testing.T) {
		p := fullProfile(t)
		p.Spec.Variables = append(p.Spec.Variables, v1.ProfileVariable{Name: "replicas", Type: v1.VarNumber, Default: "3"})
		layer(p, "metrics-server").Values = "replicas: {{ .Vars.replicas }}\n"
		r := renderFull(t, p, testPacks(), map[string]string{"siteCode": "de-042"})
		if got := r.Layers[4].Values; !strings.Contains(got, "replicas: 3\n") {
			t.Errorf("values = %s", got)
		}
	})
}

func TestRenderRawManifestLayer(t *testing.T) {
	p := fullProfile(t)
	raw := rawLayer("store-apps")
	raw.Manifests[0].Content += "  labels:\n    site: {{ .Vars.siteCode }}\n"
	p.Spec.Layers = append(p.Spec.Layers, raw)
	r := renderFull(t, p, testPacks(), storeVars)
	got := r.Layers[5]
	if got.Name != "store-apps" || got.Layer != v1.LayerAddon || got.Type != v1.PackManifest || got.Pack != "" || got.Version != "" || got.Values != "" {
		t.Errorf("raw layer = %+v", got)
	}
	if len(got.Manifests) != 1 || !strings.HasSuffix(got.Manifests[0].Content, "    site: de-042\n") {
		t.Errorf("raw layer manifests = %+v", got.Manifests)
	}
}

func TestRenderDoesNotTemplatePackValues(t *testing.T) {
	// Charts that run tpl on their values carry {{ .Release.Name }}; only
	// what the profile author wrote is a template.
	packs := testPacks()
	ms, _ := packs.Pack("builtin", "metrics-server")
	ms.Spec.Versions[1].Values = "fullnameOverride: '{{ .Release.Name }}-metrics'\n"
	r := renderFull(t, fullProfile(t), packs, storeVars)
	if got := r.Layers[4].Values; !strings.Contains(got, "fullnameOverride: '{{ .Release.Name }}-metrics'") {
		t.Errorf("values = %s", got)
	}
}

// TestDocsExample keeps the example in docs/profiles.md valid.
func TestRenderLiteralBraces(t *testing.T) {
	p := fullProfile(t)
	layer(p, "metrics-server").Manifests[0].Content += "  summary: '{{`{{ $value }}`}} requests'\n"
	r := renderFull(t, p, testPacks(), storeVars)
	if got := r.Layers[4].Manifests[0].Content; !strings.Contains(got, "summary: '{{ $value }} requests'") {
		t.Errorf("manifest = %s", got)
	}
}
