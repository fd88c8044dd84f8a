package helm

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/manifests"
	"github.com/outpost-edge/outpost/internal/testutil/kubetest"
)

// testApplier is an Applier on the test API server with its own chart
// directory.
func testApplier(t *testing.T, env *kubetest.Env) *Applier {
	t.Helper()
	h, err := New(Options{
		RESTConfig: func(context.Context) (*rest.Config, error) { return env.Config, nil },
		Fetch:      (&HTTPFetcher{Dir: t.TempDir()}).Fetch,
		Timeout:    time.Minute,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func wantCheck(t *testing.T, h *Applier, a engine.LayerAction, want bool, when string) {
	t.Helper()
	done, err := h.Check(ctxT(t), a)
	if err != nil {
		t.Fatalf("%s: Check(%s %s): %v", when, a.Op, a.Layer.Version, err)
	}
	if done != want {
		t.Fatalf("%s: Check(%s %s %q) = %v, want %v", when, a.Op, a.Layer.Version, a.Layer.Values, done, want)
	}
}

// configMap returns the demo ConfigMap's data, nil when it does not exist.
func configMap(t *testing.T, env *kubetest.Env, ns, name string) map[string]string {
	t.Helper()
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctxT(t), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data == nil {
		return map[string]string{}
	}
	return cm.Data
}

// history is the release's revisions, oldest first, as "1:superseded".
func history(t *testing.T, h *Applier, name string) []string {
	t.Helper()
	rels, err := h.releases(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rels)+1)
	n := 0
	for _, r := range rels {
		if r.Version < len(out) {
			out[r.Version] = fmt.Sprintf("%d:%s", r.Version, r.Info.Status)
			n = max(n, r.Version)
		}
	}
	return slicesCompact(out[1 : n+1])
}

func slicesCompact(s []string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func wantHistory(t *testing.T, h *Applier, name string, want ...string) {
	t.Helper()
	if got := history(t, h, name); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("release %s history = %v, want %v", name, got, want)
	}
}

func wantHealth(t *testing.T, h *Applier, a engine.LayerAction, state string, msgParts ...string) {
	t.Helper()
	st, msg := h.Health(ctxT(t), a)
	if st != state {
		t.Fatalf("Health = %s (%s), want %s", st, msg, state)
	}
	for _, p := range msgParts {
		if !strings.Contains(msg, p) {
			t.Fatalf("Health message %q lacks %q", msg, p)
		}
	}
}

// The whole life of a Helm layer: install, values change, chart upgrade,
// a chart that does not render, a chart the API server refuses (rolled
// back), removal.
func TestIntegrationLifecycle(t *testing.T) {
	env := kubetest.Start(t)
	r := newChartRepo(t,
		demoChart("1.0.0", tplConfigMap),
		demoChart("1.1.0", tplConfigMap, tplDeployment),
		demoChart("1.2.0", tplConfigMap, tplFailRender),
		demoChart("1.3.0", tplConfigMap, tplCreated, tplInvalid),
	)
	h := testApplier(t, env)
	name := env.UniqueName("demo")
	ns := NamespacePrefix + name
	cmName := name + "-config"

	// Install, the chart pinned as an artifact.
	v1a := initApply(name, r.layer(t, name, "1.0.0", "greeting: hello\n", true))
	wantCheck(t, h, v1a, false, "before install")
	wantCheck(t, h, initRemove(name, v1a.Layer), true, "before install")
	if err := h.Apply(ctxT(t), v1a); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, h, v1a, true, "after install")
	wantCheck(t, h, initRemove(name, v1a.Layer), false, "after install")
	wantHistory(t, h, name, "1:deployed")
	if got := configMap(t, env, ns, cmName); got["greeting"] != "hello" || got["chartVersion"] != "1.0.0" || got["sawPrivateKey"] != "false" {
		t.Fatalf("after install: ConfigMap %v", got)
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctxT(t), ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	wantHealth(t, h, v1a, HealthApplied)
	// Applying again is a no-op, not another revision.
	if err := h.Apply(ctxT(t), v1a); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, h, name, "1:deployed")

	// Values change: upgrade to revision 2.
	v1b := initApply(name, r.layer(t, name, "1.0.0", "greeting: hi\n", true))
	wantCheck(t, h, v1b, false, "values changed")
	if err := h.Apply(ctxT(t), v1b); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, h, name, "1:superseded", "2:deployed")
	if got := configMap(t, env, ns, cmName)["greeting"]; got != "hi" {
		t.Fatalf("after values change: greeting %q", got)
	}
	wantCheck(t, h, v1b, true, "after values change")
	wantCheck(t, h, v1a, false, "after values change (old values)")
	// Only what Helm sees counts: reformatted values are the same layer.
	wantCheck(t, h, initApply(name, r.layer(t, name, "1.0.0", "# same values\ngreeting:   \"hi\"\n", true)), true, "reformatted values")

	// New chart version, resolved through the repository index this time.
	v2 := initApply(name, r.layer(t, name, "1.1.0", "greeting: hi\n", false))
	wantCheck(t, h, v2, false, "new chart version")
	if err := h.Apply(ctxT(t), v2); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, h, name, "1:superseded", "2:superseded", "3:deployed")
	if got := configMap(t, env, ns, cmName)["chartVersion"]; got != "1.1.0" {
		t.Fatalf("after chart upgrade: chartVersion %q", got)
	}
	wantCheck(t, h, v2, true, "after chart upgrade")
	// No kubelet: the Deployment never becomes available.
	wantHealth(t, h, v2, HealthProgressing, "Deployment "+ns+"/"+name+"-app")

	// A chart that does not render: Helm records nothing, revision 3 stays.
	broken := initApply(name, r.layer(t, name, "1.2.0", "greeting: hi\n", true))
	err := h.Apply(ctxT(t), broken)
	if err == nil || !strings.Contains(err.Error(), "the demo chart refuses to render") || !strings.HasPrefix(err.Error(), fmt.Sprintf("helm layer %q: upgrade to chart demo 1.2.0: ", name)) {
		t.Fatalf("Apply of a chart that does not render = %v", err)
	}
	wantHistory(t, h, name, "1:superseded", "2:superseded", "3:deployed")
	wantCheck(t, h, broken, false, "after render failure")
	wantCheck(t, h, v2, true, "after render failure (last good)")
	wantHealth(t, h, broken, HealthFailed, "runs revision 3 (chart demo 1.1.0)", "refuses to render")

	// A chart the API server refuses: revision 4 fails half-applied and is
	// rolled back as revision 5, a copy of 3.
	invalid := initApply(name, r.layer(t, name, "1.3.0", "greeting: changed\n", false))
	err = h.Apply(ctxT(t), invalid)
	if err == nil || !strings.Contains(err.Error(), "not a valid key") || !strings.Contains(err.Error(), "rolled back to revision 3") {
		t.Fatalf("Apply of a chart the API server refuses = %v", err)
	}
	wantHistory(t, h, name, "1:superseded", "2:superseded", "3:superseded", "4:failed", "5:deployed")
	if got := configMap(t, env, ns, cmName); got["greeting"] != "hi" || got["chartVersion"] != "1.1.0" {
		t.Fatalf("after rollback: ConfigMap %v, want revision 3's", got)
	}
	if got := configMap(t, env, ns, name+"-new"); got != nil {
		t.Fatalf("after rollback: the failed revision's new ConfigMap is still there: %v", got)
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Get(ctxT(t), name+"-app", metav1.GetOptions{}); err != nil {
		t.Fatalf("after rollback: revision 3's Deployment: %v", err)
	}
	wantCheck(t, h, invalid, false, "after rollback")
	wantCheck(t, h, v2, true, "after rollback (last good)")
	wantHealth(t, h, invalid, HealthFailed, "not a valid key")

	// Back to a good configuration.
	v3 := initApply(name, r.layer(t, name, "1.0.0", "greeting: again\n", false))
	if err := h.Apply(ctxT(t), v3); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, h, v3, true, "after recovery")
	wantHealth(t, h, v3, HealthApplied)
	if got := configMap(t, env, ns, cmName); got["greeting"] != "again" || got["chartVersion"] != "1.0.0" {
		t.Fatalf("after recovery: ConfigMap %v", got)
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Get(ctxT(t), name+"-app", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Deployment chart 1.0.0 does not have is still there: %v", err)
	}

	// Remove.
	rm := initRemove(name, v3.Layer)
	wantCheck(t, h, rm, false, "before remove")
	if err := h.Remove(ctxT(t), rm); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, h, rm, true, "after remove")
	wantCheck(t, h, v3, false, "after remove")
	wantHistory(t, h, name)
	if got := configMap(t, env, ns, cmName); got != nil {
		t.Fatalf("after remove: ConfigMap still there: %v", got)
	}
	wantHealth(t, h, v3, HealthFailed, "not installed")
	if err := h.Remove(ctxT(t), rm); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

