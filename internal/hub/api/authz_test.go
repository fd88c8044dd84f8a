package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/examples"
	"github.com/outpost-edge/outpost/internal/profile"
	"github.com/outpost-edge/outpost/internal/testutil/hubtest"
)

// tenants is a hub with two projects and tokens scoped to them.
type tenants struct {
	hub   *hubtest.Hub
	c     *checker
	admin string
}

func newTenants(t *testing.T, projects ...string) *tenants {
	hub := hubtest.Start(t)
	tn := &tenants{hub: hub, c: newChecker(t, hub), admin: hub.AdminToken}
	for _, p := range projects {
		tn.c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: tn.admin, body: obj{
			"metadata": obj{"name": p}, "spec": obj{"description": "tenant " + p},
		}})
	}
	return tn
}

// token makes an API token (as hub admin) and returns its secret.
func (tn *tenants) token(t *testing.T, name string, roles ...v1.ProjectRole) string {
	t.Helper()
	a := tn.c.expect(t, 201, call{method: "POST", path: "/api/v1/tokens", token: tn.admin, body: obj{
		"metadata": obj{"name": name}, "spec": obj{"roles": roles},
	}})
	return decode[v1.APIToken](t, a).Token
}

func (tn *tenants) register(t *testing.T, project, id string) v1.EdgeHost {
	t.Helper()
	return decode[v1.EdgeHost](t, tn.c.expect(t, 201, call{method: "POST", path: "/api/v1/projects/" + project + "/hosts", token: tn.admin, body: obj{
		"metadata": obj{"name": id, "labels": obj{"site": "hq"}},
	}}))
}

func (tn *tenants) pending(t *testing.T, project, id string) {
	t.Helper()
	newAgent(t, id).mustEnroll(t, tn.hub, 202, v1.EnrollRequest{Project: project, Inventory: inventory(id)})
}

