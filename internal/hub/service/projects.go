package service

import (
	"context"
	"fmt"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// ListProjects lists the projects the caller has a role in.
func (s *Service) ListProjects(ctx context.Context, p *auth.Principal) (v1.List[v1.Project], error) {
	all, rev, err := objects.List[v1.Project](ctx, s.store, v1.KindProject, "")
	if err != nil {
		return v1.List[v1.Project]{}, err
	}
	out := v1.List[v1.Project]{Items: []v1.Project{}, Revision: rev}
	for _, pr := range all {
		if p.MemberOf(pr.Metadata.Name) {
			out.Items = append(out.Items, *pr)
		}
	}
	return out, nil
}

// GetProject reads one project the caller is a member of.
func (s *Service) GetProject(ctx context.Context, p *auth.Principal, name string) (*v1.Project, error) {
	if err := p.Require(name, v1.RoleViewer); err != nil {
		return nil, err
	}
	pr, err := objects.Get[v1.Project](ctx, s.store, v1.KindProject, "", name)
	if err != nil {
		return nil, fmt.Errorf("get project %q: %w", name, err)
	}
	return pr, nil
}

// CreateProject makes a project; only hub admins may.
func (s *Service) CreateProject(ctx context.Context, p *auth.Principal, in *v1.Project) (*v1.Project, error) {
	if !p.IsHubAdmin() {
		return nil, fmt.Errorf("only hub admins create projects: %w", errs.ErrForbidden)
	}
	var fl errs.FieldList
	validName(&fl, "metadata.name", in.Metadata.Name)
	validLabels(&fl, "metadata.labels", in.Metadata.Labels)
	validDescription(&fl, "spec.description", in.Spec.Description)
	if err := fl.Err(); err != nil {
		return nil, err
	}
	pr := &v1.Project{TypeMeta: typeMeta(v1.KindProject), Metadata: v1.ObjectMeta{Name: in.Metadata.Name, Labels: in.Metadata.Labels}, Spec: in.Spec}
	op, err := objects.CreateOp(v1.KindProject, pr, "")
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("create project %q: %w", pr.Metadata.Name, err)
	}
	return objects.Written[v1.Project](rows, 0)
}

// UpdateProject changes a project's description and labels.
func (s *Service) UpdateProject(ctx context.Context, p *auth.Principal, name string, in *v1.Project) (*v1.Project, error) {
	if err := p.Require(name, v1.RoleAdmin); err != nil {
		return nil, err
	}
	var fl errs.FieldList
	validDescription(&fl, "spec.description", in.Spec.Description)
	validLabels(&fl, "metadata.labels", in.Metadata.Labels)
	if in.Metadata.Revision == 0 {
		fl.Add("metadata.revision", "required: the revision you read")
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	pr := &v1.Project{TypeMeta: typeMeta(v1.KindProject), Metadata: v1.ObjectMeta{Name: name, Labels: in.Metadata.Labels, Revision: in.Metadata.Revision}, Spec: in.Spec}
	op, err := objects.UpdateOp(v1.KindProject, pr, "")
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("update project %q: %w", name, err)
	}
	return objects.Written[v1.Project](rows, 0)
}

// DeleteProject removes an empty project; only hub admins may.
func (s *Service) DeleteProject(ctx context.Context, p *auth.Principal, name string) error {
	if !p.IsHubAdmin() {
		if err := p.Require(name, v1.RoleViewer); err != nil {
			return err
		}
		return fmt.Errorf("only hub admins delete projects: %w", errs.ErrForbidden)
	}
	pr, err := s.store.Get(ctx, v1.KindProject, "", name)
	if err != nil {
		return fmt.Errorf("delete project %q: %w", name, err)
	}
	for _, kind := range []string{v1.KindEdgeHost, v1.KindRegistrationToken, v1.KindClusterProfile, v1.KindCluster} {
		rows, _, err := s.store.List(ctx, store.ListOptions{Kind: kind, Project: name, Limit: 1})
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			return fmt.Errorf("delete project %q: it still has %s objects: %w", name, kind, errs.ErrConflict)
		}
	}
	ops := []store.Op{objects.DeleteOp(v1.KindProject, "", name, pr.Revision)}
	// Nothing of the project may outlive it: a new project of the same name
	// must not inherit its events or the roles tokens had in it.
	events, _, err := s.store.List(ctx, store.ListOptions{Kind: v1.KindEvent, Project: name})
	if err != nil {
		return err
	}
	for _, e := range events {
		ops = append(ops, objects.DeleteOp(v1.KindEvent, name, e.Name, 0))
	}
	tokens, _, err := objects.List[storedAPIToken](ctx, s.store, v1.KindAPIToken, "")
	if err != nil {
		return err
	}
	for _, t := range tokens {
		kept := slices.DeleteFunc(slices.Clone(t.Spec.Roles), func(r v1.ProjectRole) bool { return r.Project == name })
		if len(kept) == len(t.Spec.Roles) {
			continue
		}
		t.Spec.Roles = kept
		op, err := objects.UpdateOp(v1.KindAPIToken, t, t.Status.ID)
		if err != nil {
			return err
		}
		ops = append(ops, op)
	}
	if _, err := s.write(ctx, ops...); err != nil {
		return fmt.Errorf("delete project %q: %w", name, err)
	}
	return nil
}

// requireProject checks that the caller holds role in project and that the
// project exists, so a hub admin asking for a misspelt project gets 404
// rather than an empty list.
func (s *Service) requireProject(ctx context.Context, p *auth.Principal, project, role string) error {
	if err := p.Require(project, role); err != nil {
		return err
	}
	if _, err := s.store.Get(ctx, v1.KindProject, "", project); err != nil {
		return fmt.Errorf("project %q: %w", project, err)
	}
	return nil
}