// A first install that fails leaves nothing behind, and the next good one
// installs as revision 1.
func TestIntegrationFailedInstall(t *testing.T) {
	env := kubetest.Start(t)
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap), demoChart("1.3.0", tplConfigMap, tplInvalid))
	h := testApplier(t, env)
	name := env.UniqueName("demo")
	ns := NamespacePrefix + name

	bad := initApply(name, r.layer(t, name, "1.3.0", "", true))
	err := h.Apply(ctxT(t), bad)
	if err == nil || !strings.Contains(err.Error(), "install chart demo 1.3.0") || !strings.Contains(err.Error(), "not a valid key") {
		t.Fatalf("Apply = %v", err)
	}
	wantHistory(t, h, name)
	if got := configMap(t, env, ns, name+"-config"); got != nil {
		t.Fatalf("a failed install left its ConfigMap: %v", got)
	}
	wantHealth(t, h, bad, HealthFailed, "not installed", "not a valid key")

	good := initApply(name, r.layer(t, name, "1.0.0", "", true))
	if err := h.Apply(ctxT(t), good); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, h, name, "1:deployed")
	wantCheck(t, h, good, true, "after install")
}

// A revision left pending (the agent was killed during an upgrade) does not
// block the next Apply.
func TestIntegrationPendingRevision(t *testing.T) {
	env := kubetest.Start(t)
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	h := testApplier(t, env)
	name := env.UniqueName("demo")
	ns := NamespacePrefix + name

	if err := h.Apply(ctxT(t), initApply(name, r.layer(t, name, "1.0.0", "greeting: one\n", true))); err != nil {
		t.Fatal(err)
	}
	// Forge what an interrupted `helm upgrade` leaves: a pending revision.
	cfg, err := h.config(ctxT(t), ns)
	if err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last(name)
	if err != nil {
		t.Fatal(err)
	}
	pending := *last
	info := *last.Info
	pending.Info, pending.Version = &info, last.Version+1
	pending.Info.Status, pending.Info.Description = release.StatusPendingUpgrade, "Preparing upgrade"
	if err := cfg.Releases.Create(&pending); err != nil {
		t.Fatal(err)
	}
	two := initApply(name, r.layer(t, name, "1.0.0", "greeting: two\n", true))
	wantHealth(t, h, two, HealthProgressing, "pending-upgrade")
	if err := h.Apply(ctxT(t), two); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, h, name, "1:superseded", "2:failed", "3:deployed")
	if got := configMap(t, env, ns, name+"-config")["greeting"]; got != "two" {
		t.Fatalf("greeting %q", got)
	}
}

