package profile

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// PresetExternalCNI is the k8s pack preset switched on by itself when the
// profile has a CNI layer: it turns off what the distro would otherwise run
// in the CNI's place (k3s: flannel, its network policy controller and
// metrics-server).
const PresetExternalCNI = "external-cni"

var (
	reProfileName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	reLayerName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)
)

// coreLayers are the layers of an infra or full profile, in their order.
var coreLayers = []string{v1.LayerOS, v1.LayerK8s, v1.LayerCNI, v1.LayerCSI}

// PackLookup finds packs in the hub's registries.
type PackLookup interface {
	// Pack returns the pack called name in registry. Registry "" searches
	// every registry and fails when more than one has such a pack.
	Pack(registry, name string) (*v1.Pack, error)
}

// Resolver picks the version that want (a pin such as 1.30.4+k3s1 or a train
// such as 1.x or 1.30.x) names among the available ones. The catalog
// package provides the real one; it is injected so this package has no
// opinion on version syntax.
type Resolver func(available []string, want string) (string, error)

// ValidateOptions are the dependencies of Validate.
type ValidateOptions struct {
	// Resolver resolves layer versions; nil accepts exact versions only.
	Resolver Resolver
}

// layerPlan is one layer with its pack and version looked up.
type layerPlan struct {
	layer v1.ProfileLayer
	field string // spec.layers[NAME]
	// kind is the layer (os, k8s, cni, csi, addon), "" when the pack could
	// not be found.
	kind    string
	pack    *v1.Pack
	version *v1.PackVersion
	train   string
}

// plan is a profile with every layer looked up: what Validate checks and
// Render renders.
type plan struct {
	p      *v1.ClusterProfile
	layers []*layerPlan
	k8s    *layerPlan // nil when the profile has none, or it did not resolve
	hasCNI bool
}

// Validate checks a profile against the pack catalog and returns an
// errs.FieldList naming every problem (`spec.layers[calico].version`), or
// nil. It does not change p: layer names default to their pack on a copy.
// Templates are rendered with the variables' defaults or, where there is
// none, a placeholder of the variable's type, so that a profile that
// validates renders for any valid variables.
func Validate(p *v1.ClusterProfile, packs PackLookup, opts ValidateOptions) error {
	_, fl := check(p, packs, opts.Resolver)
	return fl.Err()
}

// check normalizes a copy of p, looks up and checks everything, and renders
// every layer with placeholder variables.
func check(p *v1.ClusterProfile, packs PackLookup, resolver Resolver) (*plan, errs.FieldList) {
	p = DeepCopy(p)
	Normalize(p)
	var fl errs.FieldList
	checkMeta(&fl, p)
	validateVariables(&fl, p.Spec.Variables)
	pl := lookupLayers(&fl, p, packs, resolver)
	checkOrder(&fl, pl)
	checkConstraints(&fl, pl, packs)
	vars := make(map[string]string, len(p.Spec.Variables))
	for _, d := range p.Spec.Variables {
		if reIdent.MatchString(d.Name) {
			vars[d.Name] = placeholder(d)
		}
	}
	for _, lp := range pl.layers {
		if lp.layer.Pack != "" && lp.version == nil {
			continue // already reported; its values cannot be checked
		}
		_, lfl := pl.build(lp, vars)
		fl = append(fl, lfl...)
	}
	return pl, fl
}

