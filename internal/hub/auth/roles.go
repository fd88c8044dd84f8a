package auth

import (
	"fmt"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

var rank = map[string]int{
	v1.RoleViewer:       1,
	v1.RoleSiteOperator: 2,
	v1.RoleEditor:       3,
	v1.RoleAdmin:        4,
}

// ValidRole reports whether role is one of the four roles.
func ValidRole(role string) bool { _, ok := rank[role]; return ok }

// Principal is who is calling: an API token and its roles.
type Principal struct {
	TokenName string
	Roles     []v1.ProjectRole
}

// roleIn returns the highest rank the principal holds in project.
func (p *Principal) roleIn(project string) int {
	best := 0
	for _, r := range p.Roles {
		if r.Project == project || r.Project == v1.AllProjects {
			best = max(best, rank[r.Role])
		}
	}
	return best
}

// Can reports whether the principal holds role (or a higher one) in project.
func (p *Principal) Can(project, role string) bool {
	return p.roleIn(project) >= rank[role]
}

// IsHubAdmin reports whether the principal is admin of every project.
func (p *Principal) IsHubAdmin() bool {
	for _, r := range p.Roles {
		if r.Project == v1.AllProjects && r.Role == v1.RoleAdmin {
			return true
		}
	}
	return false
}

// MemberOf reports whether the principal has any role in project.
func (p *Principal) MemberOf(project string) bool { return p.roleIn(project) > 0 }

// Require returns nil when the principal holds role in project. A caller with
// no role at all in the project gets ErrNotFound, so that the existence of
// another tenant's objects is not revealed; a member with too small a role
// gets ErrForbidden.
func (p *Principal) Require(project, role string) error {
	if p.Can(project, role) {
		return nil
	}
	if !p.MemberOf(project) {
		return fmt.Errorf("project %q: %w", project, errs.ErrNotFound)
	}
	return fmt.Errorf("role %s in project %q needed: %w", role, project, errs.ErrForbidden)
}

// CanGrant reports whether the principal may hand out all of roles: a hub
// admin may grant anything; a project admin only roles in projects it
// administers (never "*").
func (p *Principal) CanGrant(roles []v1.ProjectRole) bool {
	if p.IsHubAdmin() {
		return true
	}
	return !slices.ContainsFunc(roles, func(r v1.ProjectRole) bool {
		return r.Project == v1.AllProjects || !p.Can(r.Project, v1.RoleAdmin)
	})
}
