package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

var (
	gkNamespace = schema.GroupKind{Kind: "Namespace"}
	gkCRD       = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
)

// object is one Kubernetes object of a layer, with where it came from for
// error messages.
type object struct {
	manifest string // the Manifest's name
	doc      int    // the document's position in the manifest, from 1
	u        *unstructured.Unstructured
}

func (o object) gk() schema.GroupKind { return o.u.GroupVersionKind().GroupKind() }

// String names the object as errors and health messages do:
// "ConfigMap kube-system/x", "Namespace x".
func (o object) String() string { return describe(o.u.GetKind(), o.u.GetNamespace(), o.u.GetName()) }

func describe(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}

// applyRank orders the objects of a layer: Namespaces and CRDs before
// everything else, because objects in a namespace cannot be created before
// it, and objects of a custom kind not before its CRD is established.
// Within a rank, the layer's order is kept.
func applyRank(gk schema.GroupKind) int {
	switch gk {
	case gkNamespace:
		return 0
	case gkCRD:
		return 1
	}
	return 2
}

// parseLayer splits the layer's manifests into objects, in apply order.
// Empty documents (only comments or whitespace) are skipped; List kinds are
// expanded into their items. Errors name the manifest and the document,
// counted from 1 as the "---" lines separate them, empty ones included.
func parseLayer(l v1.RenderedLayer) ([]object, error) {
	var objs []object
	seen := map[string]object{}
	for _, m := range l.Manifests {
		docs, err := splitDocuments(m.Content)
		for i, d := range docs {
			items, err := decodeDocument(d)
			if err != nil {
				return nil, fmt.Errorf("manifest %q document %d: %w", m.Name, i+1, err)
			}
			for _, u := range items {
				o := object{manifest: m.Name, doc: i + 1, u: u}
				// The key has the namespace as written: an object given once
				// without a namespace and once as "default" is not caught here,
				// and is simply applied twice.
				id := o.gk().String() + "/" + u.GetNamespace() + "/" + u.GetName()
				if first, dup := seen[id]; dup {
					return nil, fmt.Errorf("manifest %q document %d: %s is also in manifest %q document %d", m.Name, i+1, o, first.manifest, first.doc)
				}
				seen[id] = o
				objs = append(objs, o)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("manifest %q document %d: %w", m.Name, len(docs)+1, err)
		}
	}
	sort.SliceStable(objs, func(i, j int) bool { return applyRank(objs[i].gk()) < applyRank(objs[j].gk()) })
	return objs, nil
}

// splitDocuments splits a YAML stream at its "---" lines. It returns the
// documents before an unreadable one along with the error.
func splitDocuments(content string) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(content)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, bytes.Clone(d))
	}
}

// decodeDocument turns one YAML (or JSON) document into its objects: none
// for an empty one, the items of a List, else one.
func decodeDocument(doc []byte) ([]*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	j = bytes.TrimSpace(j)
	if len(j) == 0 || string(j) == "null" {
		return nil, nil
	}
	var v any
	// utiljson keeps integers int64, as the rest of apimachinery expects.
	if err := utiljson.Unmarshal(j, &v); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a Kubernetes object but a %s", jsonType(v))
	}
	u := &unstructured.Unstructured{Object: m}
	if u.IsList() {
		var out []*unstructured.Unstructured
		items, _ := m["items"].([]any)
		for i, it := range items {
			im, ok := it.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s item %d: not a Kubernetes object but a %s", u.GetKind(), i+1, jsonType(it))
			}
			iu := &unstructured.Unstructured{Object: im}
			if err := validObject(iu); err != nil {
				return nil, fmt.Errorf("%s item %d: %w", u.GetKind(), i+1, err)
			}
			out = append(out, iu)
		}
		return out, nil
	}
	if err := validObject(u); err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{u}, nil
}

func validObject(u *unstructured.Unstructured) error {
	if s, ok := u.Object["apiVersion"].(string); !ok || s == "" {
		return errors.New("apiVersion is missing")
	}
	if s, ok := u.Object["kind"].(string); !ok || s == "" {
		return errors.New("kind is missing")
	}
	if _, ok := u.Object["metadata"].(map[string]any); !ok {
		return fmt.Errorf("%s: metadata is missing", u.GetKind())
	}
	md := u.Object["metadata"].(map[string]any)
	for _, f := range []string{"name", "namespace"} {
		// YAML 1.1 reads an unquoted n, no, on, 1 … as a boolean or number.
		if v, ok := md[f]; ok {
			if _, isString := v.(string); !isString {
				return fmt.Errorf("%s: metadata.%s is a %s, not a string (quote it)", u.GetKind(), f, jsonType(v))
			}
		}
	}
	// Server-side apply needs a name: generateName would create a new
	// object on every pass.
	if u.GetName() == "" {
		return fmt.Errorf("%s: metadata.name is missing (generateName cannot be applied repeatedly)", u.GetKind())
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	default:
		return "number"
	}
}
