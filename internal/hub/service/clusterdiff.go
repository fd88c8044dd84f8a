package service

import (
	"context"
	"fmt"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
)

// DiffCluster says what each host would do if proposed replaced the
// cluster's spec (nil proposed: the current spec against what the hosts were
// last told), without changing anything.
func (s *Service) DiffCluster(ctx context.Context, p *auth.Principal, project, name string, proposed *v1.ClusterSpec) (*v1.ClusterDiff, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return nil, err
	}
	c, err := objects.Get[storedCluster](ctx, s.store, v1.KindCluster, project, name)
	if err != nil {
		return nil, fmt.Errorf("diff cluster %q: %w", name, err)
	}
	if proposed != nil {
		old := c.Spec
		c.Spec = *proposed
		defaultPools(&c.Spec)
		if err := s.validateCluster(ctx, c, &old); err != nil {
			return nil, err
		}
	}
	r, err := s.renderCluster(ctx, c)
	if err != nil {
		return nil, err
	}
	out := &v1.ClusterDiff{Cluster: name}
	wanted := map[string]bool{}
	for _, pool := range c.Spec.Pools {
		for _, id := range pool.Hosts {
			wanted[id] = true
			role := v1.RoleWorker
			switch {
			case id == c.Internal.InitHost || c.Internal.InitHost == "" && pool.ControlPlane && id == pool.Hosts[0]:
				role = v1.RoleInit
			case pool.ControlPlane:
				role = v1.RoleControlPlane
			}
			var cur *v1.HostCluster
			if spec, err := objects.GetByKey[v1.HostSpec](ctx, s.store, v1.KindHostSpec, id); err == nil {
				cur = spec.Cluster
			}
			out.Hosts = append(out.Hosts, v1.HostDiff{Host: id, Role: role, Actions: hostActions(cur, r, role)})
		}
	}
	for _, id := range c.Internal.Members {
		if !wanted[id] {
			out.Hosts = append(out.Hosts, v1.HostDiff{Host: id, Actions: []string{"leave the cluster: remove every layer and the distro, then return to Ready"}})
		}
	}
	return out, nil
}

func hostActions(cur *v1.HostCluster, r *renderedCluster, role string) []string {
	if cur == nil || cur.Remove {
		acts := []string{fmt.Sprintf("install %s %s as %s", r.Distro.Pack, r.Distro.Version, role)}
		if r.OS != nil {
			acts = append([]string{fmt.Sprintf("apply os layer %s %s", r.OS.Pack, r.OS.Version)}, acts...)
		}
		for _, l := range r.Layers {
			acts = append(acts, "apply layer "+describeLayer(l))
		}
		return acts
	}
	acts := []string{}
	if r.OS != nil && (cur.OS == nil || cur.OS.Hash != r.OS.Hash) {
		acts = append(acts, "reapply os layer "+r.OS.Pack+" "+r.OS.Version)
	}
	if cur.Distro != nil && cur.Distro.Version != r.Distro.Version {
		acts = append(acts, fmt.Sprintf("upgrade %s %s → %s (cordon, drain, replace, uncordon; waits for its turn)", r.Distro.Pack, cur.Distro.Version, r.Distro.Version))
	} else if cur.Distro != nil && cur.Distro.Hash != r.Distro.Hash {
		acts = append(acts, fmt.Sprintf("reconfigure %s %s", r.Distro.Pack, r.Distro.Version))
	}
	curLayers := map[string]v1.RenderedLayer{}
	for _, l := range cur.Layers {
		curLayers[l.Name] = l
	}
	for _, l := range r.Layers {
		old, ok := curLayers[l.Name]
		delete(curLayers, l.Name)
		switch {
		case !ok:
			acts = append(acts, "apply layer "+describeLayer(l))
		case old.Version != l.Version:
			acts = append(acts, fmt.Sprintf("upgrade layer %s %s → %s", l.Name, old.Version, l.Version))
		case old.Hash != l.Hash:
			acts = append(acts, "reapply layer "+l.Name+" (values or manifests changed)")
		}
	}
	var gone []string
	for n := range curLayers {
		gone = append(gone, n)
	}
	slices.Sort(gone)
	for _, n := range gone {
		acts = append(acts, "remove layer "+n)
	}
	if cur.Role != role && cur.Role != "" {
		acts = append(acts, fmt.Sprintf("change role %s → %s", cur.Role, role))
	}
	return acts
}

func describeLayer(l v1.RenderedLayer) string {
	if l.Pack == "" {
		return l.Name + " (manifests)"
	}
	return l.Name + " " + l.Version
}
