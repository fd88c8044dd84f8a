package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// PackFilter selects packs in ListPacks; empty fields select everything.
type PackFilter struct {
	Registry string
	Layer    string // os, k8s, cni, csi, addon
	Type     string // distro, helm, manifest
	// Name selects packs whose name contains it.
	Name string
}

func (f PackFilter) query() url.Values {
	q := url.Values{}
	setIf(q, "registry", f.Registry)
	setIf(q, "layer", f.Layer)
	setIf(q, "type", f.Type)
	setIf(q, "name", f.Name)
	return q
}

// LatestVersion is the version name that reads the newest version of a
// profile.
const LatestVersion = "latest"

// The bodies of the profile actions. They mirror the hub's request types
// rather than importing them: the hub's packages are not part of the
// client's API.
type (
	cloneRequest struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	bumpRequest struct {
		Part string `json:"part"`
	}
	renderRequest struct {
		Variables map[string]string `json:"variables,omitempty"`
	}
)

// --- Registries ---

// ListRegistries lists every registry; any token may read them.
func (c *Client) ListRegistries(ctx context.Context) (*v1.List[v1.Registry], error) {
	return list[v1.Registry](ctx, c, apiPath("registries"), nil)
}

// GetRegistry returns one registry with its sync status.
func (c *Client) GetRegistry(ctx context.Context, name string) (*v1.Registry, error) {
	if name == "" {
		return nil, errNoName("registry")
	}
	return get[v1.Registry](ctx, c, apiPath("registries", name))
}

// CreateRegistry adds r (hub admins only). The hub syncs it at once; a
// failed first sync still creates the registry, with the error in its
// status.
func (c *Client) CreateRegistry(ctx context.Context, r *v1.Registry) (*v1.Registry, error) {
	if r.Metadata.Name == "" {
		return nil, errNoName("registry")
	}
	typeMeta(&r.TypeMeta, v1.KindRegistry)
	return send[v1.Registry](ctx, c, http.MethodPost, apiPath("registries"), r)
}

// UpdateRegistry replaces r's spec and labels and syncs it (hub admins
// only); r.Metadata.Revision must be the revision it was read at.
func (c *Client) UpdateRegistry(ctx context.Context, r *v1.Registry) (*v1.Registry, error) {
	if r.Metadata.Name == "" {
		return nil, errNoName("registry")
	}
	typeMeta(&r.TypeMeta, v1.KindRegistry)
	return send[v1.Registry](ctx, c, http.MethodPut, apiPath("registries", r.Metadata.Name), r)
}

// DeleteRegistry removes a registry and its packs (hub admins only).
func (c *Client) DeleteRegistry(ctx context.Context, name string) error {
	if name == "" {
		return errNoName("registry")
	}
	return c.del(ctx, apiPath("registries", name))
}

// SyncRegistry syncs a registry now and returns it with the new status. A
// sync that fails is not an error of the call: the registry keeps its last
// good packs and Status.LastError says why.
func (c *Client) SyncRegistry(ctx context.Context, name string) (*v1.Registry, error) {
	if name == "" {
		return nil, errNoName("registry")
	}
	return send[v1.Registry](ctx, c, http.MethodPost, apiPath("registries", name, "sync"), nil)
}

// --- Packs ---

// ListPacks lists the packs of every registry that match f.
func (c *Client) ListPacks(ctx context.Context, f PackFilter) (*v1.List[v1.Pack], error) {
	return list[v1.Pack](ctx, c, apiPath("packs"), f.query())
}

