package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// HostFilter selects hosts in ListHosts.
type HostFilter struct {
	State  string
	Health string
	// Selector is "k=v,k2!=v2,k3,!k4" as in Kubernetes equality selectors.
	Selector string
}

type requirement struct {
	key, value string
	op         string // "=", "!=", "exists", "!exists"
}

// ParseSelector parses an equality-based label selector.
func ParseSelector(sel string) ([]requirement, error) {
	var out []requirement
	for part := range strings.SplitSeq(sel, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var r requirement
		switch {
		case strings.Contains(part, "!="):
			k, v, _ := strings.Cut(part, "!=")
			r = requirement{key: strings.TrimSpace(k), value: strings.TrimSpace(v), op: "!="}
		case strings.Contains(part, "=="):
			k, v, _ := strings.Cut(part, "==")
			r = requirement{key: strings.TrimSpace(k), value: strings.TrimSpace(v), op: "="}
		case strings.Contains(part, "="):
			k, v, _ := strings.Cut(part, "=")
			r = requirement{key: strings.TrimSpace(k), value: strings.TrimSpace(v), op: "="}
		case strings.HasPrefix(part, "!"):
			r = requirement{key: strings.TrimSpace(part[1:]), op: "!exists"}
		default:
			r = requirement{key: part, op: "exists"}
		}
		if !labelKey.MatchString(r.key) {
			return nil, errs.Field("selector", "bad label key %q in %q", r.key, part)
		}
		out = append(out, r)
	}
	return out, nil
}

func matches(reqs []requirement, labels map[string]string) bool {
	for _, r := range reqs {
		v, ok := labels[r.key]
		switch r.op {
		case "=":
			if !ok || v != r.value {
				return false
			}
		case "!=":
			if ok && v == r.value {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		}
	}
	return true
}

// HostMatcher returns a predicate for f, or an error naming the bad part.
func HostMatcher(f HostFilter) (func(*v1.EdgeHost) bool, error) {
	reqs, err := ParseSelector(f.Selector)
	if err != nil {
		return nil, err
	}
	if f.State != "" && !slices.ContainsFunc([]string{v1.HostUnpaired, v1.HostPendingApproval, v1.HostReady, v1.HostInUse}, func(s string) bool { return strings.EqualFold(s, f.State) }) {
		return nil, errs.Field("state", "%q is not one of Unpaired, PendingApproval, Ready, InUse", f.State)
	}
	if f.Health != "" && !slices.ContainsFunc([]string{v1.HealthUnknown, v1.HealthHealthy, v1.HealthUnhealthy, v1.HealthOffline}, func(s string) bool { return strings.EqualFold(s, f.Health) }) {
		return nil, errs.Field("health", "%q is not one of Unknown, Healthy, Unhealthy, Offline", f.Health)
	}
	return func(h *v1.EdgeHost) bool {
		return (f.State == "" || strings.EqualFold(h.Status.State, f.State)) &&
			(f.Health == "" || strings.EqualFold(h.Status.Health, f.Health)) &&
			matches(reqs, h.Metadata.Labels)
	}, nil
}

// present fills in what is derived, not stored: the display name and the
// last-seen time kept in memory.
func (s *Service) present(h *v1.EdgeHost) *v1.EdgeHost {
	h.Spec.DisplayName = h.Metadata.Labels[v1.LabelName]
	if t, ok := s.presence.lastSeen(h.Metadata.Name); ok {
		t := t.UTC()
		h.Status.LastSeen = &t
	}
	return h
}

// PresentHost is present for callers outside the package (watch streams).
func (s *Service) PresentHost(h *v1.EdgeHost) *v1.EdgeHost { return s.present(h) }

// ListHosts lists a project's hosts that match f.
func (s *Service) ListHosts(ctx context.Context, p *auth.Principal, project string, f HostFilter) (v1.List[v1.EdgeHost], error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return v1.List[v1.EdgeHost]{}, err
	}
	match, err := HostMatcher(f)
	if err != nil {
		return v1.List[v1.EdgeHost]{}, err
	}
	all, rev, err := objects.List[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, project)
	if err != nil {
		return v1.List[v1.EdgeHost]{}, err
	}
	out := v1.List[v1.EdgeHost]{Items: []v1.EdgeHost{}, Revision: rev}
	for _, h := range all {
		if match(h) {
			out.Items = append(out.Items, *s.present(h))
		}
	}
	return out, nil
}

// GetHost reads one host.
func (s *Service) GetHost(ctx context.Context, p *auth.Principal, project, id string) (*v1.EdgeHost, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return nil, err
	}
	h, err := objects.Get[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, project, id)
	if err != nil {
		return nil, fmt.Errorf("get host %q: %w", id, err)
	}
	return s.present(h), nil
}

