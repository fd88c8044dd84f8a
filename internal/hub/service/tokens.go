package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// storedAPIToken is an API token as kept: with the hash of its secret, which
// never leaves the hub.
type storedAPIToken struct {
	v1.APIToken
	SecretHash string `json:"secretHash"`
}

func (t *storedAPIToken) GetObjectMeta() *v1.ObjectMeta { return &t.Metadata }

type storedRegistrationToken struct {
	v1.RegistrationToken
	SecretHash string `json:"secretHash"`
}

func (t *storedRegistrationToken) GetObjectMeta() *v1.ObjectMeta { return &t.Metadata }

// Authenticate resolves a bearer API token to its principal.
func (s *Service) Authenticate(ctx context.Context, bearer string) (*auth.Principal, error) {
	id, secret, err := auth.ParseToken(auth.PrefixAPIToken, bearer)
	if err != nil {
		return nil, err
	}
	t, err := objects.GetByKey[storedAPIToken](ctx, s.store, v1.KindAPIToken, id)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, fmt.Errorf("unknown API token: %w", errs.ErrUnauthenticated)
	}
	if err != nil {
		return nil, err
	}
	if !auth.CheckSecret(secret, t.SecretHash) {
		return nil, fmt.Errorf("unknown API token: %w", errs.ErrUnauthenticated)
	}
	if t.Spec.ExpiresAt != nil && s.now().After(*t.Spec.ExpiresAt) {
		return nil, fmt.Errorf("API token %q has expired: %w", t.Metadata.Name, errs.ErrUnauthenticated)
	}
	return &auth.Principal{TokenName: t.Metadata.Name, Roles: t.Spec.Roles}, nil
}

// WhoAmI returns the caller's own API token (without its secret).
func (s *Service) WhoAmI(ctx context.Context, p *auth.Principal) (*v1.APIToken, error) {
	t, err := objects.Get[storedAPIToken](ctx, s.store, v1.KindAPIToken, "", p.TokenName)
	if err != nil {
		return nil, fmt.Errorf("get API token %q: %w", p.TokenName, err)
	}
	return &t.APIToken, nil
}

// EnsureAdminToken creates the first hub-admin token when no API token exists
// yet and returns its secret (once); otherwise it returns "".
func (s *Service) EnsureAdminToken(ctx context.Context) (string, error) {
	rows, _, err := s.store.List(ctx, store.ListOptions{Kind: v1.KindAPIToken, Limit: 1})
	if err != nil {
		return "", err
	}
	if len(rows) > 0 {
		return "", nil
	}
	t, err := s.createAPIToken(ctx, &v1.APIToken{
		Metadata: v1.ObjectMeta{Name: "admin"},
		Spec:     v1.APITokenSpec{Description: "created at first start", Roles: []v1.ProjectRole{{Project: v1.AllProjects, Role: v1.RoleAdmin}}},
	})
	if err != nil {
		return "", err
	}
	return t.Token, nil
}

func (s *Service) visibleAPIToken(p *auth.Principal, t *v1.APIToken) bool {
	return p.IsHubAdmin() || len(t.Spec.Roles) > 0 && p.CanGrant(t.Spec.Roles)
}

// ListAPITokens lists the API tokens the caller administers.
func (s *Service) ListAPITokens(ctx context.Context, p *auth.Principal) (v1.List[v1.APIToken], error) {
	all, rev, err := objects.List[storedAPIToken](ctx, s.store, v1.KindAPIToken, "")
	if err != nil {
		return v1.List[v1.APIToken]{}, err
	}
	out := v1.List[v1.APIToken]{Items: []v1.APIToken{}, Revision: rev}
	for _, t := range all {
		if s.visibleAPIToken(p, &t.APIToken) {
			out.Items = append(out.Items, t.APIToken)
		}
	}
	return out, nil
}

// GetAPIToken reads one API token the caller administers.
func (s *Service) GetAPIToken(ctx context.Context, p *auth.Principal, name string) (*v1.APIToken, error) {
	t, err := s.administeredAPIToken(ctx, p, name)
	if err != nil {
		return nil, fmt.Errorf("get API token %q: %w", name, err)
	}
	return &t.APIToken, nil
}

// administeredAPIToken reads a token the caller may see. A token it may not
// see and a missing one give the same error, so names cannot be probed
// across tenants.
func (s *Service) administeredAPIToken(ctx context.Context, p *auth.Principal, name string) (*storedAPIToken, error) {
	t, err := objects.Get[storedAPIToken](ctx, s.store, v1.KindAPIToken, "", name)
	if errors.Is(err, errs.ErrNotFound) || err == nil && !s.visibleAPIToken(p, &t.APIToken) {
		return nil, errs.ErrNotFound
	}
	return t, err
}

