package manifests

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

var (
	gvrCM     = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrSecret = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrNS     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrDeploy = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrCRD    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// fixture is one test's corner of the shared server: its own namespace, CRD
// group and layer key, so tests do not see each other's objects.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	env     *kubetest.Env
	applier *Applier
	ns      string
	group   string
	key     string
	r       *strings.Replacer
}

func newFixture(t *testing.T) *fixture {
	env := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, env: env, applier: New(StaticConfig(env.Config))}
	f.ns = env.UniqueName("app")
	f.group = env.UniqueName("t") + ".example.com"
	f.key = env.UniqueName("addons")
	f.r = strings.NewReplacer("NS", f.ns, "GROUP", f.group)
	return f
}

func (f *fixture) gvrWidget() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: f.group, Version: "v1", Resource: "widgets"}
}

// action is the engine's action for the layer with the manifests given,
// NS and GROUP in them replaced by the fixture's.
func (f *fixture) action(op engine.LayerOp, role, hash string, manifests ...v1.Manifest) engine.LayerAction {
	for i := range manifests {
		manifests[i].Content = f.r.Replace(manifests[i].Content)
	}
	return engine.LayerAction{
		Op:     op,
		Layer:  v1.RenderedLayer{Name: "addons", Layer: v1.LayerAddon, Type: v1.PackManifest, Manifests: manifests, Hash: hash},
		Key:    f.key,
		Distro: "k3s",
		Role:   role,
	}
}

func (f *fixture) get(gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	var r interface {
		Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
	} = f.env.Dynamic.Resource(gvr)
	if ns != "" {
		r = f.env.Dynamic.Resource(gvr).Namespace(ns)
	}
	return r.Get(f.ctx, name, metav1.GetOptions{})
}

