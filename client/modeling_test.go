package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// seenRequest is what the fake hub recorded of one request.
type seenRequest struct {
	method, path, query string
	body                map[string]any
}

// recordingHub answers every request with reply (JSON) and records it.
func recordingHub(t *testing.T, status int, reply string) (*Client, *[]seenRequest) {
	t.Helper()
	var seen []seenRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seenRequest{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &s.body); err != nil {
				t.Errorf("%s %s: body is not a JSON object: %s", r.Method, r.URL, b)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, ct)
			}
		}
		seen = append(seen, s)
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, &seen
}

func TestModelingRequests(t *testing.T) {
	ctx := context.Background()
	profile := func() *v1.ClusterProfile {
		return &v1.ClusterProfile{
			Metadata: v1.ObjectMeta{Name: "edge-k3s", Revision: 7},
			Spec:     v1.ClusterProfileSpec{Type: v1.ProfileFull, Version: "1.0.0+build.1", Layers: []v1.ProfileLayer{{Pack: "k3s", Version: "1.30.x"}}},
		}
	}
	tests := []struct {
		name   string
		status int
		call   func(c *Client) error
		method string
		path   string
		query  string
		// body holds the JSON fields the request must carry (nil: no body).
		body map[string]any
	}{
		{"list registries", 200, func(c *Client) error { _, err := c.ListRegistries(ctx); return err },
			"GET", "/api/v1/registries", "", nil},
		{"get registry", 200, func(c *Client) error { _, err := c.GetRegistry(ctx, "lab"); return err },
			"GET", "/api/v1/registries/lab", "", nil},
		{"create registry", 201, func(c *Client) error {
			_, err := c.CreateRegistry(ctx, &v1.Registry{Metadata: v1.ObjectMeta{Name: "lab"}, Spec: v1.RegistrySpec{Type: v1.RegistryHelm, URL: "https://charts.example.com"}})
			return err
		}, "POST", "/api/v1/registries", "", map[string]any{"apiVersion": v1.APIVersion, "kind": v1.KindRegistry, "metadata.name": "lab", "spec.url": "https://charts.example.com"}},
		{"update registry", 200, func(c *Client) error {
			_, err := c.UpdateRegistry(ctx, &v1.Registry{Metadata: v1.ObjectMeta{Name: "lab", Revision: 4}, Spec: v1.RegistrySpec{Type: v1.RegistryHelm, URL: "https://x"}})
			return err
		}, "PUT", "/api/v1/registries/lab", "", map[string]any{"kind": v1.KindRegistry, "metadata.revision": float64(4)}},
		{"delete registry", 204, func(c *Client) error { return c.DeleteRegistry(ctx, "lab") },
			"DELETE", "/api/v1/registries/lab", "", nil},
		{"sync registry", 200, func(c *Client) error { _, err := c.SyncRegistry(ctx, "lab"); return err },
			"POST", "/api/v1/registries/lab/sync", "", nil},

		{"list packs, all", 200, func(c *Client) error { _, err := c.ListPacks(ctx, PackFilter{}); return err },
			"GET", "/api/v1/packs", "", nil},
		{"list packs, filtered", 200, func(c *Client) error {
			_, err := c.ListPacks(ctx, PackFilter{Registry: "builtin", Layer: "k8s", Type: "distro", Name: "k3"})
			return err
		}, "GET", "/api/v1/packs", "layer=k8s&name=k3&registry=builtin&type=distro", nil},
		{"get pack", 200, func(c *Client) error { _, err := c.GetPack(ctx, "lab", "edge-agent"); return err },
			"GET", "/api/v1/packs/lab/edge-agent", "", nil},

		{"list profiles", 200, func(c *Client) error { _, err := c.ListProfiles(ctx, "plant-7", ""); return err },
			"GET", "/api/v1/projects/plant-7/profiles", "", nil},
		{"list versions", 200, func(c *Client) error { _, err := c.ListProfiles(ctx, "plant-7", "edge-k3s"); return err },
			"GET", "/api/v1/projects/plant-7/profiles/edge-k3s", "", nil},
		{"get latest", 200, func(c *Client) error { _, err := c.GetProfile(ctx, "plant-7", "edge-k3s", ""); return err },
			"GET", "/api/v1/projects/plant-7/profiles/edge-k3s/latest", "", nil},
		// Build metadata must reach the hub as one path segment.
		{"get version", 200, func(c *Client) error { _, err := c.GetProfile(ctx, "plant-7", "edge-k3s", "1.0.0+build.1"); return err },
			"GET", "/api/v1/projects/plant-7/profiles/edge-k3s/1.0.0+build.1", "", nil},
		{"create profile", 201, func(c *Client) error { _, err := c.CreateProfile(ctx, "plant-7", profile()); return err },
			"POST", "/api/v1/projects/plant-7/profiles", "", map[string]any{"kind": v1.KindClusterProfile, "metadata.name": "edge-k3s", "spec.version": "1.0.0+build.1"}},
		{"update profile", 200, func(c *Client) error { _, err := c.UpdateProfile(ctx, "plant-7", profile()); return err },
			"PUT", "/api/v1/projects/plant-7/profiles/edge-k3s/1.0.0+build.1", "", map[string]any{"apiVersion": v1.APIVersion, "metadata.revision": float64(7)}},
		{"delete profile", 204, func(c *Client) error { return c.DeleteProfile(ctx, "plant-7", "edge-k3s", "1.0.0") },
			"DELETE", "/api/v1/projects/plant-7/profiles/edge-k3s/1.0.0", "", nil},
		{"publish profile", 200, func(c *Client) error { _, err := c.PublishProfile(ctx, "plant-7", "edge-k3s", "1.0.0"); return err },
			"POST", "/api/v1/projects/plant-7/profiles/edge-k3s/1.0.0/publish", "", nil},
		{"clone profile", 201, func(c *Client) error {
			_, err := c.CloneProfile(ctx, "plant-7", "edge-k3s", "1.0.0", "edge-k3s-ha", "2.0.0")
			return err
		}, "POST", "/api/v1/projects/plant-7/profiles/edge-k3s/1.0.0/clone", "", map[string]any{"name": "edge-k3s-ha", "version": "2.0.0"}},
		{"bump profile", 201, func(c *Client) error {
			_, err := c.BumpProfile(ctx, "plant-7", "edge-k3s", "1.0.0", "minor")
			return err
		},
			"POST", "/api/v1/projects/plant-7/profiles/edge-k3s/1.0.0/bump", "", map[string]any{"part": "minor"}},
		{"render profile", 200, func(c *Client) error {
			_, err := c.RenderProfile(ctx, "plant-7", "edge-k3s", "1.0.0", map[string]string{"site": "berlin"})
			return err
		}, "POST", "/api/v1/projects/plant-7/profiles/edge-k3s/1.0.0/render", "", map[string]any{"variables.site": "berlin"}},
		{"render latest without variables", 200, func(c *Client) error { _, err := c.RenderProfile(ctx, "plant-7", "edge-k3s", "", nil); return err },
			"POST", "/api/v1/projects/plant-7/profiles/edge-k3s/latest/render", "", map[string]any{}},
		// A name with a slash stays inside its segment.
		{"escaped names", 200, func(c *Client) error { _, err := c.GetProfile(ctx, "p/q", "a b", "1.0.0"); return err },
			"GET", "/api/v1/projects/p%2Fq/profiles/a%20b/1.0.0", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, seen := recordingHub(t, tt.status, `{"items":[]}`)
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if len(*seen) != 1 {
				t.Fatalf("%d requests, want 1", len(*seen))
			}
			got := (*seen)[0]
			if got.method != tt.method || got.path != tt.path || got.query != tt.query {
				t.Errorf("sent %s %s?%s, want %s %s?%s", got.method, got.path, got.query, tt.method, tt.path, tt.query)
			}
			if tt.body == nil {
				if got.body != nil {
					t.Errorf("sent body %v, want none", got.body)
				}
				return
			}
			if got.body == nil {
				t.Fatalf("sent no body, want %v", tt.body)
			}
			for path, want := range tt.body {
				if v := lookup(got.body, path); v != want {
					t.Errorf("body %s = %#v, want %#v (body %v)", path, v, want, got.body)
				}
			}
		})
	}
}