func (tn *tenants) revision(t *testing.T, path string) int64 {
	t.Helper()
	var o struct {
		Metadata v1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(tn.c.expect(t, 200, call{method: "GET", path: path, token: tn.admin}).body, &o); err != nil {
		t.Fatal(err)
	}
	return o.Metadata.Revision
}

func listNames(t *testing.T, a answer) []string {
	t.Helper()
	var l struct {
		Items []struct {
			Metadata v1.ObjectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(a.body, &l); err != nil {
		t.Fatalf("decode list: %v: %s", err, a.body)
	}
	out := []string{}
	for _, it := range l.Items {
		out = append(out, it.Metadata.Name)
	}
	return out
}

// TestIntegrationTenantIsolation walks every operation of openapi.json with
// tokens of project A aimed at project B's objects: nothing may succeed,
// nothing may tell B's objects from missing ones, and B must be unchanged.
func TestIntegrationTenantIsolation(t *testing.T) {
	const a, b = "tenant-a", "tenant-b"
	tn := newTenants(t, a, b)
	c := tn.c
	aTokens := map[string]string{
		"admin of A":  tn.token(t, "a-admin", v1.ProjectRole{Project: a, Role: v1.RoleAdmin}),
		"viewer of A": tn.token(t, "a-viewer", v1.ProjectRole{Project: a, Role: v1.RoleViewer}),
	}
	tn.token(t, "b-admin", v1.ProjectRole{Project: b, Role: v1.RoleAdmin})

	// A has objects too, so a hub that looked them up by name alone, or
	// listed across projects, would show it.
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects/" + a + "/registrationtokens", token: tn.admin, body: obj{"metadata": obj{"name": "a-rt"}}})
	tn.register(t, a, "a-host")
	// B: a registration token, a pre-registered host, a host waiting for
	// approval, and the events those made.
	bToken := decode[v1.RegistrationToken](t, c.expect(t, 201, call{method: "POST", path: "/api/v1/projects/" + b + "/registrationtokens", token: tn.admin, body: obj{
		"metadata": obj{"name": "b-rt"}, "spec": obj{"labels": obj{"site": "b-site"}},
	}})).Token
	tn.register(t, b, "b-host")
	tn.pending(t, b, "b-pending")
	// Both have a profile version; B's by a name A does not use.
	for _, pr := range [][2]string{{a, "a-profile"}, {b, "b-profile"}} {
		c.expect(t, 201, call{method: "POST", path: "/api/v1/projects/" + pr[0] + "/profiles", token: tn.admin, body: addonProfile(pr[1])})
	}
	// And B runs a cluster of a full profile on a host that enrolled.
	newAgent(t, "b-node").mustEnroll(t, tn.hub, 200, v1.EnrollRequest{RegistrationToken: bToken, Inventory: inventory("b-node")})
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects/" + b + "/profiles", token: tn.admin, body: fullProfile(t, "b-stack")})
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects/" + b + "/clusters", token: tn.admin, body: tenantCluster("b-cluster", "b-stack", "b-node")})
	// The snapshot below must not race the cluster's controller: wait until
	// it has claimed the host and sent the init node its spec, after which
	// nothing moves until the host reports.
	waitCluster(t, c, "/api/v1/projects/"+b+"/clusters/b-cluster", tn.admin, "b-cluster provisions", func(cl v1.Cluster) bool {
		return len(cl.Status.Nodes) == 1 && cl.Status.Nodes[0].State == v1.NodeApplying
	})

	// What B looks like to its hub admin, by revision; events by name.
	bObjects := []string{
		"/api/v1/projects/" + b,
		"/api/v1/projects/" + b + "/registrationtokens/b-rt",
		"/api/v1/projects/" + b + "/hosts/b-host",
		"/api/v1/projects/" + b + "/hosts/b-pending",
		"/api/v1/tokens/b-admin",
		"/api/v1/projects/" + b + "/profiles/b-profile/1.0.0",
		"/api/v1/projects/" + b + "/hosts/b-node",
		"/api/v1/projects/" + b + "/clusters/b-cluster",
		// Hub-wide, but no tenant may change it either.
		"/api/v1/registries/builtin",
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, p := range bObjects {
			out[p] = fmt.Sprint(tn.revision(t, p))
		}
		for _, list := range []string{"events", "hosts", "registrationtokens", "profiles", "clusters"} {
			p := "/api/v1/projects/" + b + "/" + list
			out[p] = strings.Join(listNames(t, c.expect(t, 200, call{method: "GET", path: p, token: tn.admin})), ",")
		}
		return out
	}
	before := snapshot()
	bNames := []string{b, "b-rt", "b-host", "b-pending", "b-admin", "b-site", "b-profile", "b-node", "b-stack", "b-cluster"}

	// Plausible bodies, by operation: what an attacker in A would send.
	bodies := map[string][]any{
		"createProject":           {obj{"metadata": obj{"name": b}}, obj{"metadata": obj{"name": "tenant-c"}}},
		"updateProject":           {obj{"metadata": obj{"revision": tn.revision(t, "/api/v1/projects/"+b)}, "spec": obj{"description": "taken over"}}},
		"createRegistrationToken": {obj{"metadata": obj{"name": "sneaky"}, "spec": obj{"maxUses": 100}}},
		"registerHost":            {obj{"metadata": obj{"name": "sneaky-host"}}},
		"patchHost":               {obj{"metadata": obj{"revision": tn.revision(t, "/api/v1/projects/"+b+"/hosts/b-host"), "labels": obj{"owner": "tenant-a"}}}},
		"createProfile":           {addonProfile("sneaky"), addonProfile("b-profile")},
		"updateProfile": {func() obj {
			p := addonProfile("b-profile")
			p["metadata"] = obj{"revision": tn.revision(t, "/api/v1/projects/"+b+"/profiles/b-profile/1.0.0")}
			p["spec"].(obj)["description"] = "taken over"
			return p
		}()},
		"createCluster": {tenantCluster("sneaky", "b-stack", "b-node"), tenantCluster("b-cluster", "b-stack", "b-node")},
		"updateCluster": {func() obj {
			cl := tenantCluster("b-cluster", "b-stack", "b-node")
			cl["metadata"] = obj{"revision": tn.revision(t, "/api/v1/projects/"+b+"/clusters/b-cluster"), "labels": obj{"owner": "tenant-a"}}
			cl["spec"].(obj)["variables"] = obj{"siteCode": "xx-666"}
			return cl
		}()},
		"diffCluster":    {nil, obj{"spec": tenantCluster("b-cluster", "b-stack", "b-node")["spec"]}},
		"cloneProfile":   {obj{"name": "sneaky"}, obj{"version": "9.0.0"}},
		"bumpProfile":    {obj{"part": "patch"}},
		"renderProfile":  {obj{}, obj{"variables": obj{"site": "x"}}},
		"createRegistry": {obj{"metadata": obj{"name": "sneaky"}, "spec": obj{"type": "helm", "url": "https://charts.example.com"}}},
		"updateRegistry": {obj{"metadata": obj{"revision": tn.revision(t, "/api/v1/registries/builtin")}, "spec": obj{"type": "helm", "url": "https://charts.example.com"}}},
		"createAPIToken": {
			obj{"metadata": obj{"name": "sneaky"}, "spec": obj{"roles": []obj{{"project": b, "role": "viewer"}}}},
			obj{"metadata": obj{"name": "sneaky"}, "spec": obj{"roles": []obj{{"project": a, "role": "viewer"}, {"project": b, "role": "admin"}}}},
			obj{"metadata": obj{"name": "sneaky"}, "spec": obj{"roles": []obj{{"project": "*", "role": "viewer"}}}},
		},
	}

	refused := func(t *testing.T, who string, r call) answer {
		t.Helper()
		ans := c.send(t, r)
		if ans.status != http.StatusForbidden && ans.status != http.StatusNotFound {
			t.Errorf("%s: %s %s answered %d, want 403 or 404: %s", who, r.method, r.path, ans.status, ans.body)
		}
		return ans
	}
	// same fails when the answer about an existing object of B differs from
	// the answer about a missing one: the difference would reveal B's objects.
	same := func(t *testing.T, who string, r call, existing, missing string) {
		t.Helper()
		got := refused(t, who, r)
		r.path = strings.ReplaceAll(r.path, "/"+existing, "/"+missing)
		want := c.send(t, r)
		norm := func(a answer) string {
			return fmt.Sprint(a.status, " ", strings.NewReplacer(existing, "X", missing, "X").Replace(string(a.body)))
		}
		if norm(got) != norm(want) {
			t.Errorf("%s: %s tells B's %s from a missing object:\n%s\nvs\n%s", who, r.method, existing, norm(got), norm(want))
		}
	}

	for _, o := range c.doc.operations() {
		if !c.doc.secured(o) {
			continue
		}
		id := o.op.OperationID
		body := []any{nil}
		if o.op.RequestBody != nil {
			if body = bodies[id]; body == nil {
				t.Errorf("%s (%s) takes a body; add a plausible one to this test", o, id)
				continue
			}
		}
		for who, token := range aTokens {
			t.Run(who+" "+id, func(t *testing.T) {
				for _, bd := range body {
					if hubWide(o.path) {
						// Registries and packs belong to no project: every
						// token reads them, only hub admins change them.
						path := strings.NewReplacer("{registry}", "builtin", "{name}", "builtin").Replace(o.path)
						if strings.HasPrefix(o.path, "/api/v1/packs/") {
							path = strings.NewReplacer("{registry}", "builtin", "{name}", "k3s").Replace(o.path)
						}
						if o.method != http.MethodGet {
							c.expectError(t, http.StatusForbidden, v1.CodeForbidden, "", call{method: o.method, path: path, token: token, body: bd})
							continue
						}
						ans := c.expect(t, 200, call{method: o.method, path: path, token: token})
						for _, n := range bNames {
							if strings.Contains(string(ans.body), `"`+n+`"`) {
								t.Errorf("%s: %s shows %q: %s", who, o, n, ans.body)
							}
						}
						continue
					}
					if !strings.Contains(o.path, "{") {
						if o.method != http.MethodGet {
							refused(t, who, call{method: o.method, path: o.path, token: token, body: bd})
							continue
						}
						// Lists and the caller itself: they answer, but
						// without a trace of B.
						ans := c.expect(t, 200, call{method: o.method, path: o.path, token: token})
						for _, n := range bNames {
							if strings.Contains(string(ans.body), `"`+n+`"`) {
								t.Errorf("%s: %s shows %q: %s", who, o, n, ans.body)
							}
						}
						continue
					}
					// Every path parameter pointed at B: the project, and
					// each kind of B object the path can name.
					targets := []map[string]string{{"project": b, "name": "b-rt", "id": "b-host"}, {"project": b, "name": "b-rt", "id": "b-pending"}}
					switch {
					case strings.HasPrefix(o.path, "/api/v1/tokens/"):
						targets = []map[string]string{{"name": "b-admin"}}
					case strings.Contains(o.path, "/profiles/"):
						targets = []map[string]string{{"project": b, "name": "b-profile", "version": "1.0.0"}, {"project": b, "name": "b-profile", "version": "latest"}}
					case strings.Contains(o.path, "/clusters/"):
						targets = []map[string]string{{"project": b, "name": "b-cluster"}}
					}
					done := map[string]bool{}
					for _, tg := range targets {
						path := o.path
						for k, v := range tg {
							path = strings.ReplaceAll(path, "{"+k+"}", v)
						}
						if done[path] {
							continue
						}
						done[path] = true
						r := call{method: o.method, path: path, token: token, body: bd}
						switch {
						case strings.Contains(o.path, "{id}"):
							same(t, who, r, tg["id"], "no-such-host")
						case strings.Contains(o.path, "{name}"):
							same(t, who, r, tg["name"], "no-such-name")
						default:
							same(t, who, r, b, "no-such-project")
						}
						if o.method == http.MethodGet && o.op.Responses.Status(200).Value.Content["text/event-stream"] != nil {
							refused(t, who, call{method: o.method, path: path + "?watch=1", token: token})
						}
						// B's objects through A's path: lookups must be
						// scoped to the project in the path (host IDs are
						// unique hub-wide, so a lookup by ID alone would
						// find them).
						if tg["project"] != "" && (strings.Contains(o.path, "{id}") || strings.Contains(o.path, "{name}")) {
							r.path = strings.Replace(path, "/projects/"+b+"/", "/projects/"+a+"/", 1)
							refused(t, who, r)
						}
					}
				}
			})
		}
	}

	if after := snapshot(); !maps.Equal(before, after) {
		t.Errorf("project B changed:\nbefore %v\nafter  %v", before, after)
	}
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: "/api/v1/tokens", token: tn.admin})); !slices.Equal(got, []string{"a-admin", "a-viewer", "admin", "b-admin"}) {
		t.Errorf("API tokens after the walk: %v", got)
	}
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: "/api/v1/projects", token: tn.admin})); !slices.Equal(got, []string{"default", a, b}) {
		t.Errorf("projects after the walk: %v", got)
	}
	// And A's own view is A only.
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: "/api/v1/projects", token: aTokens["admin of A"]})); !slices.Equal(got, []string{a}) {
		t.Errorf("admin of A lists projects %v", got)
	}
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: "/api/v1/tokens", token: aTokens["admin of A"]})); !slices.Equal(got, []string{"a-admin", "a-viewer"}) {
		t.Errorf("admin of A lists API tokens %v", got)
	}
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: "/api/v1/tokens", token: aTokens["viewer of A"]})); len(got) != 0 {
		t.Errorf("viewer of A lists API tokens %v", got)
	}
}

