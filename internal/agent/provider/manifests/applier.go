package manifests

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

const (
	// FieldManager owns every field Outpost applies; one manager for all
	// layers, so an object moved from one layer to another changes hands
	// without conflicts.
	FieldManager = "outpost"
	// LabelLayer is on every applied object: LabelValue of the layer key.
	// Pruning and removal find a layer's objects by it.
	LabelLayer = "outpost.dev/layer"
	// LabelInventory is on inventory ConfigMaps: LabelValue of the layer key.
	LabelInventory = "outpost.dev/inventory"
	// AnnotationHash is on every applied object: the hash of the layer
	// version that last applied it.
	AnnotationHash = "outpost.dev/layer-hash"
	// InventoryNamespace holds the inventory ConfigMaps, one per layer.
	InventoryNamespace = "outpost-system"
	// InventoryPrefix starts the name of every inventory ConfigMap.
	InventoryPrefix = "outpost-layer-"

	// DefaultEstablishTimeout bounds the wait for a layer's CRDs.
	DefaultEstablishTimeout = time.Minute
)

// ConfigFunc returns the client configuration of the cluster to apply to.
// It is called for every action, so a provider can hand out the admin
// kubeconfig of a distro that was installed (or reinstalled) after the
// applier was made.
type ConfigFunc func(ctx context.Context) (*rest.Config, error)

// StaticConfig always returns c.
func StaticConfig(c *rest.Config) ConfigFunc {
	return func(context.Context) (*rest.Config, error) { return c, nil }
}

// KubeconfigFile reads the kubeconfig at path (its current context) on
// every call: k3s and rke2 write theirs when they start.
func KubeconfigFile(path string) ConfigFunc {
	return func(context.Context) (*rest.Config, error) {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return c, nil
	}
}

// Applier applies the manifests of layers to a cluster by server-side
// apply. It is the engine.LayerApplier for manifest layers, and what other
// appliers use for the manifests attached to their layers (it applies
// Layer.Manifests whatever the layer's type).
//
// Only the node that creates the cluster writes cluster-wide objects (Role
// init, or an empty role for a node that is a cluster of its own): with one
// writer per cluster, nodes never undo each other's work when their specs
// differ for a moment during a change. On other nodes Check reports done and
// Apply and Remove do nothing.
//
// An Applier keeps no state between calls and is safe for concurrent use.
type Applier struct {
	Config ConfigFunc
	// EstablishTimeout bounds the wait for a layer's CRDs to be established
	// before objects of their kinds are applied (default 1 minute).
	EstablishTimeout time.Duration
}

var _ engine.LayerApplier = (*Applier)(nil)

// New returns an Applier for the cluster that config gives.
func New(config ConfigFunc) *Applier { return &Applier{Config: config} }

// writer reports whether a node of this role applies cluster-wide objects.
func writer(role string) bool { return role == v1.RoleInit || role == "" }

// Check reports whether the layer is in place: for LayerApply the layer's
// last apply completed at this hash (pruning included) and every object
// exists unchanged in the fields Outpost manages, which a server-side
// dry-run of the apply tells exactly; for LayerRemove that nothing of the
// layer is left. An object someone deleted or edited makes Check false, so
// the engine applies again: that is how drift is corrected.
func (a *Applier) Check(ctx context.Context, act engine.LayerAction) (bool, error) {
	if !writer(act.Role) {
		return true, nil
	}
	if act.Op == engine.LayerRemove {
		return a.checkRemoved(ctx, act)
	}
	objs, err := parseLayer(act.Layer)
	if err != nil {
		// Apply reports it, as a permanent error.
		return false, nil
	}
	s, err := a.session(ctx, act.Key)
	if err != nil {
		return false, err
	}
	inv, err := s.loadInventory(ctx)
	if err != nil || inv == nil || !inv.Complete || inv.Hash != act.Layer.Hash {
		return false, err
	}
	for _, o := range objs {
		drift, err := s.drifted(ctx, o, act.Layer.Hash)
		if err != nil || drift != "" {
			return false, err
		}
	}
	return true, nil
}