// CreateAPIToken makes an API token; the response carries the secret once.
func (s *Service) CreateAPIToken(ctx context.Context, p *auth.Principal, in *v1.APIToken) (*v1.APIToken, error) {
	var fl errs.FieldList
	validName(&fl, "metadata.name", in.Metadata.Name)
	validLabels(&fl, "metadata.labels", in.Metadata.Labels)
	validDescription(&fl, "spec.description", in.Spec.Description)
	if len(in.Spec.Roles) == 0 {
		fl.Add("spec.roles", "at least one role is needed")
	}
	for i, r := range in.Spec.Roles {
		if !auth.ValidRole(r.Role) {
			fl.Add(fmt.Sprintf("spec.roles[%d].role", i), "%q is not one of admin, editor, viewer, site-operator", r.Role)
		}
		if r.Project != v1.AllProjects {
			validName(&fl, fmt.Sprintf("spec.roles[%d].project", i), r.Project)
		}
	}
	if in.Spec.ExpiresAt != nil && !in.Spec.ExpiresAt.After(s.now()) {
		fl.Add("spec.expiresAt", "must be in the future")
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	if !p.CanGrant(in.Spec.Roles) {
		return nil, fmt.Errorf("create API token %q: only admins of every project in its roles may: %w", in.Metadata.Name, errs.ErrForbidden)
	}
	return s.createAPIToken(ctx, in)
}

func (s *Service) createAPIToken(ctx context.Context, in *v1.APIToken) (*v1.APIToken, error) {
	sec, err := auth.NewSecret(auth.PrefixAPIToken)
	if err != nil {
		return nil, err
	}
	t := &storedAPIToken{
		APIToken: v1.APIToken{
			TypeMeta: typeMeta(v1.KindAPIToken),
			Metadata: v1.ObjectMeta{Name: in.Metadata.Name, Labels: in.Metadata.Labels},
			Spec:     in.Spec,
			Status:   v1.APITokenStatus{ID: sec.ID},
		},
		SecretHash: sec.Hash,
	}
	op, err := objects.CreateOp(v1.KindAPIToken, t, sec.ID)
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("create API token %q: %w", in.Metadata.Name, err)
	}
	out, err := objects.Written[storedAPIToken](rows, 0)
	if err != nil {
		return nil, err
	}
	out.Token = sec.Token
	return &out.APIToken, nil
}

// DeleteAPIToken revokes an API token at once.
func (s *Service) DeleteAPIToken(ctx context.Context, p *auth.Principal, name string) error {
	t, err := s.administeredAPIToken(ctx, p, name)
	if err != nil {
		return fmt.Errorf("delete API token %q: %w", name, err)
	}
	if _, err := s.write(ctx, objects.DeleteOp(v1.KindAPIToken, "", name, t.Metadata.Revision)); err != nil {
		return fmt.Errorf("delete API token %q: %w", name, err)
	}
	return nil
}

// registrationState derives a token's state at time now.
func registrationState(t *v1.RegistrationToken, now time.Time) string {
	switch {
	case t.Spec.Revoked:
		return v1.TokenRevoked
	case t.Spec.ExpiresAt != nil && now.After(*t.Spec.ExpiresAt):
		return v1.TokenExpired
	case t.Spec.MaxUses > 0 && t.Status.Uses >= t.Spec.MaxUses:
		return v1.TokenUsedUp
	}
	return v1.TokenActive
}

func (s *Service) publicRegistrationToken(t *storedRegistrationToken) v1.RegistrationToken {
	out := t.RegistrationToken
	out.Status.State = registrationState(&out, s.now())
	return out
}

// DecodeRegistrationToken turns a stored registration token (from a watch
// stream) into what the API shows: no secret hash, the current state.
func (s *Service) DecodeRegistrationToken(o store.Object) (*v1.RegistrationToken, error) {
	t, err := objects.Decode[storedRegistrationToken](o)
	if err != nil {
		return nil, err
	}
	pub := s.publicRegistrationToken(t)
	return &pub, nil
}

// ListRegistrationTokens lists a project's registration tokens.
func (s *Service) ListRegistrationTokens(ctx context.Context, p *auth.Principal, project string) (v1.List[v1.RegistrationToken], error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return v1.List[v1.RegistrationToken]{}, err
	}
	all, rev, err := objects.List[storedRegistrationToken](ctx, s.store, v1.KindRegistrationToken, project)
	if err != nil {
		return v1.List[v1.RegistrationToken]{}, err
	}
	out := v1.List[v1.RegistrationToken]{Items: make([]v1.RegistrationToken, 0, len(all)), Revision: rev}
	for _, t := range all {
		out.Items = append(out.Items, s.publicRegistrationToken(t))
	}
	return out, nil
}

// GetRegistrationToken reads one registration token.
func (s *Service) GetRegistrationToken(ctx context.Context, p *auth.Principal, project, name string) (*v1.RegistrationToken, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleViewer); err != nil {
		return nil, err
	}
	t, err := objects.Get[storedRegistrationToken](ctx, s.store, v1.KindRegistrationToken, project, name)
	if err != nil {
		return nil, fmt.Errorf("get registration token %q: %w", name, err)
	}
	out := s.publicRegistrationToken(t)
	return &out, nil
}