// TestIntegrationRoleBoundaries checks what each role may do inside its own
// project: viewer < site-operator < editor < admin.
func TestIntegrationRoleBoundaries(t *testing.T) {
	const a, b = "plant-a", "plant-b"
	tn := newTenants(t, a, b)
	c := tn.c
	role := func(r string) v1.ProjectRole { return v1.ProjectRole{Project: a, Role: r} }
	tokens := map[string]string{
		"viewer":        tn.token(t, "viewer", role(v1.RoleViewer)),
		"site-operator": tn.token(t, "site-operator", role(v1.RoleSiteOperator)),
		"editor":        tn.token(t, "editor", role(v1.RoleEditor)),
		"admin":         tn.token(t, "project-admin", role(v1.RoleAdmin)),
	}
	pa := "/api/v1/projects/" + a
	c.expect(t, 201, call{method: "POST", path: pa + "/registrationtokens", token: tn.admin, body: obj{"metadata": obj{"name": "rt-1"}}})
	for _, id := range []string{"h-1", "h-2", "h-3"} {
		tn.register(t, a, id)
	}
	for _, id := range []string{"p-1", "p-2", "p-3"} {
		tn.pending(t, a, id)
	}
	labels := func(id string) func() any {
		return func() any {
			return obj{"metadata": obj{"revision": tn.revision(t, pa+"/hosts/"+id), "labels": obj{"rack": "r7"}}}
		}
	}
	apiToken := func(name string, roles ...v1.ProjectRole) func() any {
		return func() any { return obj{"metadata": obj{"name": name}, "spec": obj{"roles": roles}} }
	}
	constant := func(v any) func() any { return func() any { return v } }
	project := func() any {
		return obj{"metadata": obj{"revision": tn.revision(t, pa)}, "spec": obj{"description": "renamed"}}
	}

	// The rows run in order; later rows use what earlier ones made.
	for _, s := range []struct {
		who, what    string
		method, path string
		body         func() any
		want         int
	}{
		{"viewer", "list hosts", "GET", pa + "/hosts", nil, 200},
		{"viewer", "read a registration token", "GET", pa + "/registrationtokens/rt-1", nil, 200},
		{"viewer", "create a registration token", "POST", pa + "/registrationtokens", constant(obj{"metadata": obj{"name": "v-rt"}}), 403},
		{"viewer", "revoke a registration token", "POST", pa + "/registrationtokens/rt-1/revoke", nil, 403},
		{"viewer", "delete a registration token", "DELETE", pa + "/registrationtokens/rt-1", nil, 403},
		{"viewer", "register a host", "POST", pa + "/hosts", constant(obj{"metadata": obj{"name": "v-host"}}), 403},
		{"viewer", "label a host", "PATCH", pa + "/hosts/h-1", labels("h-1"), 403},
		{"viewer", "approve a host", "POST", pa + "/hosts/p-1/approve", nil, 403},
		{"viewer", "delete a host", "DELETE", pa + "/hosts/h-1", nil, 403},
		{"viewer", "update the project", "PUT", pa, project, 403},
		{"viewer", "create an API token", "POST", "/api/v1/tokens", apiToken("v-bot", role(v1.RoleViewer)), 403},
		{"viewer", "list clusters", "GET", pa + "/clusters", nil, 200},
		{"viewer", "create a cluster", "POST", pa + "/clusters", constant(tenantCluster("v-cluster", "stack", "h-1")), 403},
		{"viewer", "diff a cluster", "POST", pa + "/clusters/nothing/diff", nil, 404},
		{"viewer", "abort a cluster", "POST", pa + "/clusters/nothing/abort", nil, 403},
		{"viewer", "delete a cluster", "DELETE", pa + "/clusters/nothing", nil, 403},

		{"site-operator", "register a host", "POST", pa + "/hosts", constant(obj{"metadata": obj{"name": "so-host"}}), 201},
		{"site-operator", "label a host", "PATCH", pa + "/hosts/h-1", labels("h-1"), 200},
		{"site-operator", "approve a host", "POST", pa + "/hosts/p-1/approve", nil, 200},
		{"site-operator", "delete a host", "DELETE", pa + "/hosts/so-host", nil, 403},
		{"site-operator", "create a registration token", "POST", pa + "/registrationtokens", constant(obj{"metadata": obj{"name": "so-rt"}}), 403},
		{"site-operator", "revoke a registration token", "POST", pa + "/registrationtokens/rt-1/revoke", nil, 403},
		{"site-operator", "create an API token", "POST", "/api/v1/tokens", apiToken("so-bot", role(v1.RoleViewer)), 403},
		{"site-operator", "create a cluster", "POST", pa + "/clusters", constant(tenantCluster("so-cluster", "stack", "h-1")), 403},
		{"site-operator", "delete a cluster", "DELETE", pa + "/clusters/nothing", nil, 403},

		{"editor", "create a registration token", "POST", pa + "/registrationtokens", constant(obj{"metadata": obj{"name": "ed-rt"}}), 201},
		{"editor", "revoke a registration token", "POST", pa + "/registrationtokens/ed-rt/revoke", nil, 200},
		{"editor", "delete a registration token", "DELETE", pa + "/registrationtokens/ed-rt", nil, 204},
		{"editor", "approve a host", "POST", pa + "/hosts/p-2/approve", nil, 200},
		{"editor", "delete a host", "DELETE", pa + "/hosts/so-host", nil, 204},
		{"editor", "create an API token", "POST", "/api/v1/tokens", apiToken("ed-bot", role(v1.RoleViewer)), 403},
		// Past the role check, into validation: there is no profile "stack".
		{"editor", "create a cluster", "POST", pa + "/clusters", constant(tenantCluster("ed-cluster", "stack", "h-1")), 422},
		{"editor", "abort a cluster", "POST", pa + "/clusters/nothing/abort", nil, 404},
		{"editor", "update the project", "PUT", pa, project, 403},
		{"editor", "delete the project", "DELETE", pa, nil, 403},

		{"admin", "create an API token in A", "POST", "/api/v1/tokens", apiToken("a-bot", role(v1.RoleViewer)), 201},
		{"admin", "create an admin token in A", "POST", "/api/v1/tokens", apiToken("a-admin-2", role(v1.RoleAdmin)), 201},
		{"admin", "create an API token in B", "POST", "/api/v1/tokens", apiToken("b-bot", v1.ProjectRole{Project: b, Role: v1.RoleViewer}), 403},
		{"admin", "create an API token in A and B", "POST", "/api/v1/tokens", apiToken("ab-bot", role(v1.RoleViewer), v1.ProjectRole{Project: b, Role: v1.RoleViewer}), 403},
		{"admin", "create an API token in every project", "POST", "/api/v1/tokens", apiToken("all-bot", v1.ProjectRole{Project: v1.AllProjects, Role: v1.RoleViewer}), 403},
		{"admin", "read an API token in A", "GET", "/api/v1/tokens/a-bot", nil, 200},
		{"admin", "read the hub admin token", "GET", "/api/v1/tokens/admin", nil, 404},
		{"admin", "delete the hub admin token", "DELETE", "/api/v1/tokens/admin", nil, 404},
		{"admin", "delete an API token in A", "DELETE", "/api/v1/tokens/a-bot", nil, 204},
		{"admin", "update the project", "PUT", pa, project, 200},
		{"admin", "update project B", "PUT", "/api/v1/projects/" + b, constant(obj{"metadata": obj{"revision": 1}}), 404},
		{"admin", "create a project", "POST", "/api/v1/projects", constant(obj{"metadata": obj{"name": "plant-c"}}), 403},
		{"admin", "delete the project", "DELETE", pa, nil, 403},
		{"admin", "approve a host", "POST", pa + "/hosts/p-3/approve", nil, 200},
		{"admin", "delete a host", "DELETE", pa + "/hosts/h-2", nil, 204},
	} {
		t.Run(s.who+": "+s.what, func(t *testing.T) {
			var body any
			if s.body != nil {
				body = s.body()
			}
			a := c.expect(t, s.want, call{method: s.method, path: s.path, token: tokens[s.who], body: body})
			if s.want == http.StatusForbidden {
				var e v1.Error
				json.Unmarshal(a.body, &e)
				if e.Code != v1.CodeForbidden {
					t.Errorf("403 with code %q", e.Code)
				}
			}
		})
	}

	// The refused rows left no trace.
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: pa + "/registrationtokens", token: tn.admin})); !slices.Equal(got, []string{"rt-1"}) {
		t.Errorf("registration tokens of %s: %v", a, got)
	}
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: pa + "/hosts", token: tn.admin})); !slices.Equal(got, []string{"h-1", "h-3", "p-1", "p-2", "p-3"}) {
		t.Errorf("hosts of %s: %v", a, got)
	}
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: "/api/v1/tokens", token: tn.admin})); !slices.Equal(got, []string{"a-admin-2", "admin", "editor", "project-admin", "site-operator", "viewer"}) {
		t.Errorf("API tokens: %v", got)
	}
}