func (f *fixture) mustGet(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	f.t.Helper()
	u, err := f.get(gvr, ns, name)
	if err != nil {
		f.t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return u
}

// gone: not found, or being deleted (a namespace stays Terminating for ever
// without a controller-manager).
func (f *fixture) gone(gvr schema.GroupVersionResource, ns, name string) bool {
	f.t.Helper()
	u, err := f.get(gvr, ns, name)
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		f.t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return u.GetDeletionTimestamp() != nil
}

func (f *fixture) check(a engine.LayerAction) bool {
	f.t.Helper()
	done, err := f.applier.Check(f.ctx, a)
	if err != nil {
		f.t.Fatalf("check: %v", err)
	}
	return done
}

func (f *fixture) apply(a engine.LayerAction) {
	f.t.Helper()
	if err := f.applier.Apply(f.ctx, a); err != nil {
		f.t.Fatalf("apply: %v", err)
	}
}

func str(u *unstructured.Unstructured, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// The layer's manifests, in an order the applier must fix: the custom
// object before its CRD, everything before its namespace.
const (
	appV1 = `apiVersion: GROUP/v1
kind: Widget
metadata: {name: w, namespace: NS}
spec: {size: 1, color: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {color: blue}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        # The server stores 100m: Check must not take that for drift.
        resources: {requests: {cpu: "0.1"}}
`
	setup = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.GROUP}
spec:
  group: GROUP
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
---
apiVersion: v1
kind: Namespace
metadata: {name: NS}
`
	// v2: the widget grows, the ConfigMap leaves, a Secret comes.
	appV2 = `apiVersion: GROUP/v1
kind: Widget
metadata: {name: w, namespace: NS}
spec: {size: 3, color: blue}
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: NS}
stringData: {token: s3cr3t}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        resources: {requests: {cpu: "0.1"}}
`
)

// TestIntegrationApplyChangePrune: a layer with a CRD, an object of its
// kind, a ConfigMap and a Deployment in a namespace of its own is applied
// in the right order; a new version changes a value, drops the ConfigMap
// (pruned) and adds a Secret.
func TestIntegrationApplyChangePrune(t *testing.T) {
	f := newFixture(t)
	a1 := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "app.yaml", Content: appV1}, v1.Manifest{Name: "setup.yaml", Content: setup})
	if f.check(a1) {
		t.Fatal("check says done before anything was applied")
	}
	f.apply(a1)
	if !f.check(a1) {
		t.Fatal("check says not done right after apply")
	}
	w := f.mustGet(f.gvrWidget(), f.ns, "w")
	if got := str(w, "spec", "size"); got != "1" {
		t.Errorf("widget size %s, want 1", got)
	}
	cm := f.mustGet(gvrCM, f.ns, "settings")
	if cm.GetLabels()[LabelLayer] != f.key || cm.GetAnnotations()[AnnotationHash] != "h1" {
		t.Errorf("ConfigMap labels %v annotations %v, want the layer label and hash", cm.GetLabels(), cm.GetAnnotations())
	}
	for _, mf := range cm.GetManagedFields() {
		if mf.Operation == metav1.ManagedFieldsOperationApply && mf.Manager != FieldManager {
			t.Errorf("applied by field manager %q, want %q", mf.Manager, FieldManager)
		}
	}
	f.mustGet(gvrDeploy, f.ns, "web")
	f.mustGet(gvrCRD, "", "widgets."+f.group)
	// No controller-manager: the Deployment never gets its replicas.
	if st, msg := f.applier.Health(f.ctx, a1); st != HealthProgressing || !strings.Contains(msg, "Deployment "+f.ns+"/web") {
		t.Errorf("health %s %q, want progressing on the Deployment", st, msg)
	}
	inv := f.mustGet(gvrCM, InventoryNamespace, InventoryName(f.key))
	if str(inv, "data", "hash") != "h1" || !strings.Contains(str(inv, "data", "objects"), `"name": "settings"`) {
		t.Errorf("inventory data %v", inv.Object["data"])
	}

	a2 := f.action(engine.LayerApply, v1.RoleInit, "h2", v1.Manifest{Name: "app.yaml", Content: appV2}, v1.Manifest{Name: "setup.yaml", Content: setup})
	if f.check(a2) {
		t.Fatal("check says a new version is done before it was applied")
	}
	f.apply(a2)
	if !f.check(a2) {
		t.Fatal("check says not done right after applying the new version")
	}
	if f.check(a1) {
		t.Error("check says the old version is still in place")
	}
	if !f.gone(gvrCM, f.ns, "settings") {
		t.Error("the ConfigMap that left the layer was not pruned")
	}
	if got := str(f.mustGet(f.gvrWidget(), f.ns, "w"), "spec", "size"); got != "3" {
		t.Errorf("widget size %s after the change, want 3", got)
	}
	if s := f.mustGet(gvrSecret, f.ns, "token"); s.GetAnnotations()[AnnotationHash] != "h2" {
		t.Errorf("secret annotations %v", s.GetAnnotations())
	}
	if d := f.mustGet(gvrDeploy, f.ns, "web"); d.GetAnnotations()[AnnotationHash] != "h2" {
		t.Errorf("unchanged Deployment not re-annotated with the new hash: %v", d.GetAnnotations())
	}
	inv = f.mustGet(gvrCM, InventoryNamespace, InventoryName(f.key))
	if str(inv, "data", "hash") != "h2" || strings.Contains(str(inv, "data", "objects"), `"settings"`) {
		t.Errorf("inventory after the change: %v", inv.Object["data"])
	}
}

// TestIntegrationDrift: an object someone deleted and a managed field
// someone changed with another field manager make Check false; Apply puts
// both back and leaves fields Outpost does not manage alone.
func TestIntegrationDrift(t *testing.T) {
	f := newFixture(t)
	a := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "app.yaml", Content: appV1}, v1.Manifest{Name: "setup.yaml", Content: setup})
	f.apply(a)
	widgets := f.env.Dynamic.Resource(f.gvrWidget()).Namespace(f.ns)

	// A label of someone else's is not drift.
	if _, err := widgets.Patch(f.ctx, "w", types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"edge"}}}`), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	if !f.check(a) {
		t.Fatal("a label Outpost does not manage counts as drift")
	}

	if err := f.env.Client.CoreV1().ConfigMaps(f.ns).Delete(f.ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if f.check(a) {
		t.Error("check says done with the ConfigMap deleted")
	}
	if _, err := widgets.Patch(f.ctx, "w", types.MergePatchType, []byte(`{"spec":{"size":99}}`), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	f.apply(a)
	if !f.check(a) {
		t.Fatal("check says not done after the drift was corrected")
	}

	// The same again with only the edit, by server-side apply this time.
	edit := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": f.group + "/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": f.ns},
		"spec":     map[string]any{"color": "red"},
	}}
	if _, err := widgets.Apply(f.ctx, "w", edit, metav1.ApplyOptions{FieldManager: "someone-else", Force: true}); err != nil {
		t.Fatal(err)
	}
	if f.check(a) {
		t.Error("check says done with a managed field changed by another field manager")
	}
	f.apply(a)
	if !f.check(a) {
		t.Fatal("check says not done after the second correction")
	}

	w := f.mustGet(f.gvrWidget(), f.ns, "w")
	if str(w, "spec", "size") != "1" || str(w, "spec", "color") != "blue" {
		t.Errorf("widget spec %v, want size 1 and color blue back", w.Object["spec"])
	}
	if w.GetLabels()["team"] != "edge" {
		t.Errorf("someone else's label was removed: %v", w.GetLabels())
	}
	if cm := f.mustGet(gvrCM, f.ns, "settings"); str(cm, "data", "color") != "blue" {
		t.Errorf("restored ConfigMap data %v", cm.Object["data"])
	}
}