// CreateRegistrationToken makes a registration token in project; the
// response carries the secret once.
func (s *Service) CreateRegistrationToken(ctx context.Context, p *auth.Principal, project string, in *v1.RegistrationToken) (*v1.RegistrationToken, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	var fl errs.FieldList
	validName(&fl, "metadata.name", in.Metadata.Name)
	validLabels(&fl, "metadata.labels", in.Metadata.Labels)
	validDescription(&fl, "spec.description", in.Spec.Description)
	validLabels(&fl, "spec.labels", in.Spec.Labels)
	if in.Spec.MaxUses < 0 {
		fl.Add("spec.maxUses", "must not be negative (0 means no limit)")
	}
	if in.Spec.ExpiresAt != nil && !in.Spec.ExpiresAt.After(s.now()) {
		fl.Add("spec.expiresAt", "must be in the future")
	}
	if in.Spec.Revoked {
		fl.Add("spec.revoked", "a new token cannot be revoked")
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	sec, err := auth.NewSecret(auth.PrefixRegistrationToken)
	if err != nil {
		return nil, err
	}
	t := &storedRegistrationToken{
		RegistrationToken: v1.RegistrationToken{
			TypeMeta: typeMeta(v1.KindRegistrationToken),
			Metadata: v1.ObjectMeta{Name: in.Metadata.Name, Project: project, Labels: in.Metadata.Labels},
			Spec:     in.Spec,
			Status:   v1.RegistrationTokenStatus{ID: sec.ID},
		},
		SecretHash: sec.Hash,
	}
	op, err := objects.CreateOp(v1.KindRegistrationToken, t, sec.ID)
	if err != nil {
		return nil, err
	}
	rows, err := s.write(ctx, op, objects.EventOp(project, v1.KindRegistrationToken, t.Metadata.Name, objects.EventNormal, "Created", "registration token created"))
	if err != nil {
		return nil, fmt.Errorf("create registration token %q: %w", in.Metadata.Name, err)
	}
	out, err := objects.Written[storedRegistrationToken](rows, 0)
	if err != nil {
		return nil, err
	}
	pub := s.publicRegistrationToken(out)
	pub.Token = sec.Token
	return &pub, nil
}

// RevokeRegistrationToken stops a token from enrolling more hosts. Hosts that
// already enrolled with it stay.
func (s *Service) RevokeRegistrationToken(ctx context.Context, p *auth.Principal, project, name string) (*v1.RegistrationToken, error) {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return nil, err
	}
	for {
		t, err := objects.Get[storedRegistrationToken](ctx, s.store, v1.KindRegistrationToken, project, name)
		if err != nil {
			return nil, fmt.Errorf("revoke registration token %q: %w", name, err)
		}
		t.Spec.Revoked = true
		op, err := objects.UpdateOp(v1.KindRegistrationToken, t, t.Status.ID)
		if err != nil {
			return nil, err
		}
		rows, err := s.write(ctx, op, objects.EventOp(project, v1.KindRegistrationToken, name, objects.EventNormal, "Revoked", "registration token revoked"))
		if errors.Is(err, errs.ErrConflict) {
			continue // an enrollment used it meanwhile; revoke the newer one
		}
		if err != nil {
			return nil, fmt.Errorf("revoke registration token %q: %w", name, err)
		}
		out, err := objects.Written[storedRegistrationToken](rows, 0)
		if err != nil {
			return nil, err
		}
		pub := s.publicRegistrationToken(out)
		return &pub, nil
	}
}

// DeleteRegistrationToken removes a token.
func (s *Service) DeleteRegistrationToken(ctx context.Context, p *auth.Principal, project, name string) error {
	if err := s.requireProject(ctx, p, project, v1.RoleEditor); err != nil {
		return err
	}
	if _, err := s.write(ctx, objects.DeleteOp(v1.KindRegistrationToken, project, name, 0),
		objects.EventOp(project, v1.KindRegistrationToken, name, objects.EventNormal, "Deleted", "registration token deleted by "+p.TokenName)); err != nil {
		return fmt.Errorf("delete registration token %q: %w", name, err)
	}
	return nil
}

// checkRegistrationToken finds the token a host presents and says whether it
// may enroll one more host.
func (s *Service) checkRegistrationToken(ctx context.Context, token string) (*storedRegistrationToken, error) {
	id, secret, err := auth.ParseToken(auth.PrefixRegistrationToken, token)
	if err != nil {
		return nil, errs.ErrTokenInvalid
	}
	t, err := objects.GetByKey[storedRegistrationToken](ctx, s.store, v1.KindRegistrationToken, id)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, errs.ErrTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	if !auth.CheckSecret(secret, t.SecretHash) {
		return nil, errs.ErrTokenInvalid
	}
	switch registrationState(&t.RegistrationToken, s.now()) {
	case v1.TokenRevoked:
		return nil, fmt.Errorf("registration token %q: %w", t.Metadata.Name, errs.ErrTokenRevoked)
	case v1.TokenExpired:
		return nil, fmt.Errorf("registration token %q: %w", t.Metadata.Name, errs.ErrTokenExpired)
	case v1.TokenUsedUp:
		return nil, fmt.Errorf("registration token %q: %w", t.Metadata.Name, errs.ErrTokenUsedUp)
	}
	return t, nil
}
