package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/service"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/watch"
)

// UserAPI serves /api/v1.
type UserAPI struct {
	svc   *service.Service
	watch *watch.Hub
	log   *slog.Logger
}

type ctxKey struct{}

func principal(r *http.Request) *auth.Principal { return r.Context().Value(ctxKey{}).(*auth.Principal) }

// authed wraps a handler with bearer-token authentication: no handler of the
// user API runs without a principal.
func (a *UserAPI) authed(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="outpost"`)
			writeError(w, r, a.log, fmt.Errorf("an API token is needed (Authorization: Bearer ...): %w", errs.ErrUnauthenticated))
			return
		}
		p, err := a.svc.Authenticate(r.Context(), strings.TrimSpace(bearer))
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, p))
		if err := h(w, r); err != nil {
			writeError(w, r, a.log, err)
		}
	}
}

// Register adds the user API routes to mux.
func (a *UserAPI) Register(mux *http.ServeMux) {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, a.authed(fn))
	}
	h("GET /api/v1/whoami", a.whoami)

	h("GET /api/v1/projects", a.listProjects)
	h("POST /api/v1/projects", a.createProject)
	h("GET /api/v1/projects/{project}", a.getProject)
	h("PUT /api/v1/projects/{project}", a.updateProject)
	h("DELETE /api/v1/projects/{project}", a.deleteProject)

	h("GET /api/v1/tokens", a.listAPITokens)
	h("POST /api/v1/tokens", a.createAPIToken)
	h("GET /api/v1/tokens/{name}", a.getAPIToken)
	h("DELETE /api/v1/tokens/{name}", a.deleteAPIToken)

	h("GET /api/v1/projects/{project}/registrationtokens", a.listRegistrationTokens)
	h("POST /api/v1/projects/{project}/registrationtokens", a.createRegistrationToken)
	h("GET /api/v1/projects/{project}/registrationtokens/{name}", a.getRegistrationToken)
	h("POST /api/v1/projects/{project}/registrationtokens/{name}/revoke", a.revokeRegistrationToken)
	h("DELETE /api/v1/projects/{project}/registrationtokens/{name}", a.deleteRegistrationToken)

	h("GET /api/v1/projects/{project}/hosts", a.listHosts)
	h("POST /api/v1/projects/{project}/hosts", a.registerHost)
	h("GET /api/v1/projects/{project}/hosts/{id}", a.getHost)
	h("PATCH /api/v1/projects/{project}/hosts/{id}", a.patchHost)
	h("POST /api/v1/projects/{project}/hosts/{id}/approve", a.approveHost)
	h("DELETE /api/v1/projects/{project}/hosts/{id}", a.deleteHost)

	h("GET /api/v1/projects/{project}/events", a.listEvents)

	a.registerModeling(h)
	a.registerClusters(h)

	// Anything else under /api/ is a JSON 404, not the console's HTML.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, fmt.Errorf("no route %s %s: %w", r.Method, r.URL.Path, errs.ErrNotFound))
	})
}

func (a *UserAPI) whoami(w http.ResponseWriter, r *http.Request) error {
	t, err := a.svc.WhoAmI(r.Context(), principal(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *UserAPI) listProjects(w http.ResponseWriter, r *http.Request) error {
	l, err := a.svc.ListProjects(r.Context(), principal(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (a *UserAPI) createProject(w http.ResponseWriter, r *http.Request) error {
	var in v1.Project
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.CreateProject(r.Context(), principal(r), &in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *UserAPI) getProject(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetProject(r.Context(), principal(r), r.PathValue("project"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *UserAPI) updateProject(w http.ResponseWriter, r *http.Request) error {
	var in v1.Project
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.UpdateProject(r.Context(), principal(r), r.PathValue("project"), &in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *UserAPI) deleteProject(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.DeleteProject(r.Context(), principal(r), r.PathValue("project")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *UserAPI) listAPITokens(w http.ResponseWriter, r *http.Request) error {
	l, err := a.svc.ListAPITokens(r.Context(), principal(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (a *UserAPI) createAPIToken(w http.ResponseWriter, r *http.Request) error {
	var in v1.APIToken
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.CreateAPIToken(r.Context(), principal(r), &in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *UserAPI) getAPIToken(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetAPIToken(r.Context(), principal(r), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *UserAPI) deleteAPIToken(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.DeleteAPIToken(r.Context(), principal(r), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *UserAPI) listRegistrationTokens(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	l, err := a.svc.ListRegistrationTokens(r.Context(), principal(r), project)
	if err != nil {
		return err
	}
	if watching(r) {
		return stream(a, w, r, v1.KindRegistrationToken, project, l.Revision, l.Items, func(o store.Object) (any, bool) {
			t, err := a.svc.DecodeRegistrationToken(o)
			if err != nil {
				return nil, false
			}
			return t, true
		})
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (a *UserAPI) createRegistrationToken(w http.ResponseWriter, r *http.Request) error {
	var in v1.RegistrationToken
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.CreateRegistrationToken(r.Context(), principal(r), r.PathValue("project"), &in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *UserAPI) getRegistrationToken(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetRegistrationToken(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *UserAPI) revokeRegistrationToken(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.RevokeRegistrationToken(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *UserAPI) deleteRegistrationToken(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.DeleteRegistrationToken(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func hostFilter(r *http.Request) service.HostFilter {
	q := r.URL.Query()
	return service.HostFilter{State: q.Get("state"), Health: q.Get("health"), Selector: q.Get("selector")}
}

func (a *UserAPI) listHosts(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	f := hostFilter(r)
	l, err := a.svc.ListHosts(r.Context(), principal(r), project, f)
	if err != nil {
		return err
	}
	if watching(r) {
		match, _ := service.HostMatcher(f) // ListHosts validated it
		return stream(a, w, r, v1.KindEdgeHost, project, l.Revision, l.Items, func(o store.Object) (any, bool) {
			h, err := objects.Decode[v1.EdgeHost](o)
			if err != nil || !match(h) {
				return nil, false
			}
			return a.svc.PresentHost(h), true
		})
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (a *UserAPI) registerHost(w http.ResponseWriter, r *http.Request) error {
	var in v1.EdgeHost
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.RegisterHost(r.Context(), principal(r), r.PathValue("project"), &in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *UserAPI) getHost(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetHost(r.Context(), principal(r), r.PathValue("project"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// hostPatch is the merge patch PATCH hosts/{id} accepts: labels to set, and
// labels set to null to remove.
type hostPatch struct {
	Metadata struct {
		Revision int64              `json:"revision"`
		Labels   map[string]*string `json:"labels"`
	} `json:"metadata"`
}

func (a *UserAPI) patchHost(w http.ResponseWriter, r *http.Request) error {
	var in hostPatch
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.PatchHostLabels(r.Context(), principal(r), r.PathValue("project"), r.PathValue("id"), in.Metadata.Revision, in.Metadata.Labels)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *UserAPI) approveHost(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.ApproveHost(r.Context(), principal(r), r.PathValue("project"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *UserAPI) deleteHost(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.DeleteHost(r.Context(), principal(r), r.PathValue("project"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *UserAPI) listEvents(w http.ResponseWriter, r *http.Request) error {
	project, object := r.PathValue("project"), r.URL.Query().Get("object")
	l, err := a.svc.ListEvents(r.Context(), principal(r), project, object)
	if err != nil {
		return err
	}
	if watching(r) {
		return stream(a, w, r, v1.KindEvent, project, l.Revision, l.Items, func(o store.Object) (any, bool) {
			e, err := objects.Decode[v1.Event](o)
			if err != nil || object != "" && e.Object != object {
				return nil, false
			}
			return e, true
		})
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}
