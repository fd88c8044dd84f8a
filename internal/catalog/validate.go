package catalog

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

var (
	// rePackName allows what Helm chart names use in the wild (upper case
	// included) but no slash: Metadata.Name is "<registry>/<pack>".
	rePackName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$`)
	// reRegistryName is a DNS label, like other object names.
	reRegistryName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	rePresetName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)
	reSHA256       = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// layerTypes says which pack types each layer may have: the OS and the
// Kubernetes distro are installed on the host by the agent; everything
// above them is applied to the cluster as a chart or as manifests.
var layerTypes = map[string][]string{
	v1.LayerOS:    {v1.PackDistro},
	v1.LayerK8s:   {v1.PackDistro},
	v1.LayerCNI:   {v1.PackHelm, v1.PackManifest},
	v1.LayerCSI:   {v1.PackHelm, v1.PackManifest},
	v1.LayerAddon: {v1.PackHelm, v1.PackManifest},
}

// Arches are the architectures an artifact may be for, in GOARCH spelling
// (what the agent reports). An empty Arch means any architecture: a chart
// archive or a manifest is the same everywhere.
var Arches = []string{"amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64"}

// ValidatePack checks a pack and returns an errs.FieldList naming every
// problem by its path in the spec (`versions[2].artifacts[0].url`), or nil.
func ValidatePack(p *v1.PackSpec) error {
	var fl errs.FieldList
	if p == nil {
		fl.Add("spec", "is required")
		return fl
	}
	switch {
	case p.Name == "":
		fl.Add("name", "is required")
	case !rePackName.MatchString(p.Name):
		fl.Add("name", "%q must be letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 128", p.Name)
	}
	switch {
	case p.Registry == "":
		fl.Add("registry", "is required")
	case !reRegistryName.MatchString(p.Registry):
		fl.Add("registry", "%q is not a DNS label (lower-case letters, digits and -, at most 63)", p.Registry)
	}
	types, layerOK := layerTypes[p.Layer]
	switch {
	case p.Layer == "":
		fl.Add("layer", "is required (os, k8s, cni, csi or addon)")
	case !layerOK:
		fl.Add("layer", "%q is not a layer (os, k8s, cni, csi or addon)", p.Layer)
	}
	switch {
	case p.Type == "":
		fl.Add("type", "is required (distro, helm or manifest)")
	case p.Type != v1.PackDistro && p.Type != v1.PackHelm && p.Type != v1.PackManifest:
		fl.Add("type", "%q is not a pack type (distro, helm or manifest)", p.Type)
	case layerOK && !slices.Contains(types, p.Type):
		fl.Add("type", "a %s pack cannot be of type %s (only %s)", p.Layer, p.Type, strings.Join(types, " or "))
	}
	if len(p.Versions) == 0 {
		fl.Add("versions", "a pack needs at least one version")
	}
	seen := map[string]int{}
	for i := range p.Versions {
		f := fmt.Sprintf("versions[%d]", i)
		pv := &p.Versions[i]
		if v := validateVersion(&fl, p, pv, f); v != nil {
			// Equal in every part, metadata included: 1.30.4+k3s1 and
			// 1.30.4+k3s2 are two versions, v1.2.3 and 1.2.3 are one.
			key := v.String()
			if j, dup := seen[key]; dup {
				fl.Add(f+".version", "%s is the same version as versions[%d] (%s)", pv.Version, j, p.Versions[j].Version)
			} else {
				seen[key] = i
			}
		}
	}
	return fl.Err()
}

// validateVersion checks one version and returns it parsed, or nil.
func validateVersion(fl *errs.FieldList, p *v1.PackSpec, pv *v1.PackVersion, f string) *semver.Version {
	var parsed *semver.Version
	if pv.Version == "" {
		fl.Add(f+".version", "is required")
	} else if v, err := parseVersion(pv.Version); err != nil {
		fl.Add(f+".version", "%v", err)
	} else {
		parsed = v
	}
	if err := checkMapping(pv.Values); err != nil {
		fl.Add(f+".values", "%v", err)
	}
	validatePresets(fl, pv.Presets, f)
	if c := pv.Constraints; c != nil {
		validateConstraints(fl, c, f+".constraints")
	}

	archs := map[string]bool{}
	type nameArch struct{ name, arch string }
	seen := map[nameArch]int{}
	for j, a := range pv.Artifacts {
		af := fmt.Sprintf("%s.artifacts[%d]", f, j)
		if a.Name == "" {
			fl.Add(af+".name", "is required")
		}
		if a.Arch != "" && !slices.Contains(Arches, a.Arch) {
			fl.Add(af+".arch", "%q is not an architecture (%s, or empty for any)", a.Arch, strings.Join(Arches, ", "))
		}
		if k, dup := seen[nameArch{a.Name, a.Arch}]; dup && a.Name != "" {
			fl.Add(af+".name", "artifact %q for arch %q is already artifacts[%d]", a.Name, a.Arch, k)
		} else {
			seen[nameArch{a.Name, a.Arch}] = j
		}
		checkURL(fl, af+".url", a.URL, true, "http", "https")
		if a.SHA256 != "" && !reSHA256.MatchString(a.SHA256) {
			fl.Add(af+".sha256", "must be 64 hexadecimal digits")
		}
		if a.ChecksumURL != "" {
			checkURL(fl, af+".checksumURL", a.ChecksumURL, true, "http", "https")
		}
		// Nothing is installed on a host unverified.
		if a.SHA256 == "" && a.ChecksumURL == "" {
			fl.Add(af, "needs a sha256 or a checksumURL")
		}
		archs[a.Arch] = true
	}

	switch p.Type {
	case v1.PackDistro:
		if p.Layer == v1.LayerK8s {
			if len(pv.Artifacts) == 0 {
				fl.Add(f+".artifacts", "a Kubernetes distro needs artifacts to install")
			} else if !archs["amd64"] && !archs[""] {
				fl.Add(f+".artifacts", "there is no artifact for amd64")
			}
			if pv.KubernetesVersion == "" {
				fl.Add(f+".kubernetesVersion", "is required for a Kubernetes distro")
			} else if _, err := parseVersion(pv.KubernetesVersion); err != nil {
				fl.Add(f+".kubernetesVersion", "%v", err)
			}
		}
	case v1.PackHelm:
		validateChart(fl, pv.Chart, f+".chart")
	case v1.PackManifest:
		validateManifests(fl, pv.Manifests, f+".manifests")
	}
	// With an unknown layer or type these would only echo that error.
	_, layerOK := layerTypes[p.Layer]
	typeOK := p.Type == v1.PackDistro || p.Type == v1.PackHelm || p.Type == v1.PackManifest
	if pv.KubernetesVersion != "" && layerOK && p.Layer != v1.LayerK8s {
		fl.Add(f+".kubernetesVersion", "only k8s packs carry a Kubernetes version")
	}
	if pv.Chart != nil && typeOK && p.Type != v1.PackHelm {
		fl.Add(f+".chart", "only helm packs have a chart")
	}
	if len(pv.Manifests) > 0 && typeOK && p.Type != v1.PackManifest {
		fl.Add(f+".manifests", "only manifest packs have manifests (a profile layer can attach its own)")
	}
	return parsed
}

func validatePresets(fl *errs.FieldList, presets []v1.Preset, f string) {
	names := map[string]int{}
	for i, ps := range presets {
		pf := fmt.Sprintf("%s.presets[%d]", f, i)
		switch {
		case ps.Name == "":
			fl.Add(pf+".name", "is required")
		case !rePresetName.MatchString(ps.Name):
			fl.Add(pf+".name", "%q must be lower-case letters, digits, '.' and '-', at most 63", ps.Name)
		default:
			if j, dup := names[ps.Name]; dup {
				fl.Add(pf+".name", "preset %q is already presets[%d]", ps.Name, j)
			}
			names[ps.Name] = i
		}
		if ps.Group != "" && !rePresetName.MatchString(ps.Group) {
			fl.Add(pf+".group", "%q must be lower-case letters, digits, '.' and '-', at most 63", ps.Group)
		}
		if ps.Add == "" && len(ps.Remove) == 0 {
			fl.Add(pf, "a preset must add or remove something")
		}
		if err := checkMapping(ps.Add); err != nil {
			fl.Add(pf+".add", "%v", err)
		}
		for j, r := range ps.Remove {
			if err := checkKeyPath(r); err != nil {
				fl.Add(fmt.Sprintf("%s.remove[%d]", pf, j), "%q: %v", r, err)
			}
		}
	}
}

func validateConstraints(fl *errs.FieldList, c *v1.Constraints, f string) {
	if c.Kubernetes != "" {
		if _, err := semver.NewConstraint(c.Kubernetes); err != nil {
			fl.Add(f+".kubernetes", "%q is not a version range: %v", c.Kubernetes, err)
		}
	}
	for i, d := range c.Distros {
		if !rePackName.MatchString(d) {
			fl.Add(fmt.Sprintf("%s.distros[%d]", f, i), "%q is not a pack name", d)
		}
	}
	deps := func(name string, ds []v1.PackDependency) {
		for i, d := range ds {
			df := fmt.Sprintf("%s.%s[%d]", f, name, i)
			if !validDependency(d.Pack) {
				fl.Add(df+".pack", "%q is not a pack name (pack or registry/pack)", d.Pack)
			}
			if d.Versions != "" {
				if _, err := semver.NewConstraint(d.Versions); err != nil {
					fl.Add(df+".versions", "%q is not a version range: %v", d.Versions, err)
				}
			}
		}
	}
	deps("requires", c.Requires)
	deps("forbids", c.Forbids)
}

func validDependency(ref string) bool {
	if reg, name, ok := strings.Cut(ref, "/"); ok {
		return reRegistryName.MatchString(reg) && rePackName.MatchString(name)
	}
	return rePackName.MatchString(ref)
}

func validateChart(fl *errs.FieldList, c *v1.ChartRef, f string) {
	if c == nil {
		fl.Add(f, "a helm pack needs a chart (repository, name, version)")
		return
	}
	if c.Repository == "" {
		fl.Add(f+".repository", "is required")
	} else {
		checkURL(fl, f+".repository", c.Repository, false, "http", "https", "oci")
	}
	if c.Name == "" {
		fl.Add(f+".name", "is required")
	}
	if c.Version == "" {
		fl.Add(f+".version", "is required")
	}
	if c.Digest != "" && !reSHA256.MatchString(c.Digest) {
		fl.Add(f+".digest", "must be the chart archive's sha256 (64 hexadecimal digits)")
	}
}

func validateManifests(fl *errs.FieldList, ms []v1.Manifest, f string) {
	if len(ms) == 0 {
		fl.Add(f, "a manifest pack needs at least one manifest")
	}
	names := map[string]int{}
	for i, m := range ms {
		mf := fmt.Sprintf("%s[%d]", f, i)
		if m.Name == "" {
			fl.Add(mf+".name", "is required")
		} else if j, dup := names[m.Name]; dup {
			fl.Add(mf+".name", "manifest %q is already manifests[%d]", m.Name, j)
		} else {
			names[m.Name] = i
		}
		// The content is a template (values are filled in when a profile
		// is rendered), so it is not parsed as YAML here.
		if strings.TrimSpace(m.Content) == "" {
			fl.Add(mf+".content", "is empty")
		}
	}
}

// checkURL adds a field error unless s is an absolute URL with a host and
// one of the schemes. Credentials are refused where the URL ends up in an
// object every project can read.
func checkURL(fl *errs.FieldList, field, s string, noUserinfo bool, schemes ...string) {
	if s == "" {
		fl.Add(field, "is required")
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		fl.Add(field, "%q is not a URL: %v", s, err)
		return
	}
	if !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		fl.Add(field, "%q must be an absolute %s URL", s, strings.Join(schemes, " or "))
		return
	}
	if noUserinfo && u.User != nil {
		fl.Add(field, "must not hold credentials")
	}
}

// checkMapping accepts an empty document, null, or a single YAML mapping.
func checkMapping(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	dec := yaml.NewDecoder(strings.NewReader(s))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("not YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("must be a single YAML document")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.MappingNode:
		return nil
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return nil
	case root.Kind == yaml.SequenceNode:
		return errors.New("must be a YAML mapping, not a list")
	}
	return errors.New("must be a YAML mapping, not a scalar")
}

// checkKeyPath accepts the dotted key paths preset removals use
// (`config.disable`, `nodeSelector."kubernetes.io/os"`).
func checkKeyPath(s string) error {
	if s == "" {
		return errors.New("empty key path")
	}
	for i := 0; i < len(s); {
		if s[i] == '"' {
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return errors.New("unterminated quote")
			}
			i = j + 1
			if i < len(s) && s[i] != '.' {
				return errors.New("a quoted key must be followed by a dot or the end")
			}
		} else {
			j := strings.IndexByte(s[i:], '.')
			if j < 0 {
				j = len(s) - i
			}
			if j == 0 {
				return errors.New("empty key")
			}
			if strings.Contains(s[i:i+j], `"`) {
				return errors.New("a key with a quote inside must be quoted whole")
			}
			i += j
		}
		if i == len(s) {
			return nil
		}
		i++ // the dot
		if i == len(s) {
			return errors.New("ends with a dot")
		}
	}
	return nil
}
