package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// HostFilter selects hosts in ListHosts and WatchHosts; empty fields select
// everything.
type HostFilter struct {
	State  string // Unpaired, PendingApproval, Ready, InUse
	Health string // Unknown, Healthy, Unhealthy, Offline
	// Selector is a label selector such as "site=berlin,gpu".
	Selector string
}

func (f HostFilter) query() url.Values {
	q := url.Values{}
	setIf(q, "state", f.State)
	setIf(q, "health", f.Health)
	setIf(q, "selector", f.Selector)
	return q
}

// EventFilter selects events in ListEvents and WatchEvents.
type EventFilter struct {
	// Object is "Kind/name", e.g. "EdgeHost/edge-1"; empty means every object.
	Object string
}

func (f EventFilter) query() url.Values {
	q := url.Values{}
	setIf(q, "object", f.Object)
	return q
}

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

func errNoName(what string) error { return errors.New(what + " name is empty") }

// get, list, create and friends are the shapes every resource shares.

func get[T any](ctx context.Context, c *Client, path string) (*T, error) {
	var out T
	if _, err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func list[T any](ctx context.Context, c *Client, path string, q url.Values) (*v1.List[T], error) {
	var out v1.List[T]
	if _, err := c.do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		// An empty list prints as [] rather than null in -o json.
		out.Items = []T{}
	}
	return &out, nil
}

// send writes body and returns the object the hub answers with, or nil when
// it answers without a body.
func send[T any](ctx context.Context, c *Client, method, path string, body any) (*T, error) {
	var out T
	ok, err := c.do(ctx, method, path, nil, body, &out)
	if err != nil || !ok {
		return nil, err
	}
	return &out, nil
}

func (c *Client) del(ctx context.Context, path string) error {
	_, err := c.do(ctx, http.MethodDelete, path, nil, nil, nil)
	return err
}

func typeMeta(tm *v1.TypeMeta, kind string) {
	if tm.APIVersion == "" {
		tm.APIVersion = v1.APIVersion
	}
	if tm.Kind == "" {
		tm.Kind = kind
	}
}

// WhoAmI returns the calling API token, without its secret.
func (c *Client) WhoAmI(ctx context.Context) (*v1.APIToken, error) {
	var out struct {
		v1.APIToken
		// A hub may answer with just the principal instead of the token
		// object; both shapes end up in one APIToken.
		TokenName string           `json:"tokenName"`
		Roles     []v1.ProjectRole `json:"roles"`
	}
	if _, err := c.do(ctx, http.MethodGet, apiPath("whoami"), nil, nil, &out); err != nil {
		return nil, err
	}
	t := out.APIToken
	if t.Metadata.Name == "" {
		t.Metadata.Name = out.TokenName
	}
	if t.Spec.Roles == nil {
		t.Spec.Roles = out.Roles
	}
	typeMeta(&t.TypeMeta, v1.KindAPIToken)
	return &t, nil
}

// --- Projects ---

// ListProjects lists the projects the token has a role in.
func (c *Client) ListProjects(ctx context.Context) (*v1.List[v1.Project], error) {
	return list[v1.Project](ctx, c, apiPath("projects"), nil)
}

// GetProject returns one project.
func (c *Client) GetProject(ctx context.Context, name string) (*v1.Project, error) {
	if name == "" {
		return nil, errNoName("project")
	}
	return get[v1.Project](ctx, c, apiPath("projects", name))
}

// CreateProject creates p (hub admins only).
func (c *Client) CreateProject(ctx context.Context, p *v1.Project) (*v1.Project, error) {
	if p.Metadata.Name == "" {
		return nil, errNoName("project")
	}
	typeMeta(&p.TypeMeta, v1.KindProject)
	return send[v1.Project](ctx, c, http.MethodPost, apiPath("projects"), p)
}

// UpdateProject writes p's spec; p.Metadata.Revision must be the revision
// it was read at, or the hub answers ErrConflict.
func (c *Client) UpdateProject(ctx context.Context, p *v1.Project) (*v1.Project, error) {
	if p.Metadata.Name == "" {
		return nil, errNoName("project")
	}
	typeMeta(&p.TypeMeta, v1.KindProject)
	return send[v1.Project](ctx, c, http.MethodPut, apiPath("projects", p.Metadata.Name), p)
}

// DeleteProject deletes an empty project (hub admins only).
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	if name == "" {
		return errNoName("project")
	}
	return c.del(ctx, apiPath("projects", name))
}

// --- API tokens ---

// ListAPITokens lists the API tokens the caller may administer.
func (c *Client) ListAPITokens(ctx context.Context) (*v1.List[v1.APIToken], error) {
	return list[v1.APIToken](ctx, c, apiPath("tokens"), nil)
}

// GetAPIToken returns one API token, without its secret.
func (c *Client) GetAPIToken(ctx context.Context, name string) (*v1.APIToken, error) {
	if name == "" {
		return nil, errNoName("api token")
	}
	return get[v1.APIToken](ctx, c, apiPath("tokens", name))
}

// CreateAPIToken creates t; the answer's Token field holds the secret, the
// only time the hub shows it.
func (c *Client) CreateAPIToken(ctx context.Context, t *v1.APIToken) (*v1.APIToken, error) {
	if t.Metadata.Name == "" {
		return nil, errNoName("api token")
	}
	typeMeta(&t.TypeMeta, v1.KindAPIToken)
	return send[v1.APIToken](ctx, c, http.MethodPost, apiPath("tokens"), t)
}

// DeleteAPIToken revokes an API token: it stops working at once.
func (c *Client) DeleteAPIToken(ctx context.Context, name string) error {
	if name == "" {
		return errNoName("api token")
	}
	return c.del(ctx, apiPath("tokens", name))
}