func checkMeta(fl *errs.FieldList, p *v1.ClusterProfile) {
	if p.APIVersion != v1.APIVersion {
		fl.Add("apiVersion", "must be %s, not %q", v1.APIVersion, p.APIVersion)
	}
	if p.Kind != v1.KindClusterProfile {
		fl.Add("kind", "must be %s, not %q", v1.KindClusterProfile, p.Kind)
	}
	switch name := p.Metadata.Name; {
	case name == "":
		fl.Add("metadata.name", "is required")
	case !reProfileName.MatchString(name):
		fl.Add("metadata.name", "%q is not a DNS label (lower-case letters, digits and -, at most 63)", name)
	}
	if p.Spec.Version == "" {
		fl.Add("spec.version", "is required")
	} else if _, err := semver.StrictNewVersion(p.Spec.Version); err != nil {
		fl.Add("spec.version", "%q is not a semantic version (1.0.0)", p.Spec.Version)
	}
	switch p.Spec.Type {
	case v1.ProfileInfra, v1.ProfileAddon, v1.ProfileFull:
	case "":
		fl.Add("spec.type", "is required (infra, addon or full)")
	default:
		fl.Add("spec.type", "%q is not infra, addon or full", p.Spec.Type)
	}
	if len(p.Spec.Layers) == 0 {
		fl.Add("spec.layers", "a profile needs at least one layer")
	}
}

func layerField(l v1.ProfileLayer, i int) string {
	if l.Name != "" {
		return "spec.layers[" + l.Name + "]"
	}
	return fmt.Sprintf("spec.layers[%d]", i)
}

func lookupLayers(fl *errs.FieldList, p *v1.ClusterProfile, packs PackLookup, resolver Resolver) *plan {
	pl := &plan{p: p}
	seen := map[string]bool{}
	for i, l := range p.Spec.Layers {
		lp := &layerPlan{layer: l, field: layerField(l, i)}
		pl.layers = append(pl.layers, lp)
		switch {
		case l.Name == "":
			fl.Add(lp.field+".name", "is required for a layer without a pack")
		case !reLayerName.MatchString(l.Name):
			fl.Add(lp.field+".name", "%q is not a valid layer name (lower-case letters, digits, ., _ and -)", l.Name)
		case seen[l.Name]:
			fl.Add(lp.field+".name", "layer name %q is used twice; give one of them another name", l.Name)
		}
		seen[l.Name] = true
		if l.Pack == "" {
			// A raw manifest layer: Kubernetes objects, applied like an add-on.
			lp.kind = v1.LayerAddon
			if len(l.Manifests) == 0 {
				fl.Add(lp.field, "a layer needs a pack or manifests")
			}
			if l.Registry != "" {
				fl.Add(lp.field+".registry", "is only for a pack layer")
			}
			if l.Version != "" {
				fl.Add(lp.field+".version", "is only for a pack layer")
			}
			if len(l.Presets) > 0 {
				fl.Add(lp.field+".presets", "are only for a pack layer")
			}
			continue
		}
		if packs == nil {
			fl.Add(lp.field+".pack", "no pack catalog to look %q up in", l.Pack)
			continue
		}
		pack, err := packs.Pack(l.Registry, l.Pack)
		if err != nil {
			fl.Add(lp.field+".pack", "%v", err)
			continue
		}
		if pack == nil {
			fl.Add(lp.field+".pack", "pack %q not found", l.Pack)
			continue
		}
		if !slices.Contains(coreLayers, pack.Spec.Layer) && pack.Spec.Layer != v1.LayerAddon {
			fl.Add(lp.field+".pack", "pack %q has unknown layer %q", l.Pack, pack.Spec.Layer)
			continue
		}
		lp.pack, lp.kind = pack, pack.Spec.Layer
		if l.Version == "" {
			fl.Add(lp.field+".version", "is required: a version (1.30.4) or a train (1.30.x, 1.x)")
			continue
		}
		pv, err := resolveVersion(pack, l.Version, resolver)
		if err != nil {
			fl.Add(lp.field+".version", "%v", err)
			continue
		}
		lp.version = pv
		if isTrain(l.Version) {
			lp.train = l.Version
		}
		switch lp.kind {
		case v1.LayerK8s:
			if pl.k8s == nil {
				pl.k8s = lp
			}
		case v1.LayerCNI:
			pl.hasCNI = true
		}
	}
	return pl
}

