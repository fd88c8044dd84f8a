package profile

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// memPacks is an in-memory PackLookup.
type memPacks []*v1.Pack

func (m memPacks) Pack(registry, name string) (*v1.Pack, error) {
	var found []*v1.Pack
	for _, p := range m {
		if p.Spec.Name == name && (registry == "" || p.Spec.Registry == registry) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		if registry != "" {
			return nil, fmt.Errorf("pack %s/%s: %w", registry, name, errs.ErrNotFound)
		}
		return nil, fmt.Errorf("pack %s: %w", name, errs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	var regs []string
	for _, p := range found {
		regs = append(regs, p.Spec.Registry)
	}
	return nil, fmt.Errorf("pack %s is ambiguous: it is in registries %s; name one", name, strings.Join(regs, ", "))
}

// testResolve is a small stand-in for catalog.Resolve: exact pins, pins
// without build metadata (1.30.4 → 1.30.4+k3s1), and x-trains.
func testResolve(available []string, want string) (string, error) {
	core, _, _ := strings.Cut(want, "+")
	parts := strings.Split(core, ".")
	wild := slices.IndexFunc(parts, func(s string) bool { return s == "x" || s == "X" || s == "*" })
	if wild < 0 {
		if slices.Contains(available, want) {
			return want, nil
		}
		var match []string
		for _, a := range available {
			if c, _, _ := strings.Cut(a, "+"); c == want {
				match = append(match, a)
			}
		}
		if len(match) == 1 {
			return match[0], nil
		}
		return "", fmt.Errorf("no version %s", want)
	}
	prefix := parts[:wild]
	var best *semver.Version
	bestText := ""
	for _, a := range available {
		v, err := semver.NewVersion(a)
		if err != nil || v.Prerelease() != "" {
			continue
		}
		nums := []uint64{v.Major(), v.Minor(), v.Patch()}
		ok := true
		for i, p := range prefix {
			if n, err := strconv.ParseUint(p, 10, 64); err != nil || i > 2 || n != nums[i] {
				ok = false
				break
			}
		}
		if ok && (best == nil || v.GreaterThan(best)) {
			best, bestText = v, a
		}
	}
	if best == nil {
		return "", fmt.Errorf("no version on train %s", want)
	}
	return bestText, nil
}

const k3sDefaults = `cluster:
  config:
    cluster-cidr: 10.42.0.0/16
    flannel-backend: vxlan
    service-cidr: 10.43.0.0/16
    write-kubeconfig-mode: "0644"
`

func k3sVersion(version, kube string, deprecated bool) v1.PackVersion {
	arch := func(a string) v1.Artifact {
		return v1.Artifact{
			Name: "k3s", Arch: a,
			URL:         "https://github.com/k3s-io/k3s/releases/download/v" + version + "/k3s-" + a,
			ChecksumURL: "https://github.com/k3s-io/k3s/releases/download/v" + version + "/sha256sum-" + a + ".txt",
		}
	}
	return v1.PackVersion{
		Version: version, KubernetesVersion: kube, Deprecated: deprecated,
		Values: k3sDefaults,
		Presets: []v1.Preset{
			{
				Name: PresetExternalCNI, Group: "network",
				Description: "turn off flannel, network policy and metrics-server for a CNI layer",
				Add: `cluster:
  config:
    flannel-backend: none
    disable-network-policy: true
    disable:
      - metrics-server
`,
			},
			{Name: "flannel-wireguard", Group: "network", Add: "cluster:\n  config:\n    flannel-backend: wireguard-native\n"},
			{Name: "secrets-encryption", Add: "cluster:\n  config:\n    secrets-encryption: true\n"},
		},
		Artifacts: []v1.Artifact{arch("amd64"), arch("arm64")},
	}
}

func pack(registry, name, layer, typ string, versions ...v1.PackVersion) *v1.Pack {
	return &v1.Pack{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindPack},
		Metadata: v1.ObjectMeta{Name: registry + "/" + name},
		Spec:     v1.PackSpec{Name: name, Registry: registry, Layer: layer, Type: typ, Versions: versions},
	}
}

func helmVersion(version, chart, chartVersion, values string, c *v1.Constraints, presets ...v1.Preset) v1.PackVersion {
	return v1.PackVersion{
		Version: version, Values: values, Constraints: c, Presets: presets,
		Chart: &v1.ChartRef{Repository: "https://charts.example.com/" + chart, Name: chart, Version: chartVersion, Digest: strings.Repeat("ab", 32)},
	}
}

// testPacks is the catalog the tests resolve against.
func testPacks() memPacks {
	return memPacks{
		pack("builtin", "ubuntu", v1.LayerOS, v1.PackDistro,
			v1.PackVersion{Version: "22.04.4", Values: "packages:\n  - open-iscsi\ntimezone: UTC\n"},
			v1.PackVersion{Version: "24.04.1", Values: "packages:\n  - open-iscsi\ntimezone: UTC\n"}),
		pack("builtin", "k3s", v1.LayerK8s, v1.PackDistro,
			k3sVersion("1.29.8+k3s1", "1.29.8", false),
			k3sVersion("1.30.3+k3s1", "1.30.3", false),
			k3sVersion("1.30.4+k3s1", "1.30.4", false),
			k3sVersion("1.30.5+k3s1", "1.30.5", true), // withdrawn: trains skip it
			k3sVersion("1.31.1+k3s1", "1.31.1", false)),
		pack("builtin", "rke2", v1.LayerK8s, v1.PackDistro,
			v1.PackVersion{Version: "1.30.4+rke2r1", KubernetesVersion: "1.30.4", Values: "cni: none\n"}),
		pack("builtin", "kubeadm", v1.LayerK8s, v1.PackDistro,
			v1.PackVersion{Version: "1.30.4"}), // no kubernetesVersion: its own version counts
		pack("builtin", "calico", v1.LayerCNI, v1.PackHelm,
			helmVersion("3.27.3", "tigera-operator", "v3.27.3", calicoDefaults,
				&v1.Constraints{Kubernetes: ">=1.27.0 <1.30.0"}),
			helmVersion("3.28.1", "tigera-operator", "v3.28.1", calicoDefaults,
				&v1.Constraints{Kubernetes: ">=1.28.0 <1.32.0"},
				v1.Preset{Name: "bgp", Group: "encapsulation", Add: "installation:\n  calicoNetwork:\n    bgp: Enabled\n"},
				v1.Preset{Name: "vxlan", Group: "encapsulation", Add: "installation:\n  calicoNetwork:\n    bgp: Disabled\n"})),
		pack("builtin", "cilium", v1.LayerCNI, v1.PackHelm,
			helmVersion("1.16.1", "cilium", "1.16.1", "", &v1.Constraints{Distros: []string{"rke2", "kubeadm"}})),
		pack("builtin", "local-path", v1.LayerCSI, v1.PackManifest,
			v1.PackVersion{
				Version: "0.0.28",
				Values:  "storagePath: /opt/local-path-provisioner\n",
				Manifests: []v1.Manifest{{Name: "local-path-config", Content: `apiVersion: v1
kind: ConfigMap
metadata:
  name: local-path-config
  namespace: local-path-storage
data:
  config.json: '{"nodePathMap":[{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":["{{ .Values.storagePath }}"]}]}'
`}},
			}),
		pack("builtin", "metrics-server", v1.LayerAddon, v1.PackHelm,
			helmVersion("2.11.0", "metrics-server", "2.11.0", "replicas: 1\n", nil),
			helmVersion("3.12.1", "metrics-server", "3.12.1", "args:\n  - --kubelet-insecure-tls\nreplicas: 1\n", nil)),
		pack("bitnami", "metrics-server", v1.LayerAddon, v1.PackHelm,
			helmVersion("7.2.0", "metrics-server", "7.2.0", "", nil)),
		pack("builtin", "keda", v1.LayerAddon, v1.PackHelm,
			helmVersion("2.15.1", "keda", "2.15.1", "", &v1.Constraints{Requires: []v1.PackDependency{{Pack: "builtin/metrics-server", Versions: ">=3.0.0"}}})),
		pack("builtin", "prometheus-adapter", v1.LayerAddon, v1.PackHelm,
			helmVersion("4.11.0", "prometheus-adapter", "4.11.0", "", &v1.Constraints{Forbids: []v1.PackDependency{{Pack: "metrics-server"}}})),
		pack("builtin", "vpa", v1.LayerAddon, v1.PackHelm,
			helmVersion("9.9.0", "vpa", "9.9.0", "", &v1.Constraints{Forbids: []v1.PackDependency{{Pack: "metrics-server", Versions: "<3.0.0"}}})),
		pack("builtin", "broken", v1.LayerAddon, v1.PackHelm,
			helmVersion("0.1.0", "broken", "0.1.0", "", &v1.Constraints{Kubernetes: "newest please"})),
		pack("builtin", "calico-policies", v1.LayerAddon, v1.PackManifest,
			v1.PackVersion{Version: "1.0.0", Constraints: &v1.Constraints{Requires: []v1.PackDependency{{Pack: "calico"}}}}),
	}
}

const calicoDefaults = `installation:
  calicoNetwork:
    ipPools:
      - cidr: 10.42.0.0/16
        encapsulation: VXLANCrossSubnet
`

// fullProfileYAML is a realistic full profile: ubuntu, k3s on the 1.30
// train, calico, local-path and metrics-server with an attached manifest.
const fullProfileYAML = `apiVersion: outpost.dev/v1
kind: ClusterProfile
metadata:
  name: store-edge
  project: stores
spec:
  type: full
  version: 1.0.0
  description: Store edge stack
  variables:
    - name: podCIDR
      type: cidr
      default: 10.42.0.0/16
    - name: siteCode
      type: string
      required: true
      regex: "[a-z]{2}-[0-9]{3}"
  layers:
    - pack: ubuntu
      version: 22.04.4
    - pack: k3s
      version: 1.30.x
      presets: [secrets-encryption]
      values: |
        cluster:
          config:
            cluster-cidr: {{ .Vars.podCIDR }}
    - pack: calico
      version: 3.28.1
      values: |
        installation:
          calicoNetwork:
            ipPools:
              - cidr: {{ .Vars.podCIDR }}
                encapsulation: VXLAN
    - pack: local-path
      version: 0.0.28
    - pack: metrics-server
      registry: builtin
      version: 3.12.1
      values: |
        replicas: 2
      manifests:
        - name: site-info
          content: |
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: site-info
              namespace: kube-system
            data:
              site: {{ quote .Vars.siteCode }}
`

func fullProfile(t testing.TB) *v1.ClusterProfile {
	t.Helper()
	p, err := Decode([]byte(fullProfileYAML))
	if err != nil {
		t.Fatalf("decode the full profile: %v", err)
	}
	return p
}

// wantFieldError fails unless err is an errs.ErrInvalid holding a field
// error for field whose message contains msg.
func wantFieldError(t *testing.T, err error, field, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s: …%s…", field, msg)
	}
	if !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("error %v is not errs.ErrInvalid", err)
	}
	var fl errs.FieldList
	if !errors.As(err, &fl) {
		var fe *errs.FieldError
		if errors.As(err, &fe) {
			fl = errs.FieldList{fe}
		}
	}
	for _, fe := range fl {
		if fe.Field == field && strings.Contains(fe.Message, msg) {
			return
		}
	}
	t.Fatalf("want %s: …%s…; got %v", field, msg, err)
}