// TestIntegrationDeletedAPITokenStopsWorking: deleting an API token revokes
// it on the very next request, including on a connection it already used,
// and a new token of the same name does not revive the old secret.
func TestIntegrationDeletedAPITokenStopsWorking(t *testing.T) {
	const a = "plant-a"
	tn := newTenants(t, a)
	c := tn.c
	old := tn.token(t, "robot", v1.ProjectRole{Project: a, Role: v1.RoleViewer})
	c.expect(t, 200, call{method: "GET", path: "/api/v1/whoami", token: old})
	c.expect(t, 200, call{method: "GET", path: "/api/v1/projects/" + a + "/hosts", token: old})

	c.expect(t, 204, call{method: "DELETE", path: "/api/v1/tokens/robot", token: tn.admin})
	c.expectError(t, 401, v1.CodeUnauthenticated, "", call{method: "GET", path: "/api/v1/whoami", token: old})
	c.expectError(t, 401, v1.CodeUnauthenticated, "", call{method: "GET", path: "/api/v1/projects/" + a + "/hosts", token: old})

	renewed := tn.token(t, "robot", v1.ProjectRole{Project: a, Role: v1.RoleViewer})
	c.expect(t, 200, call{method: "GET", path: "/api/v1/whoami", token: renewed})
	c.expectError(t, 401, v1.CodeUnauthenticated, "", call{method: "GET", path: "/api/v1/whoami", token: old})

	// A project admin revokes a token of its project the same way.
	padmin := tn.token(t, "project-admin", v1.ProjectRole{Project: a, Role: v1.RoleAdmin})
	c.expect(t, 204, call{method: "DELETE", path: "/api/v1/tokens/robot", token: padmin})
	c.expectError(t, 401, v1.CodeUnauthenticated, "", call{method: "GET", path: "/api/v1/whoami", token: renewed})
	// Even its own token.
	c.expect(t, 204, call{method: "DELETE", path: "/api/v1/tokens/project-admin", token: padmin})
	c.expectError(t, 401, v1.CodeUnauthenticated, "", call{method: "GET", path: "/api/v1/tokens", token: padmin})
}