// TestIntegrationRemove: Remove deletes everything the layer applied, over
// all its versions, and its inventory, except namespaces the cluster needs;
// removing again is a no-op.
func TestIntegrationRemove(t *testing.T) {
	f := newFixture(t)
	a1 := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "app.yaml", Content: appV1}, v1.Manifest{Name: "setup.yaml", Content: setup},
		// A layer may label a namespace it must not delete.
		v1.Manifest{Name: "public.yaml", Content: "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-public, labels: {outpost-test: NS}}\n"})
	f.apply(a1)
	rm := f.action(engine.LayerRemove, v1.RoleInit, "h1", v1.Manifest{Name: "app.yaml", Content: appV1}, v1.Manifest{Name: "setup.yaml", Content: setup})
	if f.check(rm) {
		t.Fatal("remove check says done while the layer is there")
	}
	if err := f.applier.Remove(f.ctx, rm); err != nil {
		t.Fatal(err)
	}
	if !f.check(rm) {
		t.Error("remove check says not done after Remove")
	}
	for _, o := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
	}{
		{gvrCM, f.ns, "settings"},
		{gvrDeploy, f.ns, "web"},
		{f.gvrWidget(), f.ns, "w"},
		{gvrNS, "", f.ns},
		{gvrCM, InventoryNamespace, InventoryName(f.key)},
	} {
		if !f.gone(o.gvr, o.ns, o.name) {
			t.Errorf("%s %s/%s still there after Remove", o.gvr.Resource, o.ns, o.name)
		}
	}
	// The CRD goes once the API server has deleted its objects.
	deadline := time.Now().Add(30 * time.Second)
	for !f.gone(gvrCRD, "", "widgets."+f.group) {
		if time.Now().After(deadline) {
			t.Fatal("the CRD is still there 30s after Remove")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f.gone(gvrNS, "", "kube-public") {
		t.Fatal("Remove deleted kube-public")
	}
	if err := f.applier.Remove(f.ctx, rm); err != nil {
		t.Errorf("removing a removed layer: %v", err)
	}
}

// TestIntegrationRemoveWithoutInventory: with its inventory lost, Remove
// still finds the layer's objects by the kinds in the layer and its label.
func TestIntegrationRemoveWithoutInventory(t *testing.T) {
	f := newFixture(t)
	cms := v1.Manifest{Name: "cm.yaml", Content: "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: NS}\n"}
	f.apply(f.action(engine.LayerApply, "", "h1", cms))
	if err := f.env.Client.CoreV1().ConfigMaps(InventoryNamespace).Delete(f.ctx, InventoryName(f.key), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rm := f.action(engine.LayerRemove, "", "h1", cms)
	if f.check(rm) {
		t.Fatal("remove check says done with the objects there")
	}
	if err := f.applier.Remove(f.ctx, rm); err != nil {
		t.Fatal(err)
	}
	if !f.gone(gvrCM, f.ns, "a") {
		t.Error("the ConfigMap is still there")
	}
}

// TestIntegrationWorkerDoesNothing: one writer per cluster, the init node.
func TestIntegrationWorkerDoesNothing(t *testing.T) {
	f := newFixture(t)
	for _, role := range []string{v1.RoleWorker, v1.RoleControlPlane} {
		a := f.action(engine.LayerApply, role, "h1", v1.Manifest{Name: "setup.yaml", Content: setup})
		if !f.check(a) {
			t.Errorf("%s: check says not done", role)
		}
		if err := f.applier.Apply(f.ctx, a); err != nil {
			t.Errorf("%s: apply: %v", role, err)
		}
		if st, msg := f.applier.Health(f.ctx, a); st != "" || msg != "" {
			t.Errorf("%s: health %q %q, want none", role, st, msg)
		}
		a.Op = engine.LayerRemove
		if err := f.applier.Remove(f.ctx, a); err != nil {
			t.Errorf("%s: remove: %v", role, err)
		}
	}
	if !f.gone(gvrNS, "", f.ns) || !f.gone(gvrCRD, "", "widgets."+f.group) {
		t.Error("a non-init node applied objects")
	}
	if !f.gone(gvrCM, InventoryNamespace, InventoryName(f.key)) {
		t.Error("a non-init node wrote an inventory")
	}
}

// TestIntegrationKubectl: what kubectl sees is what the layer says.
func TestIntegrationKubectl(t *testing.T) {
	f := newFixture(t)
	f.key = f.key + "#2" // a key that is not a label value as it is
	// What distro providers will hand over: their admin kubeconfig.
	f.applier = New(KubeconfigFile(f.env.Kubeconfig))
	a := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "app.yaml", Content: `apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {color: blue, size: "3"}
`})
	f.apply(a)
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("kubectl", append([]string{"--kubeconfig", f.env.Kubeconfig}, args...)...).CombinedOutput()
		if errors.Is(err, exec.ErrNotFound) {
			t.Skip("kubectl not installed")
		}
		if err != nil {
			t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if got := kubectl("-n", f.ns, "get", "configmap", "settings", "-o", "jsonpath={.data.color}/{.data.size}"); got != "blue/3" {
		t.Errorf("kubectl sees data %q, want blue/3", got)
	}
	if got := kubectl("-n", f.ns, "get", "configmap", "settings", `-o`, `jsonpath={.metadata.annotations.outpost\.dev/layer-hash}`); got != "h1" {
		t.Errorf("kubectl sees layer hash %q, want h1", got)
	}
	if got := kubectl("get", "configmap", "-A", "-l", LabelLayer+"="+LabelValue(f.key), "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}"); strings.TrimSpace(got) != f.ns+"/settings" {
		t.Errorf("kubectl finds %q by the layer label, want %s/settings", got, f.ns)
	}
	if got := kubectl("-n", InventoryNamespace, "get", "configmap", InventoryName(f.key), "-o", "jsonpath={.data.layer}"); got != f.key {
		t.Errorf("inventory names layer %q, want %q", got, f.key)
	}
	if st, msg := f.applier.Health(f.ctx, a); st != HealthApplied {
		t.Errorf("health %s %q, want applied", st, msg)
	}
}

// TestIntegrationErrors: a manifest that does not parse is a permanent
// error naming it; a kind the cluster does not serve names the object.
func TestIntegrationErrors(t *testing.T) {
	f := newFixture(t)
	bad := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "broken.yaml", Content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: NS}\n---\nkind: [\n"})
	if f.check(bad) {
		t.Error("check says a broken layer is done")
	}
	err := f.applier.Apply(f.ctx, bad)
	if !engine.IsPermanent(err) || !strings.Contains(err.Error(), `manifest "broken.yaml" document 2: invalid YAML`) {
		t.Errorf("apply of a broken manifest: %v (permanent %v)", err, engine.IsPermanent(err))
	}
	if st, _ := f.applier.Health(f.ctx, bad); st != HealthFailed {
		t.Errorf("health of a broken layer %q, want failed", st)
	}

	// A custom object in a namespace that does not exist fails at once: only
	// a kind not served yet is waited for.
	start := time.Now()
	noNS := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "setup.yaml", Content: strings.Split(setup, "---")[0]},
		v1.Manifest{Name: "w.yaml", Content: "apiVersion: GROUP/v1\nkind: Widget\nmetadata: {name: w, namespace: nowhere}\n"})
	err = f.applier.Apply(f.ctx, noNS)
	if err == nil || !strings.HasPrefix(err.Error(), "Widget nowhere/w: ") || !apierrors.IsNotFound(err) {
		t.Errorf("apply into a missing namespace: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("apply into a missing namespace took %s", d)
	}

	// A CRD whose names clash with another's is not waited for in vain.
	clash := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "setup.yaml", Content: strings.Split(setup, "---")[0]},
		v1.Manifest{Name: "clash.yaml", Content: strings.NewReplacer("widgets", "things", "widget", "thing").Replace(strings.Split(setup, "---")[0])},
		v1.Manifest{Name: "cm.yaml", Content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"})
	start = time.Now()
	err = f.applier.Apply(f.ctx, clash)
	if err == nil || !strings.Contains(err.Error(), "CustomResourceDefinition things."+f.group+": not established: names not accepted") {
		t.Errorf("apply of a CRD with clashing names: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("apply of a CRD with clashing names took %s", d)
	}

	unknown := f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "g.yaml", Content: "apiVersion: nowhere.example.com/v1\nkind: Gadget\nmetadata: {name: g, namespace: NS}\n"})
	err = f.applier.Apply(f.ctx, unknown)
	if err == nil || engine.IsPermanent(err) || !strings.HasPrefix(err.Error(), "Gadget "+f.ns+"/g: ") {
		t.Errorf("apply of an unknown kind: %v, want a retryable error naming Gadget %s/g", err, f.ns)
	}
	if st, msg := f.applier.Health(f.ctx, unknown); st != HealthFailed || !strings.Contains(msg, "Gadget") {
		t.Errorf("health %s %q, want failed naming the Gadget", st, msg)
	}
}

