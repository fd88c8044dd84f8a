package manifests

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func names(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.String())
	}
	return out
}

// TestParseLayerOrder: Namespaces and CRDs first, whichever manifest they
// are in, else the layer's order; empty documents and comments skipped,
// Lists expanded.
func TestParseLayerOrder(t *testing.T) {
	l := v1.RenderedLayer{Manifests: []v1.Manifest{
		{Name: "app.yaml", Content: `
# a comment before the first separator
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: app}
---
# only a comment
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: app}
data: {a: "1"}
---
`},
		{Name: "setup.yaml", Content: `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: s, namespace: app}
- apiVersion: v1
  kind: Namespace
  metadata: {name: app}
`},
		{Name: "json.json", Content: `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "app"}}`},
	}}
	objs, err := parseLayer(l)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Namespace app",
		"CustomResourceDefinition widgets.example.com",
		"Widget app/w",
		"ConfigMap app/c",
		"Service app/s",
		"Secret app/x",
	}
	if got := names(objs); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
	// Integers stay int64, as apimachinery's helpers expect.
	if _, ok := objs[3].u.Object["data"].(map[string]any)["a"].(string); !ok {
		t.Errorf("quoted number lost its type: %#v", objs[3].u.Object["data"])
	}
	// Documents are counted as the "---" lines separate them, empty ones
	// included, so the number matches what an editor shows.
	if objs[3].manifest != "app.yaml" || objs[3].doc != 4 {
		t.Errorf("ConfigMap came from %s document %d, want app.yaml document 4", objs[3].manifest, objs[3].doc)
	}
}

func TestParseLayerErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"invalid YAML", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [unclosed\n", `manifest "m.yaml" document 2: invalid YAML`},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", `manifest "m.yaml" document 1: kind is missing`},
		{"no apiVersion", "kind: ConfigMap\nmetadata: {name: a}\n", `manifest "m.yaml" document 1: apiVersion is missing`},
		{"no name", "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n", `manifest "m.yaml" document 2: ConfigMap: metadata.name is missing`},
		{"no metadata", "apiVersion: v1\nkind: ConfigMap\n", `manifest "m.yaml" document 1: ConfigMap: metadata is missing`},
		{"boolean namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: no}\n", `manifest "m.yaml" document 1: ConfigMap: metadata.namespace is a boolean, not a string (quote it)`},
		{"scalar", "just a string\n", `manifest "m.yaml" document 1: not a Kubernetes object but a string`},
		{"list document", "- a\n- b\n", `manifest "m.yaml" document 1: not a Kubernetes object but a list`},
		{"bad list item", "apiVersion: v1\nkind: List\nitems:\n- 3\n", `manifest "m.yaml" document 1: List item 1: not a Kubernetes object but a number`},
		{"bad separator", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n--- x\n", `manifest "m.yaml" document 1: invalid Yaml document separator`},
		{"duplicate", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\n",
			`manifest "m.yaml" document 2: ConfigMap ns/a is also in manifest "m.yaml" document 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseLayer(v1.RenderedLayer{Manifests: []v1.Manifest{{Name: "m.yaml", Content: tt.content}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseLayerEmpty(t *testing.T) {
	objs, err := parseLayer(v1.RenderedLayer{Manifests: []v1.Manifest{{Name: "a", Content: ""}, {Name: "b", Content: "---\n# nothing\n---\nnull\n"}}})
	if err != nil || len(objs) != 0 {
		t.Fatalf("got %v, %v; want no objects", names(objs), err)
	}
}

func TestSafeName(t *testing.T) {
	if got := LabelValue("calico"); got != "calico" {
		t.Errorf("LabelValue(calico) = %q, want it unchanged", got)
	}
	seen := map[string]string{}
	for _, key := range []string{"calico#2", "calico-2", "my_layer", "my-layer", strings.Repeat("a", 63) + "#2", strings.Repeat("a", 63) + "#3", "#", "UPPER"} {
		v := LabelValue(key)
		if len(v) > 63 || !reSafe.MatchString(v) {
			t.Errorf("LabelValue(%q) = %q: not a valid label value", key, v)
		}
		if other, dup := seen[v]; dup {
			t.Errorf("LabelValue(%q) = LabelValue(%q) = %q", key, other, v)
		}
		seen[v] = key
		if n := InventoryName(key); len(n) > 253 || !reSafe.MatchString(n) {
			t.Errorf("InventoryName(%q) = %q: not a valid name", key, n)
		}
	}
}

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	items, err := decodeDocument([]byte(y))
	if err != nil || len(items) != 1 {
		t.Fatalf("decode: %v", err)
	}
	return items[0]
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name  string
		y     string
		ready bool
		why   string
	}{
		{"configmap", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", true, ""},
		{"deployment never seen", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 2}\n", false, "has not seen"},
		{"deployment rolling", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, updatedReplicas: 2, availableReplicas: 1}\n", false, "1 of 2 replicas available"},
		{"deployment available", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2}\n", true, ""},
		{"deployment default replicas", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {}\nstatus: {observedGeneration: 1, updatedReplicas: 1, availableReplicas: 1}\n", true, ""},
		{"statefulset scaled to zero", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: a, generation: 1}\nspec: {replicas: 0}\nstatus: {observedGeneration: 1}\n", true, ""},
		{"daemonset", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: a, generation: 1}\nstatus: {observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2}\n", false, "2 of 3 pods available"},
		{"crd established", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a}\nstatus: {conditions: [{type: NamesAccepted, status: 'True'}, {type: Established, status: 'True'}]}\n", true, ""},
		{"crd names clash", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a}\nstatus: {conditions: [{type: NamesAccepted, status: 'False', message: 'plural taken'}]}\n", false, "names not accepted: plural taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready, why := readiness(obj(t, tt.y))
			if ready != tt.ready || !strings.Contains(why, tt.why) {
				t.Errorf("readiness = %v, %q; want %v, %q", ready, why, tt.ready, tt.why)
			}
		})
	}
}

func TestKubeconfigFileMissing(t *testing.T) {
	_, err := KubeconfigFile("/nonexistent/kubeconfig")(t.Context())
	if err == nil || !strings.Contains(err.Error(), "kubeconfig /nonexistent/kubeconfig") {
		t.Errorf("error %v, want one naming the file", err)
	}
}
