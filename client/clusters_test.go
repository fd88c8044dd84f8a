package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func testCluster() *v1.Cluster {
	return &v1.Cluster{
		Metadata: v1.ObjectMeta{Name: "store-berlin", Revision: 12, Labels: map[string]string{"site": "berlin"}},
		Spec: v1.ClusterSpec{
			Profiles:  []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}},
			Variables: map[string]string{"siteCode": "de-017"},
			Pools: []v1.NodePool{
				{Name: "cp", ControlPlane: true, Hosts: []string{"edge-1"}},
				{Name: "workers", Hosts: []string{"edge-2", "edge-3"}, UpdateStrategy: v1.ContractFirst},
			},
		},
	}
}

func TestClusterRequests(t *testing.T) {
	ctx := context.Background()
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
		{"list", 200, func(c *Client) error { _, err := c.ListClusters(ctx, "plant-7"); return err },
			"GET", "/api/v1/projects/plant-7/clusters", "", nil},
		{"get", 200, func(c *Client) error { _, err := c.GetCluster(ctx, "plant-7", "store-berlin"); return err },
			"GET", "/api/v1/projects/plant-7/clusters/store-berlin", "", nil},
		{"create", 201, func(c *Client) error { _, err := c.CreateCluster(ctx, "plant-7", testCluster()); return err },
			"POST", "/api/v1/projects/plant-7/clusters", "", map[string]any{
				"apiVersion": v1.APIVersion, "kind": v1.KindCluster, "metadata.name": "store-berlin",
				"spec.variables.siteCode": "de-017", "metadata.labels.site": "berlin",
			}},
		// The update carries the revision it read: the hub's optimistic lock.
		{"update", 200, func(c *Client) error { _, err := c.UpdateCluster(ctx, "plant-7", testCluster()); return err },
			"PUT", "/api/v1/projects/plant-7/clusters/store-berlin", "", map[string]any{
				"kind": v1.KindCluster, "metadata.revision": float64(12),
			}},
		{"delete", 202, func(c *Client) error { _, err := c.DeleteCluster(ctx, "plant-7", "store-berlin"); return err },
			"DELETE", "/api/v1/projects/plant-7/clusters/store-berlin", "", nil},
		{"abort", 202, func(c *Client) error { _, err := c.AbortCluster(ctx, "plant-7", "store-berlin"); return err },
			"POST", "/api/v1/projects/plant-7/clusters/store-berlin/abort", "", nil},
		// Without a proposal the hub diffs the current spec: no body at all,
		// not an empty object, which it would read as an empty spec.
		{"diff current", 200, func(c *Client) error { _, err := c.DiffCluster(ctx, "plant-7", "store-berlin", nil); return err },
			"POST", "/api/v1/projects/plant-7/clusters/store-berlin/diff", "", nil},
		{"diff proposed", 200, func(c *Client) error {
			_, err := c.DiffCluster(ctx, "plant-7", "store-berlin", &testCluster().Spec)
			return err
		}, "POST", "/api/v1/projects/plant-7/clusters/store-berlin/diff", "", map[string]any{
			"kind": v1.KindCluster, "metadata.name": "store-berlin", "spec.variables.siteCode": "de-017",
		}},
		{"escaped names", 200, func(c *Client) error { _, err := c.GetCluster(ctx, "p/q", "a b"); return err },
			"GET", "/api/v1/projects/p%2Fq/clusters/a%20b", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, seen := recordingHub(t, tt.status, `{"items":[],"cluster":"store-berlin","hosts":[]}`)
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
			for path, want := range tt.body {
				if v := lookup(got.body, path); v != want {
					t.Errorf("body %s = %#v, want %#v (body %v)", path, v, want, got.body)
				}
			}
		})
	}
}

