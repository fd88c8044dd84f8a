package catalog

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

const sum = "3a8e8b1f0c7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f"

func validDistro() *v1.PackSpec {
	return &v1.PackSpec{
		Name: "k3s", Registry: "builtin", Layer: v1.LayerK8s, Type: v1.PackDistro,
		Versions: []v1.PackVersion{
			{
				Version: "1.30.4+k3s1", KubernetesVersion: "1.30.4",
				Values: "config:\n  cluster-cidr: 10.42.0.0/16\n",
				Presets: []v1.Preset{
					{Name: "external-cni", Group: "cni", Add: "configDropIns:\n  external-cni:\n    flannel-backend: none\n"},
					{Name: "no-secrets-encryption", Remove: []string{"config.secrets-encryption", `config."a.b"`}},
				},
				Artifacts: []v1.Artifact{
					{Name: "k3s", Arch: "amd64", URL: "https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s", ChecksumURL: "https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/sha256sum-amd64.txt"},
					{Name: "k3s", Arch: "arm64", URL: "https://example.com/k3s-arm64", SHA256: sum},
				},
			},
			{
				Version: "1.30.4+k3s2", KubernetesVersion: "1.30.4",
				Artifacts: []v1.Artifact{{Name: "k3s", Arch: "amd64", URL: "https://example.com/k3s", SHA256: strings.ToUpper(sum)}},
			},
		},
	}
}

func validHelm() *v1.PackSpec {
	return &v1.PackSpec{
		Name: "calico", Registry: "builtin", Layer: v1.LayerCNI, Type: v1.PackHelm,
		Versions: []v1.PackVersion{{
			Version:     "3.28.2",
			Chart:       &v1.ChartRef{Repository: "https://docs.tigera.io/calico/charts", Name: "tigera-operator", Version: "v3.28.2", Digest: sum},
			Constraints: &v1.Constraints{Kubernetes: ">=1.27.0 <1.31.0", Distros: []string{"k3s"}, Requires: []v1.PackDependency{{Pack: "builtin/k3s", Versions: "1.x"}}, Forbids: []v1.PackDependency{{Pack: "flannel"}}},
			Artifacts:   []v1.Artifact{{Name: "tigera-operator-v3.28.2.tgz", URL: "https://example.com/x.tgz", SHA256: sum}},
		}},
	}
}

func validManifest() *v1.PackSpec {
	return &v1.PackSpec{
		Name: "local-path", Registry: "builtin", Layer: v1.LayerCSI, Type: v1.PackManifest,
		Versions: []v1.PackVersion{{
			Version:   "0.0.30",
			Values:    "storagePath: /opt/local-path-provisioner\n",
			Manifests: []v1.Manifest{{Name: "provisioner", Content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Values.ns }}\n"}},
		}},
	}
}

func TestValidatePackValid(t *testing.T) {
	for _, p := range []*v1.PackSpec{validDistro(), validHelm(), validManifest(),
		{Name: "ubuntu", Registry: "builtin", Layer: v1.LayerOS, Type: v1.PackDistro, Versions: []v1.PackVersion{{Version: "24.04.2", Values: "packages: [curl]\n"}}},
		{Name: "oci-chart", Registry: "acme", Layer: v1.LayerAddon, Type: v1.PackHelm, Versions: []v1.PackVersion{{Version: "v1.2.3", Chart: &v1.ChartRef{Repository: "oci://ghcr.io/acme/charts", Name: "x", Version: "1.2.3"}, Values: "~\n"}}},
	} {
		if err := ValidatePack(p); err != nil {
			t.Errorf("ValidatePack(%s): %v", p.Name, err)
		}
	}
}