// --- Registration tokens ---

// ListRegistrationTokens lists a project's registration tokens.
func (c *Client) ListRegistrationTokens(ctx context.Context, project string) (*v1.List[v1.RegistrationToken], error) {
	if project == "" {
		return nil, errNoName("project")
	}
	return list[v1.RegistrationToken](ctx, c, apiPath("projects", project, "registrationtokens"), nil)
}

// GetRegistrationToken returns one registration token, without its secret.
func (c *Client) GetRegistrationToken(ctx context.Context, project, name string) (*v1.RegistrationToken, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if name == "" {
		return nil, errNoName("registration token")
	}
	return get[v1.RegistrationToken](ctx, c, apiPath("projects", project, "registrationtokens", name))
}

// CreateRegistrationToken creates t in project; the answer's Token field
// holds the secret, the only time the hub shows it.
func (c *Client) CreateRegistrationToken(ctx context.Context, project string, t *v1.RegistrationToken) (*v1.RegistrationToken, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if t.Metadata.Name == "" {
		return nil, errNoName("registration token")
	}
	typeMeta(&t.TypeMeta, v1.KindRegistrationToken)
	return send[v1.RegistrationToken](ctx, c, http.MethodPost, apiPath("projects", project, "registrationtokens"), t)
}

// RevokeRegistrationToken stops a registration token from enrolling more
// hosts; hosts that enrolled with it stay. It returns the revoked token, or
// nil if the hub answered without a body.
func (c *Client) RevokeRegistrationToken(ctx context.Context, project, name string) (*v1.RegistrationToken, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if name == "" {
		return nil, errNoName("registration token")
	}
	return send[v1.RegistrationToken](ctx, c, http.MethodPost, apiPath("projects", project, "registrationtokens", name, "revoke"), nil)
}

// DeleteRegistrationToken deletes a registration token.
func (c *Client) DeleteRegistrationToken(ctx context.Context, project, name string) error {
	if project == "" {
		return errNoName("project")
	}
	if name == "" {
		return errNoName("registration token")
	}
	return c.del(ctx, apiPath("projects", project, "registrationtokens", name))
}

// --- Hosts ---

// ListHosts lists a project's hosts that match f.
func (c *Client) ListHosts(ctx context.Context, project string, f HostFilter) (*v1.List[v1.EdgeHost], error) {
	if project == "" {
		return nil, errNoName("project")
	}
	return list[v1.EdgeHost](ctx, c, apiPath("projects", project, "hosts"), f.query())
}

// GetHost returns one host by ID.
func (c *Client) GetHost(ctx context.Context, project, id string) (*v1.EdgeHost, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if id == "" {
		return nil, errNoName("host")
	}
	return get[v1.EdgeHost](ctx, c, apiPath("projects", project, "hosts", id))
}

// RegisterHost pre-registers h (its ID in h.Metadata.Name, with labels) so
// the host pairs without a token when its agent enrolls.
func (c *Client) RegisterHost(ctx context.Context, project string, h *v1.EdgeHost) (*v1.EdgeHost, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if h.Metadata.Name == "" {
		return nil, errNoName("host")
	}
	typeMeta(&h.TypeMeta, v1.KindEdgeHost)
	return send[v1.EdgeHost](ctx, c, http.MethodPost, apiPath("projects", project, "hosts"), h)
}

// PatchHostLabels sets and removes labels of a host read at revision; a
// stale revision gets ErrConflict. The "name" label is the display name.
func (c *Client) PatchHostLabels(ctx context.Context, project, id string, revision int64, set map[string]string, remove []string) (*v1.EdgeHost, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if id == "" {
		return nil, errNoName("host")
	}
	// A JSON merge patch: null deletes the key.
	labels := make(map[string]*string, len(set)+len(remove))
	for k, v := range set {
		labels[k] = &v
	}
	for _, k := range remove {
		if _, ok := set[k]; ok {
			return nil, errors.New("label " + k + " is both set and removed")
		}
		labels[k] = nil
	}
	type meta struct {
		Revision int64              `json:"revision"`
		Labels   map[string]*string `json:"labels"`
	}
	body := struct {
		Metadata meta `json:"metadata"`
	}{meta{Revision: revision, Labels: labels}}
	return send[v1.EdgeHost](ctx, c, http.MethodPatch, apiPath("projects", project, "hosts", id), body)
}

// ApproveHost approves a host that enrolled without a token.
func (c *Client) ApproveHost(ctx context.Context, project, id string) (*v1.EdgeHost, error) {
	if project == "" {
		return nil, errNoName("project")
	}
	if id == "" {
		return nil, errNoName("host")
	}
	return send[v1.EdgeHost](ctx, c, http.MethodPost, apiPath("projects", project, "hosts", id, "approve"), nil)
}

// DeleteHost deletes a host; its client certificate stops working at once.
func (c *Client) DeleteHost(ctx context.Context, project, id string) error {
	if project == "" {
		return errNoName("project")
	}
	if id == "" {
		return errNoName("host")
	}
	return c.del(ctx, apiPath("projects", project, "hosts", id))
}

// --- Events ---

// ListEvents lists a project's events, newest last.
func (c *Client) ListEvents(ctx context.Context, project string, f EventFilter) (*v1.List[v1.Event], error) {
	if project == "" {
		return nil, errNoName("project")
	}
	return list[v1.Event](ctx, c, apiPath("projects", project, "events"), f.query())
}

// --- OpenAPI ---

// OpenAPI returns the hub's OpenAPI 3 document as raw JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, apiPath("openapi.json"), nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}