func TestClusterAnswers(t *testing.T) {
	ctx := context.Background()
	t.Run("delete returns the cluster the hub answered with", func(t *testing.T) {
		c, _ := recordingHub(t, 202, `{"kind":"Cluster","metadata":{"name":"shop","revision":40},"spec":{"profiles":[],"pools":[]},"status":{"state":"Deleting"}}`)
		cl, err := c.DeleteCluster(ctx, "p", "shop")
		if err != nil || cl == nil || cl.Status.State != v1.ClusterDeleting || cl.Metadata.Revision != 40 {
			t.Fatalf("DeleteCluster = %+v, %v", cl, err)
		}
	})
	t.Run("diff decodes per host", func(t *testing.T) {
		c, _ := recordingHub(t, 200, `{"cluster":"shop","hosts":[{"host":"edge-1","role":"init","actions":[]},{"host":"edge-2","role":"worker","actions":["reapply layer calico (values or manifests changed)"]}]}`)
		d, err := c.DiffCluster(ctx, "p", "shop", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Hosts) != 2 || len(d.Hosts[0].Actions) != 0 || d.Hosts[1].Actions[0] != "reapply layer calico (values or manifests changed)" {
			t.Errorf("diff = %+v", d)
		}
	})
	t.Run("a diff without a body is an error, not a nil diff", func(t *testing.T) {
		c, _ := recordingHub(t, 204, "")
		if d, err := c.DiffCluster(ctx, "p", "shop", nil); err == nil || !strings.Contains(err.Error(), `diff cluster "shop"`) {
			t.Errorf("DiffCluster = %+v, %v", d, err)
		}
	})
	t.Run("abort of a running cluster is a conflict", func(t *testing.T) {
		c, _ := recordingHub(t, 409, `{"code":"conflict","message":"abort cluster \"shop\": only a Pending or Provisioning cluster can be aborted; it is Running (delete it instead): conflict"}`)
		_, err := c.AbortCluster(ctx, "p", "shop")
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "delete it instead") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("validation names the field", func(t *testing.T) {
		c, _ := recordingHub(t, 422, `{"code":"invalid","message":"a control plane of 3 hosts needs a VIP","field":"spec.vip"}`)
		_, err := c.CreateCluster(ctx, "p", testCluster())
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "spec.vip: ") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestClusterMissingNames(t *testing.T) {
	ctx := context.Background()
	c, seen := recordingHub(t, 200, `{}`)
	for name, call := range map[string]func() error{
		"list without project": func() error { _, err := c.ListClusters(ctx, ""); return err },
		"get without name":     func() error { _, err := c.GetCluster(ctx, "p", ""); return err },
		"create without name":  func() error { _, err := c.CreateCluster(ctx, "p", &v1.Cluster{}); return err },
		"update without name":  func() error { _, err := c.UpdateCluster(ctx, "p", &v1.Cluster{}); return err },
		"delete without name":  func() error { _, err := c.DeleteCluster(ctx, "p", ""); return err },
		"abort without name":   func() error { _, err := c.AbortCluster(ctx, "p", ""); return err },
		"diff without name":    func() error { _, err := c.DiffCluster(ctx, "p", "", nil); return err },
		"create without project": func() error {
			_, err := c.CreateCluster(ctx, "", testCluster())
			return err
		},
		"watch without project": func() error {
			_, errc := c.WatchClusters(ctx, "", 0)
			return <-errc
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "name is empty") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if len(*seen) != 0 {
		t.Errorf("requests were sent: %v", *seen)
	}
}

func TestWatchClusters(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/projects/plant-7/clusters" {
			http.NotFound(w, r)
			return
		}
		query = r.URL.RawQuery
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: change\nid: 8\ndata: {\"type\":\"Modified\",\"revision\":8,\"object\":{\"metadata\":{\"name\":\"shop\"},\"spec\":{\"profiles\":[],\"pools\":[]},\"status\":{\"state\":\"Running\",\"health\":\"Healthy\"}}}\n\n")
	}))
	defer srv.Close()
	c, err := New(Config{Server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, errc := c.WatchClusters(ctx, "plant-7", 7)
	ev, ok := <-events
	if !ok || ev.Type != v1.WatchModified || ev.Revision != 8 || ev.Object.Metadata.Name != "shop" || ev.Object.Status.State != v1.ClusterRunning {
		t.Fatalf("event = %+v (ok %v)", ev, ok)
	}
	if _, ok := <-events; ok {
		t.Fatal("more events than the hub sent")
	}
	if err := <-errc; !errors.Is(err, ErrStreamClosed) {
		t.Errorf("end of stream: %v", err)
	}
	if query != "since=7&watch=1" {
		t.Errorf("query = %q", query)
	}
}