// drifted says why o is not in place ("" if it is), by comparing the live
// object with the result of applying o again in dry-run mode.
func (s *session) drifted(ctx context.Context, o object, hash string) (string, error) {
	res, err := s.resource(ctx, o, false)
	if meta.IsNoMatchError(err) {
		return "its kind is not served", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", o, err)
	}
	live, err := res.Get(ctx, o.u.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "not found", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", o, err)
	}
	if live.GetDeletionTimestamp() != nil {
		return "being deleted", nil
	}
	if live.GetAnnotations()[AnnotationHash] != hash || live.GetLabels()[LabelLayer] != s.label {
		return "applied by another version of the layer", nil
	}
	want, err := res.Apply(ctx, o.u.GetName(), s.desired(o, hash), metav1.ApplyOptions{
		FieldManager: FieldManager, Force: true, DryRun: []string{metav1.DryRunAll},
	})
	if err != nil {
		return "", fmt.Errorf("%s: dry-run apply: %w", o, err)
	}
	if !reflect.DeepEqual(comparable(live), comparable(want)) {
		return "changed since it was applied", nil
	}
	return "", nil
}

// comparable strips what changes without anyone changing the object's
// content: field ownership (another manager setting our value to the same
// value), and what the server bumps on a write.
func comparable(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	c.SetManagedFields(nil)
	c.SetResourceVersion("")
	c.SetGeneration(0)
	return c.Object
}

// Apply applies the layer's objects in order — Namespaces and CRDs first,
// then, once the CRDs are established, the rest — and then deletes what
// earlier versions of the layer applied and this one no longer has.
// Manifests that do not parse are a permanent error: trying again cannot
// fix them, only a new spec can.
func (a *Applier) Apply(ctx context.Context, act engine.LayerAction) error {
	if !writer(act.Role) {
		return nil
	}
	objs, err := parseLayer(act.Layer)
	if err != nil {
		return engine.Permanent(err)
	}
	s, err := a.session(ctx, act.Key)
	if err != nil {
		return err
	}
	inv, err := s.loadInventory(ctx)
	if err != nil {
		return err
	}
	if inv == nil {
		inv = &inventory{}
	}
	// The kinds are recorded before anything is created, so that objects
	// of a kind this apply adds are found and pruned even if it dies
	// half-way and the next version of the layer no longer has them.
	// Complete stays false until pruning is through: Check wants it.
	pending := &inventory{Layer: act.Key, Hash: act.Layer.Hash, Kinds: unionKinds(inv.Kinds, kindsOf(objs)), Objects: inv.Objects}
	if err := s.saveInventory(ctx, pending); err != nil {
		return err
	}
	crdKinds := map[schema.GroupKind]bool{}
	var crds []object
	for _, o := range objs {
		if o.gk() == gkCRD {
			crds = append(crds, o)
			if gk, ok := crdKind(o.u); ok {
				crdKinds[gk] = true
			}
		}
	}
	waited := len(crds) == 0
	var applied []objectRef
	for _, o := range objs {
		if !waited && applyRank(o.gk()) > applyRank(gkCRD) {
			if err := s.waitEstablished(ctx, crds); err != nil {
				return err
			}
			// Discovery read before the CRDs existed knows none of their kinds.
			s.mapper.Reset()
			waited = true
		}
		if err := s.apply(ctx, o, act.Layer.Hash, crdKinds[o.gk()]); err != nil {
			return err
		}
		applied = append(applied, refOf(o.u))
	}
	if err := s.prune(ctx, pending.Kinds, applied); err != nil {
		return err
	}
	return s.saveInventory(ctx, &inventory{Layer: act.Key, Hash: act.Layer.Hash, Complete: true, Kinds: kindsOf(objs), Objects: applied})
}

// desired is o as Outpost applies it: with the layer label and hash.
func (s *session) desired(o object, hash string) *unstructured.Unstructured {
	u := o.u.DeepCopy()
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelLayer] = s.label
	u.SetLabels(labels)
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationHash] = hash
	u.SetAnnotations(ann)
	// A resourceVersion in a manifest would make the apply a conditional
	// update that fails once the object changes.
	u.SetResourceVersion("")
	return u
}

