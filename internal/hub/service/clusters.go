package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// storedCluster is a cluster as kept: with the controller's bookkeeping,
// which never leaves the hub (the join secret is sealed).
type storedCluster struct {
	v1.Cluster
	Internal clusterInternal `json:"internal"`
}

func (c *storedCluster) GetObjectMeta() *v1.ObjectMeta { return &c.Metadata }

type clusterInternal struct {
	// JoinToken is the cluster's join secret, sealed with the hub's key.
	JoinToken string `json:"joinToken"`
	// InitHost created the cluster; it keeps the init role for good.
	InitHost string `json:"initHost,omitempty"`
	// Pins are the versions trains resolved to ("profile/layer" → version),
	// kept until ResolveGeneration is raised or the profile version changes.
	Pins map[string]string `json:"pins,omitempty"`
	// PinnedProfiles and PinnedGeneration say what Pins were resolved for.
	PinnedProfiles   []v1.ClusterProfileRef `json:"pinnedProfiles,omitempty"`
	PinnedGeneration int64                  `json:"pinnedGeneration,omitempty"`
	ProvisionedOnce  bool                   `json:"provisionedOnce,omitempty"`
	// Members are the hosts holding InUse for this cluster.
	Members []string `json:"members,omitempty"`
	// Installed is the distro layer hash each host last confirmed running.
	Installed map[string]string `json:"installed,omitempty"`
}

func (s *Service) publicCluster(c *storedCluster) *v1.Cluster {
	out := c.Cluster
	return &out
}

func clusterSecretContext(project, name string) string { return "cluster/" + project + "/" + name }

// ListClusters lists a project's clusters.
func (s *Service) ListClusters(ctx context.Context, p *auth.Principal, project string) (v1.List[v1.Cluster], error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return v1.List[v1.Cluster]{}, err
	}
	all, rev, err := objects.List[storedCluster](ctx, s.store, v1.KindCluster, project)
	if err != nil {
		return v1.List[v1.Cluster]{}, err
	}
	out := v1.List[v1.Cluster]{Items: make([]v1.Cluster, 0, len(all)), Revision: rev}
	for _, c := range all {
		out.Items = append(out.Items, *s.publicCluster(c))
	}
	return out, nil
}

// GetCluster reads one cluster.
func (s *Service) GetCluster(ctx context.Context, p *auth.Principal, project, name string) (*v1.Cluster, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return nil, err
	}
	c, err := objects.Get[storedCluster](ctx, s.store, v1.KindCluster, project, name)
	if err != nil {
		return nil, fmt.Errorf("get cluster %q: %w", name, err)
	}
	return s.publicCluster(c), nil
}

// DecodeCluster turns a stored cluster (from a watch stream) into its API form.
func (s *Service) DecodeCluster(o store.Object) (*v1.Cluster, error) {
	c, err := objects.Decode[storedCluster](o)
	if err != nil {
		return nil, err
	}
	return s.publicCluster(c), nil
}

// CreateCluster validates a cluster and stores it Pending; the controller
// takes it from there.
func (s *Service) CreateCluster(ctx context.Context, p *auth.Principal, project string, in *v1.Cluster) (*v1.Cluster, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	c := &storedCluster{Cluster: v1.Cluster{
		TypeMeta: typeMeta(v1.KindCluster),
		Metadata: v1.ObjectMeta{Name: in.Metadata.Name, Project: project, Labels: in.Metadata.Labels},
		Spec:     in.Spec,
		Status:   v1.ClusterStatus{State: v1.ClusterPending, Health: v1.HealthUnknown},
	}}
	defaultPools(&c.Spec)
	var fl errs.FieldList
	validName(&fl, "metadata.name", c.Metadata.Name)
	validLabels(&fl, "metadata.labels", c.Metadata.Labels)
	if err := fl.Err(); err != nil {
		return nil, err
	}
	if err := s.validateCluster(ctx, c, nil); err != nil {
		return nil, err
	}
	if _, err := s.renderCluster(ctx, c); err != nil {
		return nil, err
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	sealed, err := s.secrets.Seal(hex.EncodeToString(secret), clusterSecretContext(project, c.Metadata.Name))
	if err != nil {
		return nil, err
	}
	c.Internal.JoinToken = sealed
	op, err := objects.CreateOp(v1.KindCluster, c, "")
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op, objects.EventOp(project, v1.KindCluster, c.Metadata.Name, objects.EventNormal, "Created", "cluster created by "+p.TokenName))
	if err != nil {
		return nil, fmt.Errorf("create cluster %q: %w", c.Metadata.Name, err)
	}
	out, err := objects.Written[storedCluster](rows, 0)
	if err != nil {
		return nil, err
	}
	return s.publicCluster(out), nil
}