// isTrain says whether want follows a train rather than pinning a version.
// A pin is MAJOR.MINOR.PATCH with optional v, pre-release and build metadata
// (1.30.4+k3s1; OS packs keep leading zeros: 22.04.4); anything else — 1.x,
// 1.30.x, 1.30, latest, a range — is a train. That is how the catalog's
// resolver reads a version too. The rendered layer records what a train
// asked for.
func isTrain(want string) bool {
	if want == "" {
		return false
	}
	core := strings.TrimPrefix(want, "v")
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return true
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return true
		}
	}
	_, err := semver.NewVersion(want)
	return err != nil
}

// resolveVersion finds the pack version want names. A train never lands on
// a deprecated version; a pin may name one, because a profile that worked
// must keep working after its version is deprecated.
func resolveVersion(pack *v1.Pack, want string, resolver Resolver) (*v1.PackVersion, error) {
	train := isTrain(want)
	var avail []string
	for _, v := range pack.Spec.Versions {
		if train && v.Deprecated {
			continue
		}
		avail = append(avail, v.Version)
	}
	got := want
	if resolver != nil {
		var err error
		if got, err = resolver(avail, want); err != nil {
			return nil, fmt.Errorf("pack %s: %w", pack.Spec.Name, err)
		}
	}
	for i, v := range pack.Spec.Versions {
		if v.Version == got && slices.Contains(avail, got) {
			return &pack.Spec.Versions[i], nil
		}
	}
	if resolver != nil {
		return nil, fmt.Errorf("pack %s: the resolver chose %q, which the pack does not offer", pack.Spec.Name, got)
	}
	return nil, fmt.Errorf("pack %s has no version %q", pack.Spec.Name, want)
}

func checkOrder(fl *errs.FieldList, pl *plan) {
	typ := pl.p.Spec.Type
	if typ == v1.ProfileAddon {
		for _, lp := range pl.layers {
			if slices.Contains(coreLayers, lp.kind) {
				fl.Add(lp.field+".pack", "an addon profile cannot have a %s layer: that belongs in an infra or full profile", lp.kind)
			}
		}
		return
	}
	if typ != v1.ProfileInfra && typ != v1.ProfileFull {
		return
	}
	first := map[string]*layerPlan{}
	unknown, broken := false, false
	for _, lp := range pl.layers {
		switch {
		case lp.kind == "":
			unknown = true
		case slices.Contains(coreLayers, lp.kind):
			if f, ok := first[lp.kind]; ok {
				fl.Add(lp.field, "a second %s layer (the first is %s): a profile has exactly one", lp.kind, f.layer.Name)
				broken = true
				continue
			}
			first[lp.kind] = lp
		case typ == v1.ProfileInfra:
			fl.Add(lp.field, "an infra profile has only os, k8s, cni and csi layers: put %s in an addon or full profile, or attach its manifests to one of the four", lp.layer.Name)
		}
	}
	// When a pack was not found its layer is unknown; saying that the
	// profile lacks that layer as well would only repeat the error.
	if unknown {
		return
	}
	for _, kind := range coreLayers {
		if first[kind] == nil {
			fl.Add("spec.layers", "a %s profile needs a %s layer", typ, kind)
			broken = true
		}
	}
	if broken {
		return
	}
	for i, lp := range pl.layers {
		if rank := slices.Index(coreLayers, lp.kind); rank >= 0 && rank != i {
			fl.Add(lp.field, "the %s layer must be layer %d: os, k8s, cni and csi come first, in that order", lp.kind, rank+1)
		}
	}
}

// kubernetesVersion is the Kubernetes version a k8s pack version carries;
// without one recorded, its own version's core (kubeadm 1.30.4 is 1.30.4).
func kubernetesVersion(pv *v1.PackVersion) string {
	if pv.KubernetesVersion != "" {
		return pv.KubernetesVersion
	}
	v, err := semver.NewVersion(pv.Version)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch())
}

// matchesPack says whether a dependency (name, or registry/name) names the
// pack of lp.
func matchesPack(ref string, lp *layerPlan) bool {
	if lp.pack == nil {
		return false
	}
	if reg, name, ok := strings.Cut(ref, "/"); ok {
		return reg == lp.pack.Spec.Registry && name == lp.pack.Spec.Name
	}
	return ref == lp.pack.Spec.Name
}