// The namespace comes from the values; changing it moves the release, and
// the private key never reaches the chart.
func TestIntegrationNamespaceMove(t *testing.T) {
	env := kubetest.Start(t)
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	h := testApplier(t, env)
	name := env.UniqueName("demo")
	other := env.UniqueName("tools")

	if err := h.Apply(ctxT(t), initApply(name, r.layer(t, name, "1.0.0", "", true))); err != nil {
		t.Fatal(err)
	}
	moved := initApply(name, r.layer(t, name, "1.0.0", "outpost:\n  namespace: "+other+"\n", true))
	wantCheck(t, h, moved, false, "namespace changed")
	if err := h.Apply(ctxT(t), moved); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, h, moved, true, "after move")
	if got := configMap(t, env, NamespacePrefix+name, name+"-config"); got != nil {
		t.Fatalf("the old namespace still has the ConfigMap: %v", got)
	}
	if got := configMap(t, env, other, name+"-config"); got == nil || got["sawPrivateKey"] != "false" {
		t.Fatalf("ConfigMap in %s: %v (the chart must not see the private key)", other, got)
	}
	wantHistory(t, h, name, "1:deployed")
	if err := h.Remove(ctxT(t), initRemove(name, moved.Layer)); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, h, name)
}

// Two helm layers of the same name (from two profiles) are two releases.
func TestIntegrationSameNameTwice(t *testing.T) {
	env := kubetest.Start(t)
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	h := testApplier(t, env)
	name := env.UniqueName("demo")

	first := initApply(name, r.layer(t, name, "1.0.0", "greeting: first\n", true))
	second := initApply(name+"#2", r.layer(t, name, "1.0.0", "greeting: second\n", true))
	for _, a := range []engine.LayerAction{first, second} {
		if err := h.Apply(ctxT(t), a); err != nil {
			t.Fatal(err)
		}
	}
	wantCheck(t, h, first, true, "both applied")
	wantCheck(t, h, second, true, "both applied")
	if got := configMap(t, env, NamespacePrefix+name+"-2", name+"-2-config")["greeting"]; got != "second" {
		t.Fatalf("second release: greeting %q", got)
	}
	if err := h.Remove(ctxT(t), initRemove(name+"#2", second.Layer)); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, h, first, true, "after removing the second")
}