// UpdateCluster changes a cluster's spec (day-2: scale, reconfigure,
// upgrade). The controller rolls the change out.
func (s *Service) UpdateCluster(ctx context.Context, p *auth.Principal, project, name string, in *v1.Cluster) (*v1.Cluster, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	if in.Metadata.Revision == 0 {
		return nil, errs.Field("metadata.revision", "required: the revision you read")
	}
	c, err := objects.Get[storedCluster](ctx, s.store, v1.KindCluster, project, name)
	if err != nil {
		return nil, fmt.Errorf("update cluster %q: %w", name, err)
	}
	switch c.Status.State {
	case v1.ClusterDeleting, v1.ClusterDeleted:
		return nil, fmt.Errorf("update cluster %q: it is %s: %w", name, c.Status.State, errs.ErrConflict)
	}
	old := c.Spec
	c.Spec, c.Metadata.Labels, c.Metadata.Revision = in.Spec, in.Metadata.Labels, in.Metadata.Revision
	defaultPools(&c.Spec)
	var fl errs.FieldList
	validLabels(&fl, "metadata.labels", c.Metadata.Labels)
	if err := fl.Err(); err != nil {
		return nil, err
	}
	if err := s.validateCluster(ctx, c, &old); err != nil {
		return nil, err
	}
	if _, err := s.renderCluster(ctx, c); err != nil {
		return nil, err
	}
	op, err := objects.UpdateOp(v1.KindCluster, c, "")
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op, objects.EventOp(project, v1.KindCluster, name, objects.EventNormal, "SpecChanged", "cluster spec changed by "+p.TokenName))
	if err != nil {
		return nil, fmt.Errorf("update cluster %q: %w", name, err)
	}
	out, err := objects.Written[storedCluster](rows, 0)
	if err != nil {
		return nil, err
	}
	return s.publicCluster(out), nil
}

// DeleteCluster starts tearing a cluster down; its hosts return to Ready as
// they confirm. Deleting a cluster that is already Deleted removes it.
func (s *Service) DeleteCluster(ctx context.Context, p *auth.Principal, project, name string) (*v1.Cluster, error) {
	return s.endCluster(ctx, p, project, name, false)
}

// AbortCluster stops a cluster that is still provisioning and cleans up
// like a delete.
func (s *Service) AbortCluster(ctx context.Context, p *auth.Principal, project, name string) (*v1.Cluster, error) {
	return s.endCluster(ctx, p, project, name, true)
}

func (s *Service) endCluster(ctx context.Context, p *auth.Principal, project, name string, abort bool) (*v1.Cluster, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	verb, done := "delete", "deleted"
	if abort {
		verb, done = "abort", "aborted"
	}
	for {
		c, err := objects.Get[storedCluster](ctx, s.store, v1.KindCluster, project, name)
		if err != nil {
			return nil, fmt.Errorf("%s cluster %q: %w", verb, name, err)
		}
		if abort && c.Status.State != v1.ClusterPending && c.Status.State != v1.ClusterProvisioning {
			return nil, fmt.Errorf("abort cluster %q: only a Pending or Provisioning cluster can be aborted; it is %s (delete it instead): %w", name, c.Status.State, errs.ErrConflict)
		}
		var ops []store.Op
		switch c.Status.State {
		case v1.ClusterDeleted:
			ops = []store.Op{objects.DeleteOp(v1.KindCluster, project, name, c.Metadata.Revision)}
		case v1.ClusterDeleting:
			return s.publicCluster(c), nil
		default:
			now := s.now().UTC()
			c.Status.State, c.Status.DeletingSince = v1.ClusterDeleting, &now
			c.Status.Reason = done + " by " + p.TokenName
			op, err := objects.UpdateOp(v1.KindCluster, c, "")
			if err != nil {
				return nil, err
			}
			reason := "Deleting"
			if abort {
				reason = "Aborted"
			}
			ops = []store.Op{op, objects.EventOp(project, v1.KindCluster, name, objects.EventNormal, reason, "cluster "+done+" by "+p.TokenName+"; tearing down on every host")}
		}
		rows, err := s.write(ctx, ops...)
		if errors.Is(err, errs.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s cluster %q: %w", verb, name, err)
		}
		out, err := objects.Written[storedCluster](rows, 0)
		if err != nil {
			return nil, err
		}
		return s.publicCluster(out), nil
	}
}

func defaultPools(spec *v1.ClusterSpec) {
	for i := range spec.Pools {
		if spec.Pools[i].UpdateStrategy == "" {
			spec.Pools[i].UpdateStrategy = v1.ExpandFirst
		}
	}
}