func inRange(rng, version string) (bool, error) {
	c, err := semver.NewConstraint(rng)
	if err != nil {
		return false, fmt.Errorf("bad version range %q: %w", rng, err)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false, fmt.Errorf("version %q is not semantic: %w", version, err)
	}
	return c.Check(v), nil
}

func checkConstraints(fl *errs.FieldList, pl *plan, packs PackLookup) {
	for _, lp := range pl.layers {
		if lp.version == nil || lp.version.Constraints == nil {
			continue
		}
		c := lp.version.Constraints
		field := lp.field + ".version"
		what := lp.pack.Spec.Name + " " + lp.version.Version
		// An addon profile has no k8s layer; its Kubernetes and distro
		// constraints are checked when a cluster combines it with one.
		if k := pl.k8s; k != nil && lp != k {
			kv := kubernetesVersion(k.version)
			if c.Kubernetes != "" {
				ok, err := inRange(c.Kubernetes, kv)
				if err != nil {
					fl.Add(field, "%s: kubernetes constraint: %v", what, err)
				} else if !ok {
					fl.Add(field, "%s supports Kubernetes %s, but the k8s layer %s is Kubernetes %s", what, c.Kubernetes, k.layer.Name, kv)
				}
			}
			if len(c.Distros) > 0 && !slices.ContainsFunc(c.Distros, func(d string) bool { return matchesPack(d, k) }) {
				fl.Add(field, "%s works with the k8s packs %s only, not %s", what, strings.Join(c.Distros, ", "), k.pack.Spec.Name)
			}
		}
		for _, dep := range c.Requires {
			checkRequire(fl, pl, packs, lp, dep, field, what)
		}
		for _, dep := range c.Forbids {
			for _, other := range pl.layers {
				if other == lp || other.version == nil || !matchesPack(dep.Pack, other) {
					continue
				}
				if dep.Versions != "" {
					ok, err := inRange(dep.Versions, other.version.Version)
					if err != nil {
						fl.Add(field, "%s: forbids %s: %v", what, dep.Pack, err)
						continue
					}
					if !ok {
						continue
					}
				}
				fl.Add(field, "%s cannot be combined with %s %s (layer %s)", what, other.pack.Spec.Name, other.version.Version, other.layer.Name)
			}
		}
	}
}

func checkRequire(fl *errs.FieldList, pl *plan, packs PackLookup, lp *layerPlan, dep v1.PackDependency, field, what string) {
	var found []*layerPlan
	for _, other := range pl.layers {
		if other != lp && matchesPack(dep.Pack, other) {
			found = append(found, other)
		}
	}
	if len(found) == 0 {
		// An addon profile can need the cluster's CNI or distro, which come
		// from the infra profile it is combined with.
		if pl.p.Spec.Type == v1.ProfileAddon && packs != nil {
			reg, name, ok := strings.Cut(dep.Pack, "/")
			if !ok {
				reg, name = "", dep.Pack
			}
			if pk, err := packs.Pack(reg, name); err == nil && pk != nil && slices.Contains(coreLayers, pk.Spec.Layer) {
				return
			}
		}
		need := dep.Pack
		if dep.Versions != "" {
			need += " " + dep.Versions
		}
		fl.Add(field, "%s needs %s in the profile", what, need)
		return
	}
	if dep.Versions == "" {
		return
	}
	var have []string
	for _, other := range found {
		if other.version == nil {
			return // not resolved: reported already
		}
		ok, err := inRange(dep.Versions, other.version.Version)
		if err != nil {
			fl.Add(field, "%s: requires %s: %v", what, dep.Pack, err)
			return
		}
		if ok {
			return
		}
		have = append(have, other.version.Version)
	}
	fl.Add(field, "%s needs %s %s, but the profile has %s", what, dep.Pack, dep.Versions, strings.Join(have, ", "))
}