// RegisterHost pre-registers a host by ID: it is Unpaired until its agent
// enrolls, which then pairs it without a token.
func (s *Service) RegisterHost(ctx context.Context, p *auth.Principal, project string, in *v1.EdgeHost) (*v1.EdgeHost, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleSiteOperator); err != nil {
		return nil, err
	}
	var fl errs.FieldList
	validHostID(&fl, "metadata.name", in.Metadata.Name)
	validLabels(&fl, "metadata.labels", in.Metadata.Labels)
	if err := fl.Err(); err != nil {
		return nil, err
	}
	id := in.Metadata.Name
	if existing, err := s.store.GetByKey(ctx, v1.KindEdgeHost, id); err == nil {
		if existing.Project != project {
			// Do not reveal which project holds it.
			return nil, fmt.Errorf("register host %q: the ID is taken: %w", id, errs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("register host %q: %w", id, errs.ErrAlreadyExists)
	}
	h := &v1.EdgeHost{
		TypeMeta: typeMeta(v1.KindEdgeHost),
		Metadata: v1.ObjectMeta{Name: id, Project: project, Labels: in.Metadata.Labels},
		Status:   v1.EdgeHostStatus{State: v1.HostUnpaired, Health: v1.HealthUnknown},
	}
	op, err := objects.CreateOp(v1.KindEdgeHost, h, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op, objects.EventOp(project, v1.KindEdgeHost, id, objects.EventNormal, "Registered", "host pre-registered by "+p.TokenName+"; waiting for its agent"))
	if err != nil {
		return nil, fmt.Errorf("register host %q: %w", id, err)
	}
	out, err := objects.Written[v1.EdgeHost](rows, 0)
	if err != nil {
		return nil, err
	}
	return s.present(out), nil
}

// PatchHostLabels sets and removes labels of a host read at revision rev.
// A nil value in set removes the label.
func (s *Service) PatchHostLabels(ctx context.Context, p *auth.Principal, project, id string, rev int64, set map[string]*string) (*v1.EdgeHost, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleSiteOperator); err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, errs.Field("metadata.revision", "required: the revision you read")
	}
	h, err := objects.Get[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, project, id)
	if err != nil {
		return nil, fmt.Errorf("label host %q: %w", id, err)
	}
	if h.Metadata.Revision != rev {
		return nil, fmt.Errorf("label host %q: read at revision %d, now %d: %w", id, rev, h.Metadata.Revision, errs.ErrConflict)
	}
	labels := maps.Clone(h.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range set {
		if v == nil {
			delete(labels, k)
		} else {
			labels[k] = *v
		}
	}
	var fl errs.FieldList
	validLabels(&fl, "metadata.labels", labels)
	if err := fl.Err(); err != nil {
		return nil, err
	}
	h.Metadata.Labels = labels
	op, err := objects.UpdateOp(v1.KindEdgeHost, h, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("label host %q: %w", id, err)
	}
	out, err := objects.Written[v1.EdgeHost](rows, 0)
	if err != nil {
		return nil, err
	}
	return s.present(out), nil
}

// ApproveHost lets a host that enrolled without a token in. Its waiting
// enrollment request then receives its certificate.
func (s *Service) ApproveHost(ctx context.Context, p *auth.Principal, project, id string) (*v1.EdgeHost, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleSiteOperator); err != nil {
		return nil, err
	}
	for {
		h, err := objects.Get[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, project, id)
		if err != nil {
			return nil, fmt.Errorf("approve host %q: %w", id, err)
		}
		if h.Status.State != v1.HostPendingApproval {
			return nil, fmt.Errorf("approve host %q: it is %s, not %s: %w", id, h.Status.State, v1.HostPendingApproval, errs.ErrConflict)
		}
		ops, err := s.pairOps(ctx, h, "approved by "+p.TokenName, false)
		if err != nil {
			return nil, err
		}
		rows, err := s.write(ctx, ops...)
		if errors.Is(err, errs.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("approve host %q: %w", id, err)
		}
		out, err := objects.Written[v1.EdgeHost](rows, 0)
		if err != nil {
			return nil, err
		}
		return s.present(out), nil
	}
}

// DeleteHost removes a host. Its certificate stops working at once: the host
// cache drops it before this returns, and the agent's open long-poll ends.
func (s *Service) DeleteHost(ctx context.Context, p *auth.Principal, project, id string) error {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return err
	}
	h, err := s.store.Get(ctx, v1.KindEdgeHost, project, id)
	if err != nil {
		return fmt.Errorf("delete host %q: %w", id, err)
	}
	if e, ok := s.hosts.get(id); ok && e.state == v1.HostInUse {
		return fmt.Errorf("delete host %q: it is in a cluster; remove it from the cluster (or delete the cluster) first: %w", id, errs.ErrConflict)
	}
	ops := []store.Op{
		objects.DeleteOp(v1.KindEdgeHost, project, id, h.Revision),
		objects.EventOp(project, v1.KindEdgeHost, id, objects.EventNormal, "Deleted", "host deleted by "+p.TokenName),
	}
	if _, err := s.store.Get(ctx, v1.KindHostSpec, project, id); err == nil {
		ops = append(ops, objects.DeleteOp(v1.KindHostSpec, project, id, 0))
	}
	if _, err := s.write(ctx, ops...); err != nil {
		return fmt.Errorf("delete host %q: %w", id, err)
	}
	s.presence.forget(id)
	return nil
}

// ListEvents lists a project's events, oldest first, optionally about one
// object ("Kind/name").
func (s *Service) ListEvents(ctx context.Context, p *auth.Principal, project, object string) (v1.List[v1.Event], error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return v1.List[v1.Event]{}, err
	}
	all, rev, err := objects.List[v1.Event](ctx, s.store, v1.KindEvent, project)
	if err != nil {
		return v1.List[v1.Event]{}, err
	}
	out := v1.List[v1.Event]{Items: []v1.Event{}, Revision: rev}
	for _, e := range all {
		if object == "" || e.Object == object {
			out.Items = append(out.Items, *e)
		}
	}
	return out, nil
}