func TestValidatePackInvalid(t *testing.T) {
	tests := []struct {
		name   string
		pack   func() *v1.PackSpec
		change func(p *v1.PackSpec)
		field  string
		msg    string
	}{
		{"no name", validHelm, func(p *v1.PackSpec) { p.Name = "" }, "name", "is required"},
		{"slash in name", validHelm, func(p *v1.PackSpec) { p.Name = "a/b" }, "name", `"a/b" must be letters`},
		{"bad registry", validHelm, func(p *v1.PackSpec) { p.Registry = "Acme Corp" }, "registry", "not a DNS label"},
		{"no registry", validHelm, func(p *v1.PackSpec) { p.Registry = "" }, "registry", "is required"},
		{"unknown layer", validHelm, func(p *v1.PackSpec) { p.Layer = "network" }, "layer", `"network" is not a layer`},
		{"unknown type", validHelm, func(p *v1.PackSpec) { p.Type = "kustomize" }, "type", `"kustomize" is not a pack type`},
		{"helm os", validHelm, func(p *v1.PackSpec) { p.Layer = v1.LayerOS }, "type", "a os pack cannot be of type helm (only distro)"},
		{"distro cni", validDistro, func(p *v1.PackSpec) { p.Layer = v1.LayerCNI }, "type", "only helm or manifest"},
		{"no versions", validHelm, func(p *v1.PackSpec) { p.Versions = nil }, "versions", "at least one"},
		{"no version", validHelm, func(p *v1.PackSpec) { p.Versions[0].Version = "" }, "versions[0].version", "is required"},
		{"not semver", validHelm, func(p *v1.PackSpec) { p.Versions[0].Version = "latest" }, "versions[0].version", "not MAJOR.MINOR.PATCH"},
		{"two numbers", validHelm, func(p *v1.PackSpec) { p.Versions[0].Version = "3.28" }, "versions[0].version", "not MAJOR.MINOR.PATCH"},
		{"bad prerelease", validHelm, func(p *v1.PackSpec) { p.Versions[0].Version = "3.28.2-01" }, "versions[0].version", "not a semantic version"},
		{"duplicate version", validDistro, func(p *v1.PackSpec) { p.Versions[1].Version = "v1.30.4+k3s1" }, "versions[1].version", "same version as versions[0] (1.30.4+k3s1)"},
		{"values a list", validHelm, func(p *v1.PackSpec) { p.Versions[0].Values = "- a\n- b\n" }, "versions[0].values", "not a list"},
		{"values a scalar", validHelm, func(p *v1.PackSpec) { p.Versions[0].Values = "hello" }, "versions[0].values", "not a scalar"},
		{"values not YAML", validHelm, func(p *v1.PackSpec) { p.Versions[0].Values = "a: [1, 2\n" }, "versions[0].values", "not YAML"},
		{"values two documents", validHelm, func(p *v1.PackSpec) { p.Versions[0].Values = "a: 1\n---\nb: 2\n" }, "versions[0].values", "single YAML document"},
		{"preset without name", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[0].Name = "" }, "versions[0].presets[0].name", "is required"},
		{"preset bad name", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[0].Name = "External CNI" }, "versions[0].presets[0].name", "lower-case"},
		{"preset twice", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[1].Name = "external-cni" }, "versions[0].presets[1].name", "already presets[0]"},
		{"preset bad group", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[0].Group = "C N I" }, "versions[0].presets[0].group", "lower-case"},
		{"preset add not a map", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[0].Add = "- x\n" }, "versions[0].presets[0].add", "not a list"},
		{"preset empty", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[0].Add = "" }, "versions[0].presets[0]", "add or remove something"},
		{"preset remove empty key", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[1].Remove = []string{"config..x"} }, "versions[0].presets[1].remove[0]", "empty key"},
		{"preset remove trailing dot", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[1].Remove = []string{"config."} }, "versions[0].presets[1].remove[0]", "ends with a dot"},
		{"preset remove open quote", validDistro, func(p *v1.PackSpec) { p.Versions[0].Presets[1].Remove = []string{`config."a`} }, "versions[0].presets[1].remove[0]", "unterminated quote"},
		{"bad kubernetes range", validHelm, func(p *v1.PackSpec) { p.Versions[0].Constraints.Kubernetes = ">= one" }, "versions[0].constraints.kubernetes", "not a version range"},
		{"bad distro", validHelm, func(p *v1.PackSpec) { p.Versions[0].Constraints.Distros = []string{""} }, "versions[0].constraints.distros[0]", "not a pack name"},
		{"bad requires", validHelm, func(p *v1.PackSpec) { p.Versions[0].Constraints.Requires[0].Pack = "a/b/c" }, "versions[0].constraints.requires[0].pack", "not a pack name"},
		{"bad requires range", validHelm, func(p *v1.PackSpec) { p.Versions[0].Constraints.Requires[0].Versions = "newest" }, "versions[0].constraints.requires[0].versions", "not a version range"},
		{"bad forbids", validHelm, func(p *v1.PackSpec) { p.Versions[0].Constraints.Forbids[0].Pack = "" }, "versions[0].constraints.forbids[0].pack", "not a pack name"},
		{"artifact no url", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].URL = "" }, "versions[0].artifacts[1].url", "is required"},
		{"artifact relative url", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].URL = "k3s-arm64" }, "versions[0].artifacts[1].url", "absolute http or https URL"},
		{"artifact ftp url", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].URL = "ftp://example.com/k3s" }, "versions[0].artifacts[1].url", "absolute http or https URL"},
		{"artifact credentials", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].URL = "https://u:p@example.com/k3s" }, "versions[0].artifacts[1].url", "credentials"},
		{"artifact bad sha", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].SHA256 = "abc" }, "versions[0].artifacts[1].sha256", "64 hexadecimal"},
		{"artifact bad checksum url", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[0].ChecksumURL = "sha256sum.txt" }, "versions[0].artifacts[0].checksumURL", "absolute"},
		{"artifact unverified", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].SHA256 = "" }, "versions[0].artifacts[1]", "needs a sha256 or a checksumURL"},
		{"artifact bad arch", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].Arch = "aarch64" }, "versions[0].artifacts[1].arch", `"aarch64" is not an architecture`},
		{"artifact no name", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].Name = "" }, "versions[0].artifacts[1].name", "is required"},
		{"artifact twice", validDistro, func(p *v1.PackSpec) { p.Versions[0].Artifacts[1].Arch = "amd64" }, "versions[0].artifacts[1].name", `artifact "k3s" for arch "amd64" is already artifacts[0]`},
		{"k8s without artifacts", validDistro, func(p *v1.PackSpec) { p.Versions[1].Artifacts = nil }, "versions[1].artifacts", "needs artifacts"},
		{"k8s without amd64", validDistro, func(p *v1.PackSpec) { p.Versions[1].Artifacts[0].Arch = "arm64" }, "versions[1].artifacts", "no artifact for amd64"},
		{"k8s without kubernetesVersion", validDistro, func(p *v1.PackSpec) { p.Versions[0].KubernetesVersion = "" }, "versions[0].kubernetesVersion", "is required"},
		{"k8s bad kubernetesVersion", validDistro, func(p *v1.PackSpec) { p.Versions[0].KubernetesVersion = "1.30" }, "versions[0].kubernetesVersion", "MAJOR.MINOR.PATCH"},
		{"kubernetesVersion on a cni", validHelm, func(p *v1.PackSpec) { p.Versions[0].KubernetesVersion = "1.30.4" }, "versions[0].kubernetesVersion", "only k8s packs"},
		{"helm without chart", validHelm, func(p *v1.PackSpec) { p.Versions[0].Chart = nil }, "versions[0].chart", "needs a chart"},
		{"chart without repository", validHelm, func(p *v1.PackSpec) { p.Versions[0].Chart.Repository = "" }, "versions[0].chart.repository", "is required"},
		{"chart relative repository", validHelm, func(p *v1.PackSpec) { p.Versions[0].Chart.Repository = "charts" }, "versions[0].chart.repository", "absolute http or https or oci URL"},
		{"chart without name", validHelm, func(p *v1.PackSpec) { p.Versions[0].Chart.Name = "" }, "versions[0].chart.name", "is required"},
		{"chart without version", validHelm, func(p *v1.PackSpec) { p.Versions[0].Chart.Version = "" }, "versions[0].chart.version", "is required"},
		{"chart bad digest", validHelm, func(p *v1.PackSpec) { p.Versions[0].Chart.Digest = "sha256:abc" }, "versions[0].chart.digest", "64 hexadecimal"},
		{"chart on a manifest pack", validManifest, func(p *v1.PackSpec) {
			p.Versions[0].Chart = &v1.ChartRef{Repository: "https://x", Name: "x", Version: "1"}
		}, "versions[0].chart", "only helm packs"},
		{"manifests on a helm pack", validHelm, func(p *v1.PackSpec) { p.Versions[0].Manifests = []v1.Manifest{{Name: "x", Content: "y"}} }, "versions[0].manifests", "only manifest packs"},
		{"manifest pack without manifests", validManifest, func(p *v1.PackSpec) { p.Versions[0].Manifests = nil }, "versions[0].manifests", "at least one manifest"},
		{"manifest without name", validManifest, func(p *v1.PackSpec) { p.Versions[0].Manifests[0].Name = "" }, "versions[0].manifests[0].name", "is required"},
		{"manifest empty", validManifest, func(p *v1.PackSpec) { p.Versions[0].Manifests[0].Content = " \n" }, "versions[0].manifests[0].content", "is empty"},
		{"manifest twice", validManifest, func(p *v1.PackSpec) {
			p.Versions[0].Manifests = append(p.Versions[0].Manifests, p.Versions[0].Manifests[0])
		}, "versions[0].manifests[1].name", "already manifests[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.pack()
			tt.change(p)
			err := ValidatePack(p)
			if err == nil {
				t.Fatalf("no error; want %s: …%s…", tt.field, tt.msg)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error %v is not errs.ErrInvalid", err)
			}
			var fl errs.FieldList
			if !errors.As(err, &fl) {
				t.Fatalf("error %T is not an errs.FieldList", err)
			}
			for _, fe := range fl {
				if fe.Field == tt.field && strings.Contains(fe.Message, tt.msg) {
					return
				}
			}
			t.Errorf("errors %q have no %s: …%s…", err, tt.field, tt.msg)
		})
	}
}

func TestValidatePackReportsEverything(t *testing.T) {
	p := validDistro()
	p.Layer = "kernel"
	p.Versions[0].Version = "one"
	p.Versions[1].Artifacts[0].URL = ""
	var fl errs.FieldList
	if !errors.As(ValidatePack(p), &fl) || len(fl) != 3 {
		t.Fatalf("want three field errors, got %v", fl)
	}
	if err := ValidatePack(nil); err == nil {
		t.Error("ValidatePack(nil) passed")
	}
}