// TestIntegrationObjectChangesLayer: an object moved from one layer to
// another is not pruned by the layer it left, whichever applies first.
func TestIntegrationObjectChangesLayer(t *testing.T) {
	f := newFixture(t)
	ns := v1.Manifest{Name: "ns.yaml", Content: "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}\n"}
	shared := v1.Manifest{Name: "shared.yaml", Content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: NS}\ndata: {a: b}\n"}
	keyA, keyB := f.key, f.key+"-b"
	first := f.action(engine.LayerApply, v1.RoleInit, "a1", ns, shared)
	f.apply(first)
	// Layer B takes the ConfigMap over before A's new version drops it.
	f.key = keyB
	b := f.action(engine.LayerApply, v1.RoleInit, "b1", shared)
	f.apply(b)
	f.key = keyA
	f.apply(f.action(engine.LayerApply, v1.RoleInit, "a2", ns))
	cm, err := f.get(gvrCM, f.ns, "shared")
	if err != nil {
		t.Fatalf("the ConfigMap layer B now has was pruned by layer A: %v", err)
	}
	if got := cm.GetLabels()[LabelLayer]; got != LabelValue(keyB) {
		t.Errorf("label %q, want layer B's", got)
	}
	if !f.check(b) {
		t.Error("layer B is not in place")
	}
}

