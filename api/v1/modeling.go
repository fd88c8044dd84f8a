package v1

import "time"

// Kinds of the modeling API.
const (
	KindPack           = "Pack"
	KindRegistry       = "Registry"
	KindClusterProfile = "ClusterProfile"
)

// Pack layers, bottom to top: a full profile stacks them in this order.
const (
	LayerOS      = "os"
	LayerK8s     = "k8s"
	LayerCNI     = "cni"
	LayerCSI     = "csi"
	LayerAddon   = "addon"
	PackDistro   = "distro"   // installs the OS or Kubernetes itself
	PackHelm     = "helm"     // a Helm chart
	PackManifest = "manifest" // Kubernetes manifests
)

// Pack is one versioned building block (k3s, calico, longhorn, …) as a
// registry offers it. Packs are not in a project: registries are hub-wide.
// Metadata.Name is "<registry>/<pack>".
type Pack struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta `json:"metadata" yaml:"metadata"`
	Spec     PackSpec   `json:"spec" yaml:"spec"`
}

type PackSpec struct {
	// Name is the pack's name within its registry.
	Name        string `json:"name" yaml:"name"`
	Registry    string `json:"registry" yaml:"registry"`
	DisplayName string `json:"displayName,omitempty" yaml:"displayName,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Layer is os, k8s, cni, csi or addon; Type is distro, helm or manifest.
	Layer    string        `json:"layer" yaml:"layer"`
	Type     string        `json:"type" yaml:"type"`
	Versions []PackVersion `json:"versions" yaml:"versions"`
}

// PackVersion is one version of a pack with everything needed to use it.
type PackVersion struct {
	// Version is semver, with build metadata where upstream has it
	// (1.30.4+k3s1, 1.30.4+rke2r1).
	Version string `json:"version" yaml:"version"`
	// Values are the default values (YAML): distro configuration for distro
	// packs, chart values for Helm packs, template values for manifests.
	Values  string   `json:"values,omitempty" yaml:"values,omitempty"`
	Presets []Preset `json:"presets,omitempty" yaml:"presets,omitempty"`
	// Constraints limit what the pack can be combined with.
	Constraints *Constraints `json:"constraints,omitempty" yaml:"constraints,omitempty"`
	// Artifacts are the files a distro pack installs, per architecture.
	Artifacts []Artifact `json:"artifacts,omitempty" yaml:"artifacts,omitempty"`
	// Chart locates the chart of a Helm pack.
	Chart *ChartRef `json:"chart,omitempty" yaml:"chart,omitempty"`
	// Manifests of a manifest pack.
	Manifests []Manifest `json:"manifests,omitempty" yaml:"manifests,omitempty"`
	// KubernetesVersion, for k8s packs, is the Kubernetes version the distro
	// version carries (1.30.4 for 1.30.4+k3s1).
	KubernetesVersion string `json:"kubernetesVersion,omitempty" yaml:"kubernetesVersion,omitempty"`
	Deprecated        bool   `json:"deprecated,omitempty" yaml:"deprecated,omitempty"`
}

// Preset is a named snippet of values a person can switch on: Add is
// deep-merged over the values, Remove lists dotted key paths to delete.
// Presets of one Group exclude each other.
type Preset struct {
	Name        string   `json:"name" yaml:"name"`
	Group       string   `json:"group,omitempty" yaml:"group,omitempty"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	Add         string   `json:"add,omitempty" yaml:"add,omitempty"`
	Remove      []string `json:"remove,omitempty" yaml:"remove,omitempty"`
}

// Constraints are what a pack version needs of the rest of the profile.
type Constraints struct {
	// Kubernetes is a semver range of Kubernetes versions the pack supports
	// (">=1.28.0 <1.32.0").
	Kubernetes string `json:"kubernetes,omitempty" yaml:"kubernetes,omitempty"`
	// Distros lists the k8s packs it works with (empty: all).
	Distros []string `json:"distros,omitempty" yaml:"distros,omitempty"`
	// Requires and Forbids name other packs (optionally with a semver range)
	// that must or must not be in the same profile stack.
	Requires []PackDependency `json:"requires,omitempty" yaml:"requires,omitempty"`
	Forbids  []PackDependency `json:"forbids,omitempty" yaml:"forbids,omitempty"`
}

