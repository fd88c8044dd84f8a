package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/profile"
)

// Each profile version is its own stored object named "<name>@<version>";
// the API shows name and version apart.
func profileKey(name, version string) string { return name + "@" + version }

func decodeProfile(o store.Object) (*v1.ClusterProfile, error) {
	p, err := objects.Decode[v1.ClusterProfile](o)
	if err != nil {
		return nil, err
	}
	p.Metadata.Name, _, _ = strings.Cut(o.Name, "@")
	return p, nil
}

func profileOp(typ store.OpType, p *v1.ClusterProfile) (store.Op, error) {
	c := *p
	c.Metadata.Name = profileKey(p.Metadata.Name, p.Spec.Version)
	o, err := objects.Encode(v1.KindClusterProfile, &c, "")
	if err != nil {
		return store.Op{}, err
	}
	return store.Op{Type: typ, Object: o, ExpectRevision: p.Metadata.Revision}, nil
}

func (s *Service) profileOpts() profile.ValidateOptions {
	return profile.ValidateOptions{Resolver: catalog.Resolve}
}

// ListProfiles lists profile versions in a project, optionally of one name,
// ordered by name and then version.
func (s *Service) ListProfiles(ctx context.Context, p *auth.Principal, project, name string) (v1.List[v1.ClusterProfile], error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return v1.List[v1.ClusterProfile]{}, err
	}
	rows, rev, err := s.store.List(ctx, store.ListOptions{Kind: v1.KindClusterProfile, Project: project})
	if err != nil {
		return v1.List[v1.ClusterProfile]{}, err
	}
	out := v1.List[v1.ClusterProfile]{Items: []v1.ClusterProfile{}, Revision: rev}
	for _, o := range rows {
		cp, err := decodeProfile(o)
		if err != nil {
			return out, err
		}
		if name == "" || cp.Metadata.Name == name {
			out.Items = append(out.Items, *cp)
		}
	}
	slices.SortStableFunc(out.Items, func(a, b v1.ClusterProfile) int {
		if c := strings.Compare(a.Metadata.Name, b.Metadata.Name); c != 0 {
			return c
		}
		return compareVersions(a.Spec.Version, b.Spec.Version)
	})
	if name != "" && len(out.Items) == 0 {
		return out, fmt.Errorf("profile %q: %w", name, errs.ErrNotFound)
	}
	return out, nil
}

func compareVersions(a, b string) int {
	va, ea := semver.NewVersion(a)
	vb, eb := semver.NewVersion(b)
	if ea != nil || eb != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

// GetProfile reads one version; version "latest" (or "") is the newest.
func (s *Service) GetProfile(ctx context.Context, p *auth.Principal, project, name, version string) (*v1.ClusterProfile, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return nil, err
	}
	return s.getProfile(ctx, project, name, version)
}

func (s *Service) getProfile(ctx context.Context, project, name, version string) (*v1.ClusterProfile, error) {
	if version == "" || version == "latest" {
		l, err := s.ListProfiles(ctx, &auth.Principal{Roles: []v1.ProjectRole{{Project: project, Role: v1.RoleViewer}}}, project, name)
		if err != nil {
			return nil, err
		}
		latest := l.Items[len(l.Items)-1]
		return &latest, nil
	}
	o, err := s.store.Get(ctx, v1.KindClusterProfile, project, profileKey(name, version))
	if err != nil {
		return nil, fmt.Errorf("profile %q version %q: %w", name, version, err)
	}
	return decodeProfile(o)
}

// CreateProfile stores a new profile version after validating it against
// the catalog.
func (s *Service) CreateProfile(ctx context.Context, p *auth.Principal, project string, in *v1.ClusterProfile) (*v1.ClusterProfile, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	cp := profile.DeepCopy(in)
	profile.Normalize(cp)
	cp.Metadata = v1.ObjectMeta{Name: in.Metadata.Name, Project: project, Labels: in.Metadata.Labels}
	cp.Status = v1.ClusterProfileStatus{}
	if err := s.validateProfile(ctx, cp); err != nil {
		return nil, err
	}
	s.resolveStatus(ctx, cp)
	op, err := profileOp(store.OpCreate, cp)
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op, objects.EventOp(project, v1.KindClusterProfile, profileKey(cp.Metadata.Name, cp.Spec.Version), objects.EventNormal, "Created", "profile version created by "+p.TokenName))
	if err != nil {
		return nil, fmt.Errorf("create profile %q version %q: %w", cp.Metadata.Name, cp.Spec.Version, err)
	}
	return decodeProfile(rows[0])
}

func (s *Service) validateProfile(ctx context.Context, cp *v1.ClusterProfile) error {
	var fl errs.FieldList
	validName(&fl, "metadata.name", cp.Metadata.Name)
	validLabels(&fl, "metadata.labels", cp.Metadata.Labels)
	if err := fl.Err(); err != nil {
		return err
	}
	return profile.Validate(cp, s.packLookup(ctx), s.profileOpts())
}

