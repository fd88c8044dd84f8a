package api

import (
	"net/http"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/hub/service"
)

func (a *UserAPI) registerModeling(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("GET /api/v1/registries", a.listRegistries)
	h("POST /api/v1/registries", a.createRegistry)
	h("GET /api/v1/registries/{name}", a.getRegistry)
	h("PUT /api/v1/registries/{name}", a.updateRegistry)
	h("DELETE /api/v1/registries/{name}", a.deleteRegistry)
	h("POST /api/v1/registries/{name}/sync", a.syncRegistry)

	h("GET /api/v1/packs", a.listPacks)
	h("GET /api/v1/packs/{registry}/{name}", a.getPack)

	h("GET /api/v1/projects/{project}/profiles", a.listProfiles)
	h("POST /api/v1/projects/{project}/profiles", a.createProfile)
	h("GET /api/v1/projects/{project}/profiles/{name}", a.listProfileVersions)
	h("GET /api/v1/projects/{project}/profiles/{name}/{version}", a.getProfile)
	h("PUT /api/v1/projects/{project}/profiles/{name}/{version}", a.updateProfile)
	h("DELETE /api/v1/projects/{project}/profiles/{name}/{version}", a.deleteProfile)
	h("POST /api/v1/projects/{project}/profiles/{name}/{version}/publish", a.publishProfile)
	h("POST /api/v1/projects/{project}/profiles/{name}/{version}/clone", a.cloneProfile)
	h("POST /api/v1/projects/{project}/profiles/{name}/{version}/bump", a.bumpProfile)
	h("POST /api/v1/projects/{project}/profiles/{name}/{version}/render", a.renderProfile)
}

// respond writes v with status, or returns err for the error path.
func respond(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return nil
	}
	writeJSON(w, status, v)
	return nil
}

func (a *UserAPI) listRegistries(w http.ResponseWriter, r *http.Request) error {
	l, err := a.svc.ListRegistries(r.Context(), principal(r))
	return respond(w, http.StatusOK, l, err)
}

func (a *UserAPI) createRegistry(w http.ResponseWriter, r *http.Request) error {
	var in v1.Registry
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.CreateRegistry(r.Context(), principal(r), &in)
	return respond(w, http.StatusCreated, out, err)
}

func (a *UserAPI) getRegistry(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetRegistry(r.Context(), principal(r), r.PathValue("name"))
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) updateRegistry(w http.ResponseWriter, r *http.Request) error {
	var in v1.Registry
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.UpdateRegistry(r.Context(), principal(r), r.PathValue("name"), &in)
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) deleteRegistry(w http.ResponseWriter, r *http.Request) error {
	return respond(w, http.StatusNoContent, nil, a.svc.DeleteRegistry(r.Context(), principal(r), r.PathValue("name")))
}

func (a *UserAPI) syncRegistry(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.SyncRegistry(r.Context(), principal(r), r.PathValue("name"))
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) listPacks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	l, err := a.svc.ListPacks(r.Context(), principal(r), service.PackFilter{
		Registry: q.Get("registry"), Layer: q.Get("layer"), Type: q.Get("type"), Name: q.Get("name"),
	})
	return respond(w, http.StatusOK, l, err)
}

func (a *UserAPI) getPack(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetPack(r.Context(), principal(r), r.PathValue("registry"), r.PathValue("name"))
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) listProfiles(w http.ResponseWriter, r *http.Request) error {
	l, err := a.svc.ListProfiles(r.Context(), principal(r), r.PathValue("project"), r.URL.Query().Get("name"))
	return respond(w, http.StatusOK, l, err)
}

func (a *UserAPI) listProfileVersions(w http.ResponseWriter, r *http.Request) error {
	l, err := a.svc.ListProfiles(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"))
	return respond(w, http.StatusOK, l, err)
}

func (a *UserAPI) createProfile(w http.ResponseWriter, r *http.Request) error {
	var in v1.ClusterProfile
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.CreateProfile(r.Context(), principal(r), r.PathValue("project"), &in)
	return respond(w, http.StatusCreated, out, err)
}

func (a *UserAPI) getProfile(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetProfile(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), r.PathValue("version"))
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) updateProfile(w http.ResponseWriter, r *http.Request) error {
	var in v1.ClusterProfile
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.UpdateProfile(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), r.PathValue("version"), &in)
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) deleteProfile(w http.ResponseWriter, r *http.Request) error {
	return respond(w, http.StatusNoContent, nil, a.svc.DeleteProfile(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), r.PathValue("version")))
}

func (a *UserAPI) publishProfile(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.PublishProfile(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), r.PathValue("version"))
	return respond(w, http.StatusOK, out, err)
}

// CloneRequest names the copy POST …/clone makes.
type CloneRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (a *UserAPI) cloneProfile(w http.ResponseWriter, r *http.Request) error {
	var in CloneRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.CloneProfile(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), r.PathValue("version"), in.Name, in.Version)
	return respond(w, http.StatusCreated, out, err)
}

// BumpRequest says which part of the version POST …/bump increments.
type BumpRequest struct {
	Part string `json:"part"`
}

func (a *UserAPI) bumpProfile(w http.ResponseWriter, r *http.Request) error {
	var in BumpRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.BumpProfile(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), r.PathValue("version"), in.Part)
	return respond(w, http.StatusCreated, out, err)
}

// RenderRequest carries the variable values POST …/render renders with.
type RenderRequest struct {
	Variables map[string]string `json:"variables,omitempty"`
}

func (a *UserAPI) renderProfile(w http.ResponseWriter, r *http.Request) error {
	var in RenderRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &in); err != nil {
			return err
		}
	}
	out, err := a.svc.RenderProfile(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), r.PathValue("version"), in.Variables)
	return respond(w, http.StatusOK, out, err)
}
