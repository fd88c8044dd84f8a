package profile

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/Masterminds/semver/v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// Normalize fills in what a profile may leave out: apiVersion and kind, and
// each layer's name (its pack's name). It changes p in place.
func Normalize(p *v1.ClusterProfile) {
	if p.APIVersion == "" {
		p.APIVersion = v1.APIVersion
	}
	if p.Kind == "" {
		p.Kind = v1.KindClusterProfile
	}
	for i := range p.Spec.Layers {
		if p.Spec.Layers[i].Name == "" {
			p.Spec.Layers[i].Name = p.Spec.Layers[i].Pack
		}
	}
}

// DeepCopy returns a copy of p that shares nothing with it.
func DeepCopy(p *v1.ClusterProfile) *v1.ClusterProfile {
	if p == nil {
		return nil
	}
	c := *p
	c.Metadata.Labels = maps.Clone(p.Metadata.Labels)
	c.Spec.Layers = slices.Clone(p.Spec.Layers)
	for i := range c.Spec.Layers {
		c.Spec.Layers[i].Presets = slices.Clone(c.Spec.Layers[i].Presets)
		c.Spec.Layers[i].Manifests = slices.Clone(c.Spec.Layers[i].Manifests)
	}
	c.Spec.Variables = slices.Clone(p.Spec.Variables)
	c.Status.Resolved = slices.Clone(p.Status.Resolved)
	return &c
}

// CheckUpdate says whether old may be replaced by new. An unpublished
// version can change freely (and be published); a published one cannot
// change at all and cannot be unpublished: clusters run it by version, so
// the version has to keep meaning the same stack. Status (where the trains
// are now) is not part of the version and may change. CheckUpdate does not
// validate new: Validate does.
func CheckUpdate(old, new *v1.ClusterProfile) error {
	var fl errs.FieldList
	if old.Metadata.Name != new.Metadata.Name {
		fl.Add("metadata.name", "cannot change (from %q to %q); clone the profile instead", old.Metadata.Name, new.Metadata.Name)
	}
	if !old.Spec.Published {
		return fl.Err()
	}
	a, b := DeepCopy(old), DeepCopy(new)
	Normalize(a)
	Normalize(b)
	what := fmt.Sprintf("profile %s %s is published and cannot change; bump or clone it", a.Metadata.Name, a.Spec.Version)
	if !b.Spec.Published {
		fl.Add("spec.published", "profile %s %s is published and cannot be unpublished", a.Metadata.Name, a.Spec.Version)
	}
	if a.Spec.Type != b.Spec.Type {
		fl.Add("spec.type", "%s", what)
	}
	if a.Spec.Version != b.Spec.Version {
		fl.Add("spec.version", "%s", what)
	}
	if a.Spec.Description != b.Spec.Description {
		fl.Add("spec.description", "%s", what)
	}
	if len(a.Spec.Layers) != len(b.Spec.Layers) {
		fl.Add("spec.layers", "%s", what)
	} else {
		for i := range a.Spec.Layers {
			if !sameJSON(a.Spec.Layers[i], b.Spec.Layers[i]) {
				fl.Add(layerField(b.Spec.Layers[i], i), "%s", what)
			}
		}
	}
	if !sameJSON(a.Spec.Variables, b.Spec.Variables) {
		fl.Add("spec.variables", "%s", what)
	}
	return fl.Err()
}

// sameJSON compares by JSON form, so that a nil and an empty list (which
// the API does not tell apart) are the same.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if string(ja) == "null" {
		ja = []byte("[]")
	}
	if string(jb) == "null" {
		jb = []byte("[]")
	}
	return string(ja) == string(jb)
}

// fresh is a copy of p as a new, unpublished object: no store bookkeeping,
// no resolved status.
func fresh(p *v1.ClusterProfile) *v1.ClusterProfile {
	c := DeepCopy(p)
	Normalize(c)
	c.Metadata = v1.ObjectMeta{Name: c.Metadata.Name, Project: c.Metadata.Project, Labels: c.Metadata.Labels}
	c.Spec.Published = false
	c.Status = v1.ClusterProfileStatus{}
	return c
}

// Bump returns a new unpublished copy of p with its version's major, minor
// or patch part raised (the parts after it reset to 0; pre-release and
// build metadata dropped).
func Bump(p *v1.ClusterProfile, part string) (*v1.ClusterProfile, error) {
	v, err := semver.StrictNewVersion(p.Spec.Version)
	if err != nil {
		return nil, &errs.FieldError{Field: "spec.version", Message: fmt.Sprintf("profile %s: %q is not a semantic version", p.Metadata.Name, p.Spec.Version)}
	}
	var next string
	switch part {
	case "major":
		next = fmt.Sprintf("%d.0.0", v.Major()+1)
	case "minor":
		next = fmt.Sprintf("%d.%d.0", v.Major(), v.Minor()+1)
	case "patch":
		next = fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch()+1)
	default:
		return nil, invalidf("bump profile %s: %q is not major, minor or patch", p.Metadata.Name, part)
	}
	c := fresh(p)
	c.Spec.Version = next
	return c, nil
}

// Clone returns a new unpublished copy of p named newName at newVersion
// ("" keeps p's version).
func Clone(p *v1.ClusterProfile, newName, newVersion string) (*v1.ClusterProfile, error) {
	var fl errs.FieldList
	if !reProfileName.MatchString(newName) {
		fl.Add("metadata.name", "%q is not a DNS label (lower-case letters, digits and -, at most 63)", newName)
	}
	if newVersion == "" {
		newVersion = p.Spec.Version
	}
	if _, err := semver.StrictNewVersion(newVersion); err != nil {
		fl.Add("spec.version", "%q is not a semantic version (1.0.0)", newVersion)
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	c := fresh(p)
	c.Metadata.Name = newName
	c.Spec.Version = newVersion
	return c, nil
}