// Attached manifests go on after the chart, through the manifests applier:
// here a custom resource of a kind the chart's templates bring (the way
// cert-manager's ClusterIssuers depend on its chart), which Helm itself
// could not map before the CRD exists.
func TestIntegrationAttachedManifests(t *testing.T) {
	env := kubetest.Start(t)
	group := env.UniqueName("g") + ".test.outpost.dev"
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.` + group + `
spec:
  group: ` + group + `
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap, crd))
	h, err := New(Options{
		RESTConfig: func(context.Context) (*rest.Config, error) { return env.Config, nil },
		Fetch:      (&HTTPFetcher{Dir: t.TempDir()}).Fetch,
		Manifests:  manifests.New(manifests.StaticConfig(env.Config)),
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	name := env.UniqueName("demo")
	ns := NamespacePrefix + name
	widgets := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}

	l := r.layer(t, name, "1.0.0", "", true)
	l.Manifests = []v1.Manifest{{Name: "widget", Content: "apiVersion: " + group + "/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: " + ns + "\nspec:\n  size: 3\n"}}
	l.Hash = "with-widget"
	with := initApply(name, l)
	wantCheck(t, h, with, false, "before apply")
	if err := h.Apply(ctxT(t), with); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, h, with, true, "after apply")
	if _, err := env.Dynamic.Resource(widgets).Namespace(ns).Get(ctxT(t), "w1", metav1.GetOptions{}); err != nil {
		t.Fatalf("attached Widget: %v", err)
	}
	wantHealth(t, h, with, HealthApplied)

	// The manifest leaves the layer: the chart is unchanged, the Widget
	// is pruned.
	without := initApply(name, r.layer(t, name, "1.0.0", "", true))
	without.Layer.Hash = "without-widget"
	wantCheck(t, h, without, false, "manifest dropped")
	if err := h.Apply(ctxT(t), without); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, h, name, "1:deployed")
	if _, err := env.Dynamic.Resource(widgets).Namespace(ns).Get(ctxT(t), "w1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dropped Widget: %v", err)
	}

	if err := h.Apply(ctxT(t), with); err != nil {
		t.Fatal(err)
	}
	rm := initRemove(name, with.Layer)
	if err := h.Remove(ctxT(t), rm); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, h, rm, true, "after remove")
	wantHistory(t, h, name)
}

// The applier under the agent's engine: a spec with a helm layer is
// applied, a broken version of it fails the node with the rollback in the
// message, and a spec without it uninstalls the release.
func TestIntegrationUnderEngine(t *testing.T) {
	env := kubetest.Start(t)
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap), demoChart("1.3.0", tplConfigMap, tplInvalid))
	h := testApplier(t, env)
	name := env.UniqueName("demo")
	e, err := engine.New(engine.Config{
		StateDir: t.TempDir(),
		Layers:   engine.Registry[engine.LayerApplier]{ByName: map[string]engine.LayerApplier{v1.PackHelm: h}},
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		// No retry within the test: the next spec cancels the wait.
		RetryMin:  time.Hour,
		RetryMax:  time.Hour,
		FailAfter: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()

	spec := func(hash string, layers ...v1.RenderedLayer) v1.HostSpec {
		return v1.HostSpec{Metadata: v1.ObjectMeta{Name: "host-1"}, Hash: hash, Cluster: &v1.HostCluster{Name: "c", Role: v1.RoleInit, Layers: layers}}
	}
	waitState := func(hash, state string) v1.NodeReportSpec {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if rep, ok := e.Latest(); ok && rep.SpecHash == hash && rep.State == state {
				return rep
			}
			time.Sleep(20 * time.Millisecond)
		}
		rep, _ := e.Latest()
		t.Fatalf("spec %s: report %+v, want state %s", hash, rep, state)
		return rep
	}

	good := r.layer(t, name, "1.0.0", "greeting: engine\n", true)
	good.Hash = "good"
	e.Apply(spec("s1", good))
	waitState("s1", v1.NodeReady)
	if got := configMap(t, env, NamespacePrefix+name, name+"-config")["greeting"]; got != "engine" {
		t.Fatalf("greeting %q", got)
	}

	bad := r.layer(t, name, "1.3.0", "greeting: engine\n", true)
	bad.Hash = "bad"
	e.Apply(spec("s2", bad))
	rep := waitState("s2", v1.NodeFailed)
	if !strings.Contains(rep.Message, "rolled back to revision 1") || !strings.Contains(rep.Message, "apply layer "+fmt.Sprintf("%q", name)) {
		t.Fatalf("failure message %q", rep.Message)
	}
	wantHistory(t, h, name, "1:superseded", "2:failed", "3:deployed")

	e.Apply(spec("s3"))
	waitState("s3", v1.NodeReady)
	wantHistory(t, h, name)
}