// lookup reads a dotted path in a decoded JSON object.
func lookup(m map[string]any, path string) any {
	var v any = m
	for k := range strings.SplitSeq(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

func TestModelingMissingNames(t *testing.T) {
	ctx := context.Background()
	c, seen := recordingHub(t, 200, `{}`)
	for name, call := range map[string]func() error{
		"registry": func() error { _, err := c.GetRegistry(ctx, ""); return err },
		"sync":     func() error { _, err := c.SyncRegistry(ctx, ""); return err },
		"pack":     func() error { _, err := c.GetPack(ctx, "builtin", ""); return err },
		"project":  func() error { _, err := c.ListProfiles(ctx, "", "x"); return err },
		"profile":  func() error { _, err := c.GetProfile(ctx, "p", "", "1.0.0"); return err },
		"create":   func() error { _, err := c.CreateProfile(ctx, "p", &v1.ClusterProfile{}); return err },
		"update version": func() error {
			_, err := c.UpdateProfile(ctx, "p", &v1.ClusterProfile{Metadata: v1.ObjectMeta{Name: "x"}})
			return err
		},
		"delete version":  func() error { return c.DeleteProfile(ctx, "p", "x", "") },
		"publish version": func() error { _, err := c.PublishProfile(ctx, "p", "x", ""); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if len(*seen) != 0 {
		t.Errorf("requests were sent: %v", *seen)
	}
}

func TestGetPackWithoutRegistry(t *testing.T) {
	pack := func(registry, name string) string {
		return `{"metadata":{"name":"` + registry + "/" + name + `"},"spec":{"name":"` + name + `","registry":"` + registry + `"}}`
	}
	tests := []struct {
		name     string
		pack     string
		items    []string
		want     string // registry of the pack found
		sentinel error
	}{
		{"one registry", "edge-agent", []string{pack("lab", "edge-agent"), pack("lab", "edge-agent-extra")}, "lab", nil},
		{"built-in wins a tie", "calico", []string{pack("lab", "calico"), pack("builtin", "calico")}, "builtin", nil},
		{"ambiguous", "calico", []string{pack("lab", "calico"), pack("acme", "calico")}, "", ErrInvalid},
		// The hub's name filter matches substrings: a longer name is not it.
		{"only longer names", "calico", []string{pack("lab", "calico-policies")}, "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, seen := recordingHub(t, 200, `{"items":[`+strings.Join(tt.items, ",")+`],"revision":3}`)
			name := tt.pack
			p, err := c.GetPack(context.Background(), "", name)
			if got := (*seen)[0]; got.path != "/api/v1/packs" || got.query != "name="+name {
				t.Errorf("sent %s?%s", got.path, got.query)
			}
			if tt.sentinel != nil {
				if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), name) {
					t.Errorf("err = %v, want %v naming %q", err, tt.sentinel, name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Spec.Registry != tt.want || p.Spec.Name != name {
				t.Errorf("found %s/%s, want %s/%s", p.Spec.Registry, p.Spec.Name, tt.want, name)
			}
		})
	}
}

func TestRenderProfileErrors(t *testing.T) {
	c, _ := recordingHub(t, 422, `{"code":"invalid","message":"variable \"site\" is required","field":"variables.site"}`)
	_, err := c.RenderProfile(context.Background(), "p", "edge", "1.0.0", nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `variable "site" is required`) {
		t.Errorf("err = %v", err)
	}
}