// TestIntegrationFailedApplyIsPruned: objects an apply created before it
// failed are pruned by the next version of the layer that does not have
// them, and a failed apply is never taken for done.
func TestIntegrationFailedApplyIsPruned(t *testing.T) {
	f := newFixture(t)
	base := "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: NS}\n"
	f.apply(f.action(engine.LayerApply, v1.RoleInit, "h1", v1.Manifest{Name: "base.yaml", Content: base}))
	// A Secret is a kind v1 never had; the Gadget fails after it is applied.
	bad := f.action(engine.LayerApply, v1.RoleInit, "h2", v1.Manifest{Name: "base.yaml", Content: base}, v1.Manifest{Name: "more.yaml", Content: `apiVersion: v1
kind: Secret
metadata: {name: b, namespace: NS}
---
apiVersion: nowhere.example.com/v1
kind: Gadget
metadata: {name: g, namespace: NS}
`})
	if err := f.applier.Apply(f.ctx, bad); err == nil {
		t.Fatal("apply with an unknown kind succeeded")
	}
	f.mustGet(gvrSecret, f.ns, "b")
	if f.check(bad) {
		t.Error("check says a failed apply is done")
	}
	inv := f.mustGet(gvrCM, InventoryNamespace, InventoryName(f.key))
	if str(inv, "data", "state") != "applying" {
		t.Errorf("inventory state %q after a failed apply, want applying", str(inv, "data", "state"))
	}
	fixed := f.action(engine.LayerApply, v1.RoleInit, "h3", v1.Manifest{Name: "base.yaml", Content: base})
	f.apply(fixed)
	if !f.gone(gvrSecret, f.ns, "b") {
		t.Error("the Secret the failed apply created was not pruned")
	}
	if !f.check(fixed) {
		t.Error("check says not done after the fixed version was applied")
	}
}