// validateCluster checks a cluster's spec against the project's hosts and
// profiles. old is the previous spec on update (nil on create).
func (s *Service) validateCluster(ctx context.Context, c *storedCluster, old *v1.ClusterSpec) error {
	var fl errs.FieldList
	spec := &c.Spec
	project := c.Metadata.Project
	if len(spec.Profiles) == 0 {
		fl.Add("spec.profiles", "one infra or full profile is needed")
	}
	base := 0
	for i, ref := range spec.Profiles {
		field := fmt.Sprintf("spec.profiles[%d]", i)
		cp, err := s.getProfile(ctx, project, ref.Name, ref.Version)
		if err != nil {
			fl.Add(field, "profile %s@%s: %v", ref.Name, ref.Version, err)
			continue
		}
		if cp.Spec.Type == v1.ProfileInfra || cp.Spec.Type == v1.ProfileFull {
			base++
			if i != 0 {
				fl.Add(field, "the %s profile %s must come first", cp.Spec.Type, ref.Name)
			}
		}
	}
	if len(spec.Profiles) > 0 && base != 1 {
		fl.Add("spec.profiles", "exactly one infra or full profile is needed, %d given", base)
	}

	// Hosts another cluster's spec names are taken even before its controller
	// has marked them InUse: two creates in a row must not share a host.
	taken := map[string]string{}
	others, _, err := objects.List[storedCluster](ctx, s.store, v1.KindCluster, project)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.Metadata.Name == c.Metadata.Name || o.Status.State == v1.ClusterDeleted {
			continue
		}
		for _, h := range allHosts(&o.Spec) {
			taken[h] = o.Metadata.Name
		}
		for _, h := range o.Internal.Members {
			taken[h] = o.Metadata.Name
		}
	}
	poolNames := map[string]bool{}
	seen := map[string]string{}
	cpPools, cpHosts := 0, 0
	arch := ""
	for i, pool := range spec.Pools {
		field := fmt.Sprintf("spec.pools[%s]", pool.Name)
		if pool.Name == "" {
			field = fmt.Sprintf("spec.pools[%d]", i)
		}
		validName(&fl, field+".name", pool.Name)
		if poolNames[pool.Name] {
			fl.Add(field+".name", "pool %q is named twice", pool.Name)
		}
		poolNames[pool.Name] = true
		if pool.UpdateStrategy != v1.ExpandFirst && pool.UpdateStrategy != v1.ContractFirst {
			fl.Add(field+".updateStrategy", "%q is not expand-first or contract-first", pool.UpdateStrategy)
		}
		if pool.AllowWorkloads && !pool.ControlPlane {
			fl.Add(field+".allowWorkloads", "only a control-plane pool takes this (workers always run workloads)")
		}
		if pool.ControlPlane {
			cpPools++
			cpHosts = len(pool.Hosts)
			if n := len(pool.Hosts); n != 1 && n != 3 && n != 5 {
				fl.Add(field+".hosts", "a control plane has 1, 3 or 5 hosts (etcd needs an odd quorum), %d given", n)
			}
		} else if len(pool.Hosts) == 0 {
			fl.Add(field+".hosts", "a worker pool needs at least one host")
		}
		for _, id := range pool.Hosts {
			hf := field + ".hosts[" + id + "]"
			if other, dup := seen[id]; dup {
				fl.Add(hf, "host is already in pool %q", other)
				continue
			}
			seen[id] = pool.Name
			h, err := objects.GetByKey[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, id)
			if err != nil || h.Metadata.Project != project {
				fl.Add(hf, "no such host in project %q", project)
				continue
			}
			if other, ok := taken[id]; ok {
				fl.Add(hf, "host is in cluster %q", other)
				continue
			}
			switch {
			case h.Status.State == v1.HostInUse && h.Status.Cluster == c.Metadata.Name:
			case h.Status.State == v1.HostInUse:
				fl.Add(hf, "host is in cluster %q", h.Status.Cluster)
			case h.Status.State != v1.HostReady:
				fl.Add(hf, "host is %s; only Ready hosts can join a cluster", h.Status.State)
			}
			if h.Status.Inventory != nil {
				if arch == "" {
					arch = h.Status.Inventory.Arch
				} else if h.Status.Inventory.Arch != arch {
					fl.Add(hf, "host is %s but the cluster's other hosts are %s", h.Status.Inventory.Arch, arch)
				}
			}
		}
	}
	if cpPools != 1 {
		fl.Add("spec.pools", "exactly one control-plane pool is needed, %d given", cpPools)
	}
	if cpHosts > 1 && spec.VIP == "" {
		fl.Add("spec.vip", "a control plane of %d hosts needs a VIP (an IP or DNS name) to join through", cpHosts)
	}
	if spec.VIP != "" && net.ParseIP(spec.VIP) == nil && !hostIDPattern.MatchString(spec.VIP) {
		fl.Add("spec.vip", "%q is neither an IP address nor a DNS name", spec.VIP)
	}
	if spec.ForceDeleteAfter != "" {
		if d, err := time.ParseDuration(spec.ForceDeleteAfter); err != nil || d <= 0 {
			fl.Add("spec.forceDeleteAfter", "%q is not a positive duration (e.g. 30m)", spec.ForceDeleteAfter)
		}
	}
	for i, ov := range spec.Overrides {
		if ov.Layer == "" {
			fl.Add(fmt.Sprintf("spec.overrides[%d].layer", i), "required")
		}
	}
	if old != nil && c.Internal.InitHost != "" && !slices.Contains(allHosts(spec), c.Internal.InitHost) {
		fl.Add("spec.pools", "host %s created the cluster and cannot leave it; delete the cluster instead", c.Internal.InitHost)
	}
	return fl.Err()
}

func allHosts(spec *v1.ClusterSpec) []string {
	var out []string
	for _, p := range spec.Pools {
		out = append(out, p.Hosts...)
	}
	return out
}
