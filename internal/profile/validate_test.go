package profile

import (
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

var testOpts = ValidateOptions{Resolver: testResolve}

func TestValidateFullProfile(t *testing.T) {
	p := fullProfile(t)
	before := DeepCopy(p)
	if err := Validate(p, testPacks(), testOpts); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !sameJSON(p, before) {
		t.Error("Validate changed its input")
	}
}

// layer finds a layer by name or pack, for the mutations below.
func layer(p *v1.ClusterProfile, name string) *v1.ProfileLayer {
	for i := range p.Spec.Layers {
		if l := &p.Spec.Layers[i]; l.Name == name || l.Name == "" && l.Pack == name {
			return l
		}
	}
	panic("no layer " + name)
}

func addonProfile() *v1.ClusterProfile {
	return &v1.ClusterProfile{
		Metadata: v1.ObjectMeta{Name: "observability"},
		Spec: v1.ClusterProfileSpec{
			Type: v1.ProfileAddon, Version: "0.1.0",
			Layers: []v1.ProfileLayer{{Pack: "metrics-server", Registry: "builtin", Version: "3.12.1"}},
		},
	}
}

func rawLayer(name string) v1.ProfileLayer {
	return v1.ProfileLayer{Name: name, Manifests: []v1.Manifest{{Name: "ns", Content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"}}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		addon  bool // start from addonProfile instead of the full profile
		mutate func(p *v1.ClusterProfile)
		field  string // "" means the profile is valid
		msg    string
	}{
		// Metadata.
		{name: "name required", mutate: func(p *v1.ClusterProfile) { p.Metadata.Name = "" }, field: "metadata.name", msg: "is required"},
		{name: "name is a DNS label", mutate: func(p *v1.ClusterProfile) { p.Metadata.Name = "Store_Edge" }, field: "metadata.name", msg: "not a DNS label"},
		{name: "version required", mutate: func(p *v1.ClusterProfile) { p.Spec.Version = "" }, field: "spec.version", msg: "is required"},
		{name: "version is semver", mutate: func(p *v1.ClusterProfile) { p.Spec.Version = "1.0" }, field: "spec.version", msg: `"1.0" is not a semantic version`},
		{name: "type required", mutate: func(p *v1.ClusterProfile) { p.Spec.Type = "" }, field: "spec.type", msg: "is required"},
		{name: "type known", mutate: func(p *v1.ClusterProfile) { p.Spec.Type = "edge" }, field: "spec.type", msg: `"edge" is not infra, addon or full`},
		{name: "kind", mutate: func(p *v1.ClusterProfile) { p.Kind = "Pack" }, field: "kind", msg: "must be ClusterProfile"},
		{name: "no layers", mutate: func(p *v1.ClusterProfile) { p.Spec.Layers = nil }, field: "spec.layers", msg: "at least one layer"},

		// Layer names.
		{
			name: "layer names are unique",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "metrics-server", Registry: "builtin", Version: "3.12.1"})
			},
			field: "spec.layers[metrics-server].name", msg: `layer name "metrics-server" is used twice`,
		},
		{
			name: "a second copy of a pack under another name is fine",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Name: "metrics-server-2", Pack: "metrics-server", Registry: "builtin", Version: "3.12.1"})
			},
		},
		{name: "layer name format", mutate: func(p *v1.ClusterProfile) { layer(p, "ubuntu").Name = "My OS" }, field: "spec.layers[My OS].name", msg: "not a valid layer name"},

		// Layer order and profile types.
		{name: "full needs csi", mutate: func(p *v1.ClusterProfile) { p.Spec.Layers = slices.Delete(p.Spec.Layers, 3, 4) }, field: "spec.layers", msg: "a full profile needs a csi layer"},
		{name: "full needs os", mutate: func(p *v1.ClusterProfile) { p.Spec.Layers = p.Spec.Layers[1:] }, field: "spec.layers", msg: "a full profile needs a os layer"},
		{
			name:   "core layers in order",
			mutate: func(p *v1.ClusterProfile) { p.Spec.Layers[0], p.Spec.Layers[1] = p.Spec.Layers[1], p.Spec.Layers[0] },
			field:  "spec.layers[k3s]", msg: "the k8s layer must be layer 2",
		},
		{
			name: "core layers before addons",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers[3], p.Spec.Layers[4] = p.Spec.Layers[4], p.Spec.Layers[3]
			},
			field: "spec.layers[local-path]", msg: "the csi layer must be layer 4",
		},
		{
			name: "raw manifest layers are addons",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = slices.Insert(p.Spec.Layers, 2, rawLayer("early"))
			},
			field: "spec.layers[calico]", msg: "the cni layer must be layer 3",
		},
		{
			name: "one k8s layer",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = slices.Insert(p.Spec.Layers, 2, v1.ProfileLayer{Pack: "rke2", Version: "1.30.4+rke2r1"})
			},
			field: "spec.layers[rke2]", msg: "a second k8s layer (the first is k3s)",
		},
		{
			name:   "infra has no addon layers",
			mutate: func(p *v1.ClusterProfile) { p.Spec.Type = v1.ProfileInfra },
			field:  "spec.layers[metrics-server]", msg: "an infra profile has only os, k8s, cni and csi layers",
		},
		{
			name: "infra has no raw manifest layers",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Type = v1.ProfileInfra
				p.Spec.Layers = append(p.Spec.Layers[:4], rawLayer("extras"))
			},
			field: "spec.layers[extras]", msg: "an infra profile has only",
		},
		{
			name: "infra may attach manifests to its core layers",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Type = v1.ProfileInfra
				p.Spec.Layers = p.Spec.Layers[:4]
				layer(p, "calico").Manifests = rawLayer("calico-system").Manifests
			},
		},
		{name: "addon profile is fine", addon: true},
		{
			name:  "addon profile has no core layers",
			addon: true,
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "calico", Version: "3.28.1"})
			},
			field: "spec.layers[calico].pack", msg: "an addon profile cannot have a cni layer",
		},
		{
			name:  "an addon profile may require a core pack",
			addon: true,
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "calico-policies", Version: "1.0.0"})
			},
		},

		// Packs and versions.
		{
			name: "pack exists",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "nope", Version: "1.0.0"})
			},
			field: "spec.layers[nope].pack", msg: "pack nope: not found",
		},
		{
			name:   "pack lookup is not ambiguous",
			mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Registry = "" },
			field:  "spec.layers[metrics-server].pack", msg: "ambiguous",
		},
		{
			name:   "pack in the named registry",
			mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Registry = "bitnami" },
			field:  "spec.layers[calico].pack", msg: "pack bitnami/calico: not found",
		},
		{name: "version required", mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Version = "" }, field: "spec.layers[calico].version", msg: "is required"},
		{name: "version resolves", mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Version = "3.99.x" }, field: "spec.layers[calico].version", msg: "pack calico: no version on train 3.99.x"},
		{name: "a pin may name a deprecated version", mutate: func(p *v1.ClusterProfile) { layer(p, "k3s").Version = "1.30.5+k3s1" }},
		{name: "presets exist", mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Presets = []string{"ebpf"} }, field: "spec.layers[calico].presets", msg: `preset "ebpf": the pack has no such preset`},
		{
			name:   "presets do not clash",
			mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Presets = []string{"bgp", "vxlan"} },
			field:  "spec.layers[calico].presets", msg: `presets "bgp" and "vxlan" are both in group "encapsulation"`,
		},
		{name: "values parse", mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Values = "replicas: [" }, field: "spec.layers[metrics-server].values", msg: "did not find expected node content"},
		{name: "values are a mapping", mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Values = "- 1" }, field: "spec.layers[metrics-server].values", msg: "must be a mapping"},
		{name: "values template parses", mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Values = "a: {{ .Vars.podCIDR " }, field: "spec.layers[metrics-server].values", msg: "unclosed action"},
		{
			name:   "values parse after rendering",
			mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Values = "a: {{ .Vars.podCIDR }}: x" },
			field:  "spec.layers[metrics-server].values", msg: "after rendering the template",
		},
		{name: "raw layer needs manifests", mutate: func(p *v1.ClusterProfile) { p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Name: "empty"}) }, field: "spec.layers[empty]", msg: "needs a pack or manifests"},
		{name: "raw layer needs a name", mutate: func(p *v1.ClusterProfile) { p.Spec.Layers = append(p.Spec.Layers, rawLayer("")) }, field: "spec.layers[5].name", msg: "is required"},
		{
			name: "raw layer has no version",
			mutate: func(p *v1.ClusterProfile) {
				l := rawLayer("extras")
				l.Version = "1.0.0"
				p.Spec.Layers = append(p.Spec.Layers, l)
			},
			field: "spec.layers[extras].version", msg: "is only for a pack layer",
		},

		// Constraints.
		{
			name:   "kubernetes range",
			mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Version = "3.27.3" },
			field:  "spec.layers[calico].version", msg: "calico 3.27.3 supports Kubernetes >=1.27.0 <1.30.0, but the k8s layer k3s is Kubernetes 1.30.4",
		},
		{
			name: "kubernetes range of a k8s pack without kubernetesVersion",
			mutate: func(p *v1.ClusterProfile) {
				*layer(p, "k3s") = v1.ProfileLayer{Pack: "kubeadm", Version: "1.30.4"}
				layer(p, "calico").Version = "3.27.3"
			},
			field: "spec.layers[calico].version", msg: "the k8s layer kubeadm is Kubernetes 1.30.4",
		},
		{
			name:   "distros",
			mutate: func(p *v1.ClusterProfile) { *layer(p, "calico") = v1.ProfileLayer{Pack: "cilium", Version: "1.16.1"} },
			field:  "spec.layers[cilium].version", msg: "cilium 1.16.1 works with the k8s packs rke2, kubeadm only, not k3s",
		},
		{
			name: "distros listed",
			mutate: func(p *v1.ClusterProfile) {
				*layer(p, "calico") = v1.ProfileLayer{Pack: "cilium", Version: "1.16.1"}
				*layer(p, "k3s") = v1.ProfileLayer{Pack: "rke2", Version: "1.30.x"}
			},
		},
		{
			name: "requires",
			mutate: func(p *v1.ClusterProfile) {
				*layer(p, "metrics-server") = v1.ProfileLayer{Pack: "keda", Version: "2.15.1"}
			},
			field: "spec.layers[keda].version", msg: "keda 2.15.1 needs builtin/metrics-server >=3.0.0 in the profile",
		},
		{
			name: "requires a version range",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "metrics-server").Version = "2.11.0"
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "keda", Version: "2.15.1"})
			},
			field: "spec.layers[keda].version", msg: "keda 2.15.1 needs builtin/metrics-server >=3.0.0, but the profile has 2.11.0",
		},
		{
			name: "requires met",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "keda", Version: "2.15.1"})
			},
		},
		{
			name:   "an addon profile needs its addon requirements",
			addon:  true,
			mutate: func(p *v1.ClusterProfile) { p.Spec.Layers[0] = v1.ProfileLayer{Pack: "keda", Version: "2.15.1"} },
			field:  "spec.layers[keda].version", msg: "needs builtin/metrics-server",
		},
		{
			name: "forbids",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "prometheus-adapter", Version: "4.11.0"})
			},
			field: "spec.layers[prometheus-adapter].version", msg: "prometheus-adapter 4.11.0 cannot be combined with metrics-server 3.12.1 (layer metrics-server)",
		},

		{
			name: "forbids within a range",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "vpa", Version: "9.9.0"})
			},
		},
		{
			name: "forbids within a range, hit",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "metrics-server").Version = "2.11.0"
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "vpa", Version: "9.9.0"})
			},
			field: "spec.layers[vpa].version", msg: "vpa 9.9.0 cannot be combined with metrics-server 2.11.0",
		},
		{
			name: "a malformed constraint is the pack's error, named",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Layers = append(p.Spec.Layers, v1.ProfileLayer{Pack: "broken", Version: "0.1.0"})
			},
			field: "spec.layers[broken].version", msg: `broken 0.1.0: kubernetes constraint: bad version range "newest please"`,
		},

		// Variables.
		{
			name: "placeholders of every type render",
			mutate: func(p *v1.ClusterProfile) {
				p.Spec.Variables = append(p.Spec.Variables,
					v1.ProfileVariable{Name: "replicas", Type: v1.VarNumber},
					v1.ProfileVariable{Name: "debug", Type: v1.VarBool},
					v1.ProfileVariable{Name: "vip", Type: v1.VarIPv4},
					v1.ProfileVariable{Name: "svcCIDR", Type: v1.VarCIDR},
					v1.ProfileVariable{Name: "kube", Type: v1.VarVersion})
				layer(p, "metrics-server").Values = "replicas: {{ .Vars.replicas }}\ndebug: {{ .Vars.debug }}\nvip: {{ .Vars.vip }}\ncidr: {{ .Vars.svcCIDR }}\nkube: {{ .Vars.kube }}\n"
			},
		},
		{name: "variable name", mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[0].Name = "pod-cidr" }, field: "spec.variables[pod-cidr].name", msg: "not an identifier"},
		{name: "variable name required", mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[0].Name = "" }, field: "spec.variables[0].name", msg: "is required"},
		{name: "variable names unique", mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[1].Name = "podCIDR" }, field: "spec.variables[podCIDR].name", msg: "declared twice"},
		{name: "variable type", mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[0].Type = "net" }, field: "spec.variables[podCIDR].type", msg: `"net" is not one of string, number, bool, ipv4, cidr, version`},
		{name: "variable default fits the type", mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[0].Default = "10.42.0.0" }, field: "spec.variables[podCIDR].default", msg: "is not a CIDR"},
		{name: "variable regex compiles", mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[1].Regex = "[a-z" }, field: "spec.variables[siteCode].regex", msg: "does not compile"},
		{
			name:   "variable default matches the regex",
			mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[1].Default = "berlin" },
			field:  "spec.variables[siteCode].default", msg: `"berlin" does not match [a-z]{2}-[0-9]{3}`,
		},
		{
			name: "variables in values are declared",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "k3s").Values = "cluster:\n  config:\n    node-ip: {{ .Vars.nodeIP }}\n"
			},
			field: "spec.layers[k3s].values", msg: "uses undeclared variable nodeIP",
		},
		{
			name: "variables in manifests are declared, even in $ and if",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "metrics-server").Manifests[0].Content += "{{ if .Vars.debug }}{{ $.Vars.level }}{{ end }}\n"
			},
			field: "spec.layers[metrics-server].manifests[site-info].content", msg: "uses undeclared variable debug, level",
		},

		// Manifests.
		{
			name:   "manifest names required",
			mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Manifests[0].Name = "" },
			field:  "spec.layers[metrics-server].manifests[0].name", msg: "is required",
		},
		{
			name: "manifest names unique",
			mutate: func(p *v1.ClusterProfile) {
				l := layer(p, "metrics-server")
				l.Manifests = append(l.Manifests, l.Manifests[0])
			},
			field: "spec.layers[metrics-server].manifests[site-info].name", msg: `manifest name "site-info" is used twice`,
		},
		{
			name: "attached manifest names differ from the pack's",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "local-path").Manifests = []v1.Manifest{{Name: "local-path-config", Content: "kind: A\napiVersion: v1\nmetadata: {name: a}\n"}}
			},
			field: "spec.layers[local-path].manifests[local-path-config].name", msg: "used twice in the layer (or by the pack)",
		},
		{
			name: "manifests are Kubernetes objects",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "metrics-server").Manifests[0].Content = "apiVersion: v1\nmetadata:\n  name: x\n"
			},
			field: "spec.layers[metrics-server].manifests[site-info].content", msg: "document 1 (line 1) has no kind",
		},
		{
			name: "every document of a stream is checked",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "metrics-server").Manifests[0].Content = "---\napiVersion: v1\nkind: A\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: B\nmetadata: {}\n"
			},
			field: "spec.layers[metrics-server].manifests[site-info].content", msg: "document 3 (line 7) has no metadata.name",
		},
		{
			name:   "manifests parse",
			mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Manifests[0].Content = "kind: [" },
			field:  "spec.layers[metrics-server].manifests[site-info].content", msg: "document 1: yaml: line 1",
		},
		{
			name:   "manifests are not empty",
			mutate: func(p *v1.ClusterProfile) { layer(p, "metrics-server").Manifests[0].Content = "---\n# nothing\n" },
			field:  "spec.layers[metrics-server].manifests[site-info].content", msg: "has no Kubernetes objects",
		},
		{
			name: "manifests see the layer's values",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "metrics-server").Manifests[0].Content += "  replicas: \"{{ .Values.replicas }}\"\n"
			},
		},
		{
			name: "manifests see only values that exist",
			mutate: func(p *v1.ClusterProfile) {
				layer(p, "metrics-server").Manifests[0].Content += "  x: {{ .Values.nope }}\n"
			},
			field: "spec.layers[metrics-server].manifests[site-info].content", msg: `map has no entry for key "nope"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *v1.ClusterProfile
			if tt.addon {
				p = addonProfile()
			} else {
				p = fullProfile(t)
			}
			if tt.mutate != nil {
				tt.mutate(p)
			}
			err := Validate(p, testPacks(), testOpts)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantFieldError(t, err, tt.field, tt.msg)
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	p := fullProfile(t)
	p.Metadata.Name = ""
	layer(p, "calico").Version = "9.x"
	layer(p, "metrics-server").Presets = []string{"nope"}
	p.Spec.Variables[0].Type = "ip"
	err := Validate(p, testPacks(), testOpts)
	var fl errs.FieldList
	if !errors.As(err, &fl) || !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("err = %v, want an errs.FieldList", err)
	}
	var fields []string
	for _, fe := range fl {
		fields = append(fields, fe.Field)
	}
	for _, want := range []string{"metadata.name", "spec.layers[calico].version", "spec.layers[metrics-server].presets", "spec.variables[podCIDR].type"} {
		if !slices.Contains(fields, want) {
			t.Errorf("no error for %s in %v", want, err)
		}
	}
}

func TestValidateUnknownPackDoesNotCascade(t *testing.T) {
	p := fullProfile(t)
	layer(p, "calico").Pack = "flannel"
	err := Validate(p, testPacks(), testOpts)
	wantFieldError(t, err, "spec.layers[flannel].pack", "not found")
	if strings.Contains(err.Error(), "needs a cni layer") {
		t.Errorf("a missing pack is reported twice: %v", err)
	}
}

func TestValidateWithoutResolver(t *testing.T) {
	p := fullProfile(t)
	layer(p, "k3s").Version = "1.30.4+k3s1"
	if err := Validate(p, testPacks(), ValidateOptions{}); err != nil {
		t.Fatalf("exact versions need no resolver: %v", err)
	}
	layer(p, "k3s").Version = "1.30.x"
	wantFieldError(t, Validate(p, testPacks(), ValidateOptions{}), "spec.layers[k3s].version", `pack k3s has no version "1.30.x"`)
}

func TestValidateResolverChoosesUnknownVersion(t *testing.T) {
	bad := func([]string, string) (string, error) { return "9.9.9", nil }
	err := Validate(fullProfile(t), testPacks(), ValidateOptions{Resolver: bad})
	wantFieldError(t, err, "spec.layers[calico].version", `the resolver chose "9.9.9", which the pack does not offer`)
}

func TestIsTrain(t *testing.T) {
	for want, train := range map[string]bool{
		"1.x": true, "1.30.x": true, "1.30.X": true, "1.*": true, "^1.2": true, "~1.30.0": true, ">=1.29 <1.31": true,
		"1.30": true, "latest": true, "x": true,
		"1.30.4": false, "v1.30.4": false, "1.30.4+k3s1": false, "1.31.0-rc.1+k3s1": false, "22.04.4": false, "": false,
	} {
		if got := isTrain(want); got != train {
			t.Errorf("isTrain(%q) = %v", want, got)
		}
	}
}