func (s *session) apply(ctx context.Context, o object, hash string, customKind bool) error {
	res, err := s.resource(ctx, o, customKind)
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	u := s.desired(o, hash)
	var got *unstructured.Unstructured
	err = retryNew(ctx, customKind, s.timeout, func() error {
		got, err = res.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	if got.GetDeletionTimestamp() != nil {
		// Apply cannot bring back an object that is being deleted; the next
		// attempt recreates it once it is gone.
		return fmt.Errorf("%s: is being deleted; it is applied again once it is gone", o)
	}
	return nil
}

// retryNew retries f while the API server does not serve a custom kind it
// has just established: discovery and the handlers follow the CRD's
// Established condition by a moment.
func retryNew(ctx context.Context, customKind bool, timeout time.Duration, f func() error) error {
	err := f()
	if !customKind || !notServedYet(err) {
		return err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err = f(); !notServedYet(err) {
			return err
		}
	}
	return err
}

// notServedYet: the kind is unknown to discovery, or its endpoint answers
// 404. A missing namespace is a 404 too, but no wait brings that one.
func notServedYet(err error) bool {
	if meta.IsNoMatchError(err) {
		return true
	}
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d == nil || d.Kind != "namespaces"
}

// waitEstablished waits until the CRDs are established, so objects of their
// kinds can be applied.
func (s *session) waitEstablished(ctx context.Context, crds []object) error {
	res := s.dyn.Resource(schema.GroupVersionResource{Group: gkCRD.Group, Version: "v1", Resource: "customresourcedefinitions"})
	for _, o := range crds {
		var why string
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, s.timeout, true, func(ctx context.Context) (bool, error) {
			live, err := res.Get(ctx, o.u.GetName(), metav1.GetOptions{})
			if err != nil {
				why = err.Error()
				return false, nil
			}
			established, reason := crdEstablished(live)
			why = reason
			if reason != "" && !established && conditionFalse(live, "NamesAccepted") {
				// A name clash does not go away by waiting.
				return false, errors.New(reason)
			}
			return established, nil
		})
		if err != nil {
			if why == "" {
				why = err.Error()
			}
			return fmt.Errorf("%s: not established: %s", o, why)
		}
	}
	return nil
}

// crdEstablished reports the CRD's Established condition and, when it is
// not, the reason the conditions give.
func crdEstablished(u *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	why := "no Established condition yet"
	for _, c := range conds {
		m, _ := c.(map[string]any)
		t, _ := m["type"].(string)
		st, _ := m["status"].(string)
		msg, _ := m["message"].(string)
		switch {
		case t == "Established" && st == "True":
			return true, ""
		case t == "NamesAccepted" && st == "False":
			return false, "names not accepted: " + msg
		case t == "Established":
			why = "Established is " + st + ": " + msg
		}
	}
	return false, why
}

func conditionFalse(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == "False" {
			return true
		}
	}
	return false
}

// crdKind is the group and kind a CRD defines.
func crdKind(u *unstructured.Unstructured) (schema.GroupKind, bool) {
	g, _, _ := unstructured.NestedString(u.Object, "spec", "group")
	k, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
	return schema.GroupKind{Group: g, Kind: k}, g != "" && k != ""
}

// Remove deletes every object the layer applied, whichever version applied
// it, and then its inventory. Namespaces the cluster needs (default,
// kube-*, outpost-system) are never deleted, even if a layer applied them.
func (a *Applier) Remove(ctx context.Context, act engine.LayerAction) error {
	if !writer(act.Role) {
		return nil
	}
	s, err := a.session(ctx, act.Key)
	if err != nil {
		return err
	}
	inv, err := s.loadInventory(ctx)
	if err != nil {
		return err
	}
	if err := s.prune(ctx, s.kindsToRemove(act, inv), nil); err != nil {
		return err
	}
	return s.deleteInventory(ctx)
}

// kindsToRemove: the inventory's kinds, and the layer's own in case the
// inventory was lost.
func (s *session) kindsToRemove(act engine.LayerAction, inv *inventory) []kindRef {
	var kinds []kindRef
	if inv != nil {
		kinds = inv.Kinds
	}
	if objs, err := parseLayer(act.Layer); err == nil {
		kinds = unionKinds(kinds, kindsOf(objs))
	}
	return kinds
}

func (a *Applier) checkRemoved(ctx context.Context, act engine.LayerAction) (bool, error) {
	s, err := a.session(ctx, act.Key)
	if err != nil {
		return false, err
	}
	inv, err := s.loadInventory(ctx)
	if err != nil || inv != nil {
		return false, err
	}
	for _, k := range s.kindsToRemove(act, nil) {
		left, err := s.labelled(ctx, k)
		if err != nil {
			return false, err
		}
		for _, u := range left {
			if u.GetDeletionTimestamp() == nil && !protected(u) {
				return false, nil
			}
		}
	}
	return true, nil
}