// TestIntegrationDeletedProjectLeavesNoAccess: a project name can be used
// again after the project is deleted, possibly by another team. Nothing of
// the old project may carry over: not the roles API tokens held in it, not
// its events. (Refusing the delete while tokens still grant roles in the
// project is a correct answer too.)
func TestIntegrationDeletedProjectLeavesNoAccess(t *testing.T) {
	const p = "plant-x"
	tn := newTenants(t, p)
	c := tn.c
	pp := "/api/v1/projects/" + p
	contractor := tn.token(t, "contractor", v1.ProjectRole{Project: p, Role: v1.RoleEditor})
	c.expect(t, 201, call{method: "POST", path: pp + "/registrationtokens", token: contractor, body: obj{"metadata": obj{"name": "rt"}}})
	tn.register(t, p, "old-host")
	c.expect(t, 204, call{method: "DELETE", path: pp + "/registrationtokens/rt", token: contractor})
	c.expect(t, 204, call{method: "DELETE", path: pp + "/hosts/old-host", token: contractor})

	switch a := c.send(t, call{method: "DELETE", path: pp, token: tn.admin}); a.status {
	case http.StatusConflict:
		t.Logf("the hub refuses to delete a project API tokens still grant roles in: %s", a.body)
		return
	case http.StatusNoContent:
	default:
		t.Fatalf("DELETE %s: %d %s", pp, a.status, a.body)
	}
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: tn.admin, body: obj{
		"metadata": obj{"name": p}, "spec": obj{"description": "someone else's plant"},
	}})

	for _, path := range []string{pp, pp + "/hosts", pp + "/events"} {
		if a := c.send(t, call{method: "GET", path: path, token: contractor}); a.status != http.StatusNotFound {
			t.Errorf("a token of the deleted project reads GET %s of the new one: %d %s", path, a.status, a.body)
		}
	}
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: pp + "/events", token: tn.admin})); len(got) != 0 {
		t.Errorf("the new project shows %d events of the deleted one", len(got))
	}
}