// UpdateProfile replaces an unpublished version (publishing it if asked).
// Published versions are immutable.
func (s *Service) UpdateProfile(ctx context.Context, p *auth.Principal, project, name, version string, in *v1.ClusterProfile) (*v1.ClusterProfile, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	old, err := s.getProfile(ctx, project, name, version)
	if err != nil {
		return nil, err
	}
	cp := profile.DeepCopy(in)
	profile.Normalize(cp)
	if cp.Metadata.Name == "" {
		cp.Metadata.Name = name
	}
	if cp.Spec.Version == "" {
		cp.Spec.Version = version
	}
	var fl errs.FieldList
	if cp.Spec.Version != version {
		fl.Add("spec.version", "cannot change (from %q to %q); bump or clone instead", version, cp.Spec.Version)
	}
	if in.Metadata.Revision == 0 {
		fl.Add("metadata.revision", "required: the revision you read")
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	if err := profile.CheckUpdate(old, cp); err != nil {
		return nil, err
	}
	cp.Metadata = v1.ObjectMeta{Name: name, Project: project, Labels: cp.Metadata.Labels, Revision: in.Metadata.Revision}
	cp.Status = old.Status // status is the hub's, never the caller's
	if err := s.validateProfile(ctx, cp); err != nil {
		return nil, err
	}
	s.resolveStatus(ctx, cp)
	op, err := profileOp(store.OpUpdate, cp)
	if err != nil {
		return nil, err
	}
	reason := "Updated"
	if cp.Spec.Published && !old.Spec.Published {
		reason = "Published"
	}
	rows, err := s.write(ctx, op, objects.EventOp(project, v1.KindClusterProfile, profileKey(name, version), objects.EventNormal, reason, "profile version "+strings.ToLower(reason)+" by "+p.TokenName))
	if err != nil {
		return nil, fmt.Errorf("update profile %q version %q: %w", name, version, err)
	}
	return decodeProfile(rows[0])
}

// PublishProfile freezes a version.
func (s *Service) PublishProfile(ctx context.Context, p *auth.Principal, project, name, version string) (*v1.ClusterProfile, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	cur, err := s.getProfile(ctx, project, name, version)
	if err != nil {
		return nil, err
	}
	if cur.Spec.Published {
		return cur, nil
	}
	cur.Spec.Published = true
	return s.UpdateProfile(ctx, p, project, name, version, cur)
}

// DeleteProfile removes a version.
func (s *Service) DeleteProfile(ctx context.Context, p *auth.Principal, project, name, version string) error {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return err
	}
	key := profileKey(name, version)
	if _, err := s.write(ctx, objects.DeleteOp(v1.KindClusterProfile, project, key, 0),
		objects.EventOp(project, v1.KindClusterProfile, key, objects.EventNormal, "Deleted", "profile version deleted by "+p.TokenName)); err != nil {
		return fmt.Errorf("delete profile %q version %q: %w", name, version, err)
	}
	return nil
}

// CloneProfile copies a version to a new name and/or version, unpublished.
func (s *Service) CloneProfile(ctx context.Context, p *auth.Principal, project, name, version, newName, newVersion string) (*v1.ClusterProfile, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	src, err := s.getProfile(ctx, project, name, version)
	if err != nil {
		return nil, err
	}
	if newName == "" {
		newName = name
	}
	if newVersion == "" {
		newVersion = src.Spec.Version
	}
	c, err := profile.Clone(src, newName, newVersion)
	if err != nil {
		return nil, err
	}
	return s.CreateProfile(ctx, p, project, c)
}

// BumpProfile makes the next major, minor or patch version, unpublished.
func (s *Service) BumpProfile(ctx context.Context, p *auth.Principal, project, name, version, part string) (*v1.ClusterProfile, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	src, err := s.getProfile(ctx, project, name, version)
	if err != nil {
		return nil, err
	}
	b, err := profile.Bump(src, part)
	if err != nil {
		return nil, err
	}
	return s.CreateProfile(ctx, p, project, b)
}

// RenderProfile returns exactly what a host would receive for a version
// with the given variables.
func (s *Service) RenderProfile(ctx context.Context, p *auth.Principal, project, name, version string, vars map[string]string) (*v1.RenderedProfile, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return nil, err
	}
	cp, err := s.getProfile(ctx, project, name, version)
	if err != nil {
		return nil, err
	}
	return profile.Render(cp, s.packLookup(ctx), profile.RenderOptions{Resolver: catalog.Resolve, Vars: vars})
}

// resolveStatus records where each layer's version resolves now. Trains move
// when registries gain versions; the train controller keeps this current.
func (s *Service) resolveStatus(ctx context.Context, cp *v1.ClusterProfile) bool {
	lookup := s.packLookup(ctx)
	var resolved []v1.ResolvedLayerVersion
	for _, l := range cp.Spec.Layers {
		if l.Pack == "" {
			continue
		}
		pk, err := lookup.Pack(l.Registry, l.Pack)
		if err != nil {
			continue
		}
		pv, err := catalog.ResolvePack(&pk.Spec, l.Version)
		if err != nil {
			continue
		}
		resolved = append(resolved, v1.ResolvedLayerVersion{Layer: l.Name, Version: pv.Version})
	}
	b, _ := json.Marshal(resolved)
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:])
	if slices.Equal(resolved, cp.Status.Resolved) && cp.Status.ResolvedHash == hash {
		return false
	}
	cp.Status.Resolved, cp.Status.ResolvedHash = resolved, hash
	return true
}