type PackDependency struct {
	Pack     string `json:"pack" yaml:"pack"`
	Versions string `json:"versions,omitempty" yaml:"versions,omitempty"`
}

// Artifact is a file to download and verify: by SHA256, or by the upstream
// checksum file at ChecksumURL that lists it.
type Artifact struct {
	Name        string `json:"name" yaml:"name"`
	Arch        string `json:"arch" yaml:"arch"`
	URL         string `json:"url" yaml:"url"`
	SHA256      string `json:"sha256,omitempty" yaml:"sha256,omitempty"`
	ChecksumURL string `json:"checksumURL,omitempty" yaml:"checksumURL,omitempty"`
}

// ChartRef locates a Helm chart: a chart repository URL (or oci://…), the
// chart name and its version.
type ChartRef struct {
	Repository string `json:"repository" yaml:"repository"`
	Name       string `json:"name" yaml:"name"`
	Version    string `json:"version" yaml:"version"`
	// Digest is the chart archive's sha256 from the repository index.
	Digest string `json:"digest,omitempty" yaml:"digest,omitempty"`
}

// Manifest is one named Kubernetes YAML document stream.
type Manifest struct {
	Name    string `json:"name" yaml:"name"`
	Content string `json:"content" yaml:"content"`
}

// Registry types.
const (
	RegistryBuiltin   = "builtin"
	RegistryPackIndex = "pack-index"
	RegistryHelm      = "helm"
)

// Registry is where packs come from: the built-in catalog, a pack index
// (HTTP URL or a directory on the hub), or a Helm chart repository whose
// every chart becomes an addon pack.
type Registry struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta     `json:"metadata" yaml:"metadata"`
	Spec     RegistrySpec   `json:"spec" yaml:"spec"`
	Status   RegistryStatus `json:"status" yaml:"status"`
}

type RegistrySpec struct {
	Type string `json:"type" yaml:"type"`
	// URL of a pack index (index.yaml) or of a Helm repository.
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// Directory holding a pack index, on the hub's file system.
	Directory string `json:"directory,omitempty" yaml:"directory,omitempty"`
	// SyncInterval is how often to sync (Go duration, default 1h; "0" off).
	SyncInterval string `json:"syncInterval,omitempty" yaml:"syncInterval,omitempty"`
	CACert       string `json:"caCert,omitempty" yaml:"caCert,omitempty"`
}

type RegistryStatus struct {
	LastSync    *time.Time `json:"lastSync,omitempty" yaml:"lastSync,omitempty"`
	LastError   string     `json:"lastError,omitempty" yaml:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty" yaml:"lastErrorAt,omitempty"`
	Packs       int        `json:"packs" yaml:"packs"`
	Versions    int        `json:"versions" yaml:"versions"`
	CatalogHash string     `json:"catalogHash,omitempty" yaml:"catalogHash,omitempty"`
}

// Profile types.
const (
	ProfileInfra = "infra"
	ProfileAddon = "addon"
	ProfileFull  = "full"
)

