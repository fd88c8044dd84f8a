package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// inventory is what a layer has applied, kept in the cluster (ConfigMap
// outpost-system/outpost-layer-<key>) rather than on the node, so that a
// node that takes over as the writer, or an agent whose state was lost,
// still knows what to prune and remove.
type inventory struct {
	// Layer is the layer key exactly (the ConfigMap name may be mangled).
	Layer string
	// Hash is the layer hash last applied; Complete says that apply went
	// through to the end, pruning included (false while one is under way).
	Hash     string
	Complete bool
	// Kinds are the kinds the layer's objects may have: pruning lists the
	// layer's objects of these kinds by label.
	Kinds []kindRef
	// Objects are the objects the last completed apply applied, for people
	// reading the ConfigMap: pruning goes by Kinds and the label.
	Objects []objectRef
}

type kindRef struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind"`
}

func (k kindRef) gk() schema.GroupKind { return schema.GroupKind{Group: k.Group, Kind: k.Kind} }

type objectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func refOf(u *unstructured.Unstructured) objectRef {
	gvk := u.GroupVersionKind()
	return objectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

func kindsOf(objs []object) []kindRef {
	var ks []kindRef
	for _, o := range objs {
		gk := o.gk()
		ks = append(ks, kindRef{Group: gk.Group, Kind: gk.Kind})
	}
	return unionKinds(nil, ks)
}

// unionKinds merges kind lists without duplicates, sorted so the ConfigMap
// does not change when nothing did.
func unionKinds(a, b []kindRef) []kindRef {
	seen := map[kindRef]bool{}
	var out []kindRef
	for _, k := range append(append([]kindRef(nil), a...), b...) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// The inventory's data.state.
const (
	stateApplying = "applying"
	stateComplete = "complete"
)

var (
	gvrConfigMap = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrNamespace = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

func (s *session) inventoryName() string { return InventoryName(s.key) }

func (s *session) what() string {
	return "inventory ConfigMap " + InventoryNamespace + "/" + s.inventoryName()
}

// loadInventory returns the layer's inventory, nil if it has none.
func (s *session) loadInventory(ctx context.Context) (*inventory, error) {
	u, err := s.dyn.Resource(gvrConfigMap).Namespace(InventoryNamespace).Get(ctx, s.inventoryName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.what(), err)
	}
	data, _, _ := unstructured.NestedStringMap(u.Object, "data")
	inv := &inventory{Layer: data["layer"], Hash: data["hash"], Complete: data["state"] == stateComplete}
	if err := json.Unmarshal([]byte(orEmpty(data["kinds"], "[]")), &inv.Kinds); err != nil {
		return nil, fmt.Errorf("%s: kinds: %w", s.what(), err)
	}
	if err := json.Unmarshal([]byte(orEmpty(data["objects"], "[]")), &inv.Objects); err != nil {
		return nil, fmt.Errorf("%s: objects: %w", s.what(), err)
	}
	return inv, nil
}

func orEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// saveInventory writes the inventory by server-side apply, creating the
// outpost-system namespace on first use.
func (s *session) saveInventory(ctx context.Context, inv *inventory) error {
	kinds, err := json.MarshalIndent(inv.Kinds, "", " ")
	if err != nil {
		return err
	}
	objs, err := json.MarshalIndent(inv.Objects, "", " ")
	if err != nil {
		return err
	}
	// Not LabelLayer: pruning a layer that has ConfigMaps would find its
	// own inventory among them.
	state := stateApplying
	if inv.Complete {
		state = stateComplete
	}
	labels := map[string]any{LabelInventory: s.label, "app.kubernetes.io/managed-by": "outpost"}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   map[string]any{"name": s.inventoryName(), "namespace": InventoryNamespace, "labels": labels},
		"data": map[string]any{
			"layer":   inv.Layer,
			"hash":    inv.Hash,
			"state":   state,
			"kinds":   string(kinds),
			"objects": string(objs),
		},
	}}
	apply := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	res := s.dyn.Resource(gvrConfigMap).Namespace(InventoryNamespace)
	_, err = res.Apply(ctx, cm.GetName(), cm, apply)
	if apierrors.IsNotFound(err) {
		ns := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "Namespace",
			"metadata":   map[string]any{"name": InventoryNamespace, "labels": map[string]any{"app.kubernetes.io/managed-by": "outpost"}},
		}}
		if _, err := s.dyn.Resource(gvrNamespace).Apply(ctx, InventoryNamespace, ns, apply); err != nil {
			return fmt.Errorf("Namespace %s: %w", InventoryNamespace, err)
		}
		_, err = res.Apply(ctx, cm.GetName(), cm, apply)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.what(), err)
	}
	return nil
}

func (s *session) deleteInventory(ctx context.Context) error {
	err := s.dyn.Resource(gvrConfigMap).Namespace(InventoryNamespace).Delete(ctx, s.inventoryName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", s.what(), err)
	}
	return nil
}