// GetPack returns the pack name of registry. With registry "" it finds the
// pack the way a profile layer without a registry does: the one registry
// that has it, the built-in one when several do, else an error that names
// them.
func (c *Client) GetPack(ctx context.Context, registry, name string) (*v1.Pack, error) {
	if name == "" {
		return nil, errNoName("pack")
	}
	if registry != "" {
		return get[v1.Pack](ctx, c, apiPath("packs", registry, name))
	}
	// The hub has no route for a pack by name alone; the name filter
	// matches substrings, so the exact name is picked out here.
	l, err := c.ListPacks(ctx, PackFilter{Name: name})
	if err != nil {
		return nil, err
	}
	var found []*v1.Pack
	for i := range l.Items {
		if l.Items[i].Spec.Name == name {
			found = append(found, &l.Items[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("pack %q is in no registry: %w", name, ErrNotFound)
	case 1:
		return found[0], nil
	}
	regs := make([]string, len(found))
	for i, p := range found {
		if p.Spec.Registry == v1.RegistryBuiltin {
			return p, nil
		}
		regs[i] = p.Spec.Registry
	}
	return nil, fmt.Errorf("pack %q is in registries %s: name one as REGISTRY/%s: %w", name, strings.Join(regs, ", "), name, ErrInvalid)
}

// --- Cluster profiles ---

// ListProfiles lists a project's profile versions ordered by name and then
// version; with name, the versions of that profile only (ErrNotFound when
// it has none).
func (c *Client) ListProfiles(ctx context.Context, project, name string) (*v1.List[v1.ClusterProfile], error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if name == "" {
		return list[v1.ClusterProfile](ctx, c, apiPath("projects", project, "profiles"), nil)
	}
	return list[v1.ClusterProfile](ctx, c, apiPath("projects", project, "profiles", name), nil)
}

// profilePath is the path of one profile version; version "" is the
// newest.
func profilePath(project, name, version string, rest ...string) (string, error) {
	if project == "" {
		return "", errNoName("project")
	}
	if name == "" {
		return "", errNoName("profile")
	}
	if version == "" {
		version = LatestVersion
	}
	return apiPath(append([]string{"projects", project, "profiles", name, version}, rest...)...), nil
}

// GetProfile returns one version of a profile; version "" or "latest" is
// the newest.
func (c *Client) GetProfile(ctx context.Context, project, name, version string) (*v1.ClusterProfile, error) {
	path, err := profilePath(project, name, version)
	if err != nil {
		return nil, err
	}
	return get[v1.ClusterProfile](ctx, c, path)
}

// CreateProfile stores p as a new version (p.Spec.Version) of profile
// p.Metadata.Name; the hub validates it against the pack catalog first.
func (c *Client) CreateProfile(ctx context.Context, project string, p *v1.ClusterProfile) (*v1.ClusterProfile, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if p.Metadata.Name == "" {
		return nil, errNoName("profile")
	}
	typeMeta(&p.TypeMeta, v1.KindClusterProfile)
	return send[v1.ClusterProfile](ctx, c, http.MethodPost, apiPath("projects", project, "profiles"), p)
}

// UpdateProfile replaces the unpublished version p.Spec.Version of profile
// p.Metadata.Name; p.Metadata.Revision must be the revision it was read at.
// A published version cannot change (the hub answers ErrInvalid).
func (c *Client) UpdateProfile(ctx context.Context, project string, p *v1.ClusterProfile) (*v1.ClusterProfile, error) {
	if p.Spec.Version == "" {
		return nil, fmt.Errorf("profile %q: no spec.version to update", p.Metadata.Name)
	}
	path, err := profilePath(project, p.Metadata.Name, p.Spec.Version)
	if err != nil {
		return nil, err
	}
	typeMeta(&p.TypeMeta, v1.KindClusterProfile)
	return send[v1.ClusterProfile](ctx, c, http.MethodPut, path, p)
}

// DeleteProfile deletes one version of a profile.
func (c *Client) DeleteProfile(ctx context.Context, project, name, version string) error {
	if version == "" {
		return fmt.Errorf("profile %q: name the version to delete", name)
	}
	path, err := profilePath(project, name, version)
	if err != nil {
		return err
	}
	return c.del(ctx, path)
}

// PublishProfile freezes a version; publishing a published one is not an
// error.
func (c *Client) PublishProfile(ctx context.Context, project, name, version string) (*v1.ClusterProfile, error) {
	if version == "" {
		return nil, fmt.Errorf("profile %q: name the version to publish", name)
	}
	path, err := profilePath(project, name, version, "publish")
	if err != nil {
		return nil, err
	}
	return send[v1.ClusterProfile](ctx, c, http.MethodPost, path, nil)
}

// CloneProfile copies a version, unpublished, to newName ("" keeps the
// name) at newVersion ("" keeps the version).
func (c *Client) CloneProfile(ctx context.Context, project, name, version, newName, newVersion string) (*v1.ClusterProfile, error) {
	path, err := profilePath(project, name, version, "clone")
	if err != nil {
		return nil, err
	}
	return send[v1.ClusterProfile](ctx, c, http.MethodPost, path, cloneRequest{Name: newName, Version: newVersion})
}

// BumpProfile makes the next "major", "minor" or "patch" version of a
// version, unpublished, and returns it.
func (c *Client) BumpProfile(ctx context.Context, project, name, version, part string) (*v1.ClusterProfile, error) {
	path, err := profilePath(project, name, version, "bump")
	if err != nil {
		return nil, err
	}
	return send[v1.ClusterProfile](ctx, c, http.MethodPost, path, bumpRequest{Part: part})
}

// RenderProfile returns exactly what a host would receive for a version
// with vars as the values of the profile's variables (the others take
// their defaults).
func (c *Client) RenderProfile(ctx context.Context, project, name, version string, vars map[string]string) (*v1.RenderedProfile, error) {
	path, err := profilePath(project, name, version, "render")
	if err != nil {
		return nil, err
	}
	out, err := send[v1.RenderedProfile](ctx, c, http.MethodPost, path, renderRequest{Variables: vars})
	if err == nil && out == nil {
		return nil, fmt.Errorf("render profile %q: the hub answered without a body", name)
	}
	return out, err
}