// ClusterProfile is a versioned stack of layers. Each version is its own
// object; Metadata.Name is the profile name and Spec.Version its version. A
// published version cannot change: a new one is made by cloning or bumping.
type ClusterProfile struct {
	TypeMeta `json:",inline" yaml:",inline"`
	Metadata ObjectMeta           `json:"metadata" yaml:"metadata"`
	Spec     ClusterProfileSpec   `json:"spec" yaml:"spec"`
	Status   ClusterProfileStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

type ClusterProfileSpec struct {
	Type        string `json:"type" yaml:"type"`
	Version     string `json:"version" yaml:"version"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Published freezes the version.
	Published bool              `json:"published,omitempty" yaml:"published,omitempty"`
	Layers    []ProfileLayer    `json:"layers" yaml:"layers"`
	Variables []ProfileVariable `json:"variables,omitempty" yaml:"variables,omitempty"`
}

// ProfileLayer is one layer of a profile: a pack at a version or on a train,
// or (with no Pack) a raw manifest layer.
type ProfileLayer struct {
	// Name is unique in the profile (default: the pack name).
	Name     string `json:"name" yaml:"name"`
	Pack     string `json:"pack,omitempty" yaml:"pack,omitempty"`
	Registry string `json:"registry,omitempty" yaml:"registry,omitempty"`
	// Version pins a version (1.30.4+k3s1) or follows a train (1.x, 1.30.x).
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	// Values (YAML) are deep-merged over the pack's defaults and presets.
	Values  string   `json:"values,omitempty" yaml:"values,omitempty"`
	Presets []string `json:"presets,omitempty" yaml:"presets,omitempty"`
	// Manifests are the content of a raw manifest layer, or manifests
	// attached to a pack layer (applied after it).
	Manifests []Manifest `json:"manifests,omitempty" yaml:"manifests,omitempty"`
}

// Variable types.
const (
	VarString  = "string"
	VarNumber  = "number"
	VarBool    = "bool"
	VarIPv4    = "ipv4"
	VarCIDR    = "cidr"
	VarVersion = "version"
)

// ProfileVariable is filled in when a cluster is created; values and
// manifests refer to it as {{ .Vars.name }}.
type ProfileVariable struct {
	Name        string `json:"name" yaml:"name"`
	Type        string `json:"type" yaml:"type"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	Default     string `json:"default,omitempty" yaml:"default,omitempty"`
	Required    bool   `json:"required,omitempty" yaml:"required,omitempty"`
	// Regex the value must match (whole value).
	Regex string `json:"regex,omitempty" yaml:"regex,omitempty"`
}

type ClusterProfileStatus struct {
	// Resolved lists each layer's resolved version now (trains move when a
	// registry gains a version).
	Resolved []ResolvedLayerVersion `json:"resolved,omitempty" yaml:"resolved,omitempty"`
	// ResolvedHash is the hash of Resolved; it changes when a train moves.
	ResolvedHash string `json:"resolvedHash,omitempty" yaml:"resolvedHash,omitempty"`
}

type ResolvedLayerVersion struct {
	Layer   string `json:"layer" yaml:"layer"`
	Version string `json:"version" yaml:"version"`
}

// RenderedProfile is exactly what a host receives for a profile: layers in
// order, versions resolved, values merged, manifests rendered, and a hash.
type RenderedProfile struct {
	Profile string          `json:"profile" yaml:"profile"`
	Version string          `json:"version" yaml:"version"`
	Type    string          `json:"type" yaml:"type"`
	Layers  []RenderedLayer `json:"layers" yaml:"layers"`
	Hash    string          `json:"hash" yaml:"hash"`
}

type RenderedLayer struct {
	Name     string `json:"name" yaml:"name"`
	Layer    string `json:"layer" yaml:"layer"`
	Type     string `json:"type" yaml:"type"`
	Pack     string `json:"pack,omitempty" yaml:"pack,omitempty"`
	Registry string `json:"registry,omitempty" yaml:"registry,omitempty"`
	// Train is what the profile asked for when it was not a pin.
	Train     string     `json:"train,omitempty" yaml:"train,omitempty"`
	Version   string     `json:"version,omitempty" yaml:"version,omitempty"`
	Values    string     `json:"values,omitempty" yaml:"values,omitempty"`
	Manifests []Manifest `json:"manifests,omitempty" yaml:"manifests,omitempty"`
	Artifacts []Artifact `json:"artifacts,omitempty" yaml:"artifacts,omitempty"`
	Chart     *ChartRef  `json:"chart,omitempty" yaml:"chart,omitempty"`
	// KubernetesVersion is set on the k8s layer.
	KubernetesVersion string `json:"kubernetesVersion,omitempty" yaml:"kubernetesVersion,omitempty"`
	Hash              string `json:"hash" yaml:"hash"`
}

func (o *Pack) GetObjectMeta() *ObjectMeta           { return &o.Metadata }
func (o *Registry) GetObjectMeta() *ObjectMeta       { return &o.Metadata }
func (o *ClusterProfile) GetObjectMeta() *ObjectMeta { return &o.Metadata }