// hubWide reports whether a route is about objects of no project
// (registries and packs).
func hubWide(path string) bool {
	return strings.HasPrefix(path, "/api/v1/registries") || strings.HasPrefix(path, "/api/v1/packs")
}

// fullProfile is the store-edge example profile (a full one, version
// 1.0.0, on the built-in catalog) under name.
func fullProfile(t testing.TB, name string) *v1.ClusterProfile {
	t.Helper()
	p, err := profile.Decode(examples.StoreEdge)
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Name = name
	return p
}

// tenantCluster is a one-node cluster of a fullProfile on host.
func tenantCluster(name, prof, host string) obj {
	return obj{
		"metadata": obj{"name": name},
		"spec": obj{
			"profiles":  []obj{{"name": prof, "version": "1.0.0"}},
			"variables": obj{"siteCode": "de-001"},
			"pools":     []obj{{"name": "cp", "controlPlane": true, "hosts": []string{host}}},
		},
	}
}

// addonProfile is a small valid profile version 1.0.0 on the built-in
// catalog.
func addonProfile(name string) obj {
	return obj{
		"metadata": obj{"name": name},
		"spec": obj{
			"type": "addon", "version": "1.0.0",
			"layers":    []obj{{"pack": "metrics-server", "version": "3.x", "values": "site: {{ .Vars.site }}\n"}},
			"variables": []obj{{"name": "site", "type": "string", "default": "lab"}},
		},
	}
}
