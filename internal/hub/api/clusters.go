package api

import (
	"net/http"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

func (a *UserAPI) registerClusters(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("GET /api/v1/projects/{project}/clusters", a.listClusters)
	h("POST /api/v1/projects/{project}/clusters", a.createCluster)
	h("GET /api/v1/projects/{project}/clusters/{name}", a.getCluster)
	h("PUT /api/v1/projects/{project}/clusters/{name}", a.updateCluster)
	h("DELETE /api/v1/projects/{project}/clusters/{name}", a.deleteCluster)
	h("POST /api/v1/projects/{project}/clusters/{name}/abort", a.abortCluster)
	h("POST /api/v1/projects/{project}/clusters/{name}/diff", a.diffCluster)
}

func (a *UserAPI) listClusters(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	l, err := a.svc.ListClusters(r.Context(), principal(r), project)
	if err != nil {
		return err
	}
	if watching(r) {
		return stream(a, w, r, v1.KindCluster, project, l.Revision, l.Items, func(o store.Object) (any, bool) {
			c, err := a.svc.DecodeCluster(o)
			return c, err == nil
		})
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (a *UserAPI) createCluster(w http.ResponseWriter, r *http.Request) error {
	var in v1.Cluster
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.CreateCluster(r.Context(), principal(r), r.PathValue("project"), &in)
	return respond(w, http.StatusCreated, out, err)
}

func (a *UserAPI) getCluster(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.GetCluster(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"))
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) updateCluster(w http.ResponseWriter, r *http.Request) error {
	var in v1.Cluster
	if err := decode(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc.UpdateCluster(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), &in)
	return respond(w, http.StatusOK, out, err)
}

func (a *UserAPI) deleteCluster(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.DeleteCluster(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"))
	return respond(w, http.StatusAccepted, out, err)
}

func (a *UserAPI) abortCluster(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc.AbortCluster(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"))
	return respond(w, http.StatusAccepted, out, err)
}

// diffCluster answers what each host would do: for the proposed spec in
// the body (a Cluster object), or without a body for the current spec.
func (a *UserAPI) diffCluster(w http.ResponseWriter, r *http.Request) error {
	var spec *v1.ClusterSpec
	if r.ContentLength != 0 {
		var in v1.Cluster
		if err := decode(w, r, &in); err != nil {
			return err
		}
		spec = &in.Spec
	}
	out, err := a.svc.DiffCluster(r.Context(), principal(r), r.PathValue("project"), r.PathValue("name"), spec)
	return respond(w, http.StatusOK, out, err)
}