// prune deletes the layer's objects of the given kinds that are not in
// keep: first ordinary objects, then CRDs (taking their custom objects
// with them), then Namespaces (taking whatever is left in them), the
// reverse of the apply order.
func (s *session) prune(ctx context.Context, kinds []kindRef, keep []objectRef) error {
	keepSet := map[objectRef]bool{}
	for _, r := range keep {
		r.Version = ""
		keepSet[r] = true
	}
	kinds = append([]kindRef(nil), kinds...)
	sort.SliceStable(kinds, func(i, j int) bool { return applyRank(kinds[i].gk()) > applyRank(kinds[j].gk()) })
	for _, k := range kinds {
		objs, err := s.labelled(ctx, k)
		if err != nil {
			return err
		}
		for _, u := range objs {
			r := refOf(&u)
			r.Version = ""
			if keepSet[r] || u.GetDeletionTimestamp() != nil || protected(u) {
				continue
			}
			if err := s.delete(ctx, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// labelled lists the objects of kind k that carry this layer's label, in
// all namespaces. A kind the cluster no longer serves has none.
func (s *session) labelled(ctx context.Context, k kindRef) ([]unstructured.Unstructured, error) {
	m, err := s.mapper.RESTMapping(k.gk())
	if meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Kind, err)
	}
	list, err := s.dyn.Resource(m.Resource).List(ctx, metav1.ListOptions{LabelSelector: LabelLayer + "=" + s.label})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", m.Resource.Resource, err)
	}
	return list.Items, nil
}

func (s *session) delete(ctx context.Context, u unstructured.Unstructured) error {
	m, err := s.mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
	if err != nil {
		return fmt.Errorf("%s: %w", describe(u.GetKind(), u.GetNamespace(), u.GetName()), err)
	}
	var res dynamic.ResourceInterface = s.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		res = s.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	uid := u.GetUID()
	policy := metav1.DeletePropagationBackground
	// The UID precondition: an object of the same name created since the
	// list (by another layer, say) is not ours to delete.
	err = res.Delete(ctx, u.GetName(), metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: &policy,
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %s: %w", describe(u.GetKind(), u.GetNamespace(), u.GetName()), err)
	}
	return nil
}

// protected: the namespaces a cluster cannot do without, and ours.
func protected(u unstructured.Unstructured) bool {
	if u.GroupVersionKind().GroupKind() != gkNamespace {
		return false
	}
	switch u.GetName() {
	case "default", "kube-system", "kube-public", "kube-node-lease", InventoryNamespace:
		return true
	}
	return false
}

// session is one action's connection to the cluster.
type session struct {
	key     string
	label   string
	dyn     dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	timeout time.Duration
}

func (a *Applier) session(ctx context.Context, key string) (*session, error) {
	if a.Config == nil {
		return nil, errors.New("no cluster configuration")
	}
	if key == "" {
		// Without a key the layer's label would select nothing of its own.
		return nil, errors.New("layer has no key")
	}
	cfg, err := a.Config(ctx)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	// client-go's default of 5 requests/s would make a layer of a hundred
	// objects take most of a minute for nothing.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	timeout := a.EstablishTimeout
	if timeout <= 0 {
		timeout = DefaultEstablishTimeout
	}
	return &session{
		key:     key,
		label:   LabelValue(key),
		dyn:     dyn,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		timeout: timeout,
	}, nil
}

// resource maps o to its API resource and settles its namespace: the
// default namespace for a namespaced object without one (what kubectl
// does), none for a cluster-scoped one. With customKind (the kind of a CRD
// just applied) it waits for discovery to catch up.
func (s *session) resource(ctx context.Context, o object, customKind bool) (dynamic.ResourceInterface, error) {
	gvk := o.u.GroupVersionKind()
	var m *meta.RESTMapping
	err := retryNew(ctx, customKind, s.timeout, func() error {
		var err error
		m, err = s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) && customKind {
			s.mapper.Reset()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		o.u.SetNamespace("")
		return s.dyn.Resource(m.Resource), nil
	}
	if o.u.GetNamespace() == "" {
		o.u.SetNamespace(metav1.NamespaceDefault)
	}
	return s.dyn.Resource(m.Resource).Namespace(o.u.GetNamespace()), nil
}
