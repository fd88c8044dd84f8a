package helm

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

func layerAction(key, values string, mod ...func(*v1.RenderedLayer)) engine.LayerAction {
	l := v1.RenderedLayer{
		Name: strings.Split(key, "#")[0], Layer: v1.LayerAddon, Type: v1.PackHelm, Pack: "demo", Version: "1.0.0",
		Values: values,
		Chart:  &v1.ChartRef{Repository: "https://charts.example", Name: "demo", Version: "1.0.0"},
	}
	for _, m := range mod {
		m(&l)
	}
	return engine.LayerAction{Op: engine.LayerApply, Layer: l, Key: key, Distro: "k3s", Role: v1.RoleInit}
}

func TestReleaseName(t *testing.T) {
	for key, want := range map[string]string{"metrics-server": "metrics-server", "agent#2": "agent-2", "a#10": "a-10"} {
		if got := ReleaseName(key); got != want {
			t.Errorf("ReleaseName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestNamespace(t *testing.T) {
	cases := []struct {
		key, values, want, err string
	}{
		{key: "metrics-server", want: "outpost-metrics-server"},
		{key: "agent#2", values: "replicas: 1", want: "outpost-agent-2"},
		{key: "cm", values: "namespace: cert-manager\n", want: "cert-manager"},
		{key: "rook", values: "outpost:\n  namespace: rook-ceph\nnamespace: ignored\n", want: "rook-ceph"},
		// A namespace value that is not a string is the chart's business.
		{key: "x", values: "namespace:\n  create: true\n", want: "outpost-x"},
		{key: "x", values: "outpost:\n  other: 1\n", want: "outpost-x"},
		{key: "x", values: "# only a comment\n", want: "outpost-x"},
		{key: "x", values: "namespace: Not_A_Label", err: `values namespace "Not_A_Label"`},
		{key: "x", values: "outpost: {namespace: -bad}", err: `values outpost.namespace "-bad"`},
		{key: "x", values: "- a list", err: "values:"},
		{key: strings.Repeat("a", 60), err: "derived namespace"},
	}
	for _, c := range cases {
		got, err := Namespace(c.key, c.values)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Namespace(%q, %q) = %q, %v; want error containing %q", c.key, c.values, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Namespace(%q, %q) = %q, %v; want %q", c.key, c.values, got, err, c.want)
		}
	}
}

func TestConfigHash(t *testing.T) {
	base := layerAction("demo", "a: 1\nb:\n  c: [x, z]\n")
	h0, err := ConfigHash(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(h0) != 64 {
		t.Fatalf("hash %q is not a hex sha256", h0)
	}
	same := map[string]engine.LayerAction{
		"key order and formatting": layerAction("demo", "# comment\nb: {c: [\"x\", \"z\"]}\na: 1.0\n"),
		"layer hash, train, artifacts": layerAction("demo", "a: 1\nb:\n  c: [x, z]\n", func(l *v1.RenderedLayer) {
			l.Hash, l.Train = "other", "1.x"
			l.Artifacts = []v1.Artifact{{Name: "demo-1.0.0.tgz", URL: "https://mirror.example/demo-1.0.0.tgz"}}
		}),
		"attached manifests (not Helm's)": layerAction("demo", "a: 1\nb:\n  c: [x, z]\n", func(l *v1.RenderedLayer) {
			l.Manifests = []v1.Manifest{{Name: "extra", Content: "kind: ConfigMap"}}
		}),
		"the node's role and distro": func() engine.LayerAction {
			a := base
			a.Role, a.Distro = v1.RoleControlPlane, "rke2"
			return a
		}(),
		"digest case and prefix": func() engine.LayerAction {
			a, b := layerAction("demo", base.Layer.Values), layerAction("demo", base.Layer.Values)
			a.Layer.Chart.Digest = "sha256:ABCDEF"
			b.Layer.Chart.Digest = "abcdef"
			ha, _ := ConfigHash(a)
			hb, _ := ConfigHash(b)
			if ha != hb {
				t.Errorf("digest spelling changes the hash")
			}
			return base
		}(),
	}
	for name, a := range same {
		if h, err := ConfigHash(a); err != nil || h != h0 {
			t.Errorf("%s: hash %s, %v; want the same %s", name, h, err, h0)
		}
	}
	differ := map[string]engine.LayerAction{
		"a value":       layerAction("demo", "a: 2\nb:\n  c: [x, z]\n"),
		"a list order":  layerAction("demo", "a: 1\nb:\n  c: [z, x]\n"),
		"chart version": layerAction("demo", base.Layer.Values, func(l *v1.RenderedLayer) { l.Chart.Version = "1.0.1" }),
		"chart digest":  layerAction("demo", base.Layer.Values, func(l *v1.RenderedLayer) { l.Chart.Digest = strings.Repeat("a", 64) }),
		"repository":    layerAction("demo", base.Layer.Values, func(l *v1.RenderedLayer) { l.Chart.Repository = "https://other.example" }),
		"key":           layerAction("demo#2", base.Layer.Values),
		"namespace":     layerAction("demo", base.Layer.Values+"outpost: {namespace: elsewhere}\n"),
	}
	seen := map[string]string{h0: "base"}
	for name, a := range differ {
		h, err := ConfigHash(a)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if prev, dup := seen[h]; dup {
			t.Errorf("%s: same hash as %s", name, prev)
		}
		seen[h] = name
	}
}

func TestTargetPrivateValues(t *testing.T) {
	tg, err := targetOf(layerAction("demo", "outpost:\n  namespace: tools\nreplicas: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tg.values[PrivateValuesKey]; ok {
		t.Errorf("the chart would see the private key: %v", tg.values)
	}
	if tg.values["replicas"] != float64(2) || tg.namespace != "tools" || tg.release != "demo" {
		t.Errorf("target = %+v", tg)
	}
	if l := tg.labels(); len(l[LabelConfigHash]) != hashLabelLen || l[LabelManagedBy] != "outpost" {
		t.Errorf("labels = %v", l)
	}
}

func TestTargetErrors(t *testing.T) {
	for name, a := range map[string]engine.LayerAction{
		"no chart":     layerAction("demo", "", func(l *v1.RenderedLayer) { l.Chart = nil }),
		"no version":   layerAction("demo", "", func(l *v1.RenderedLayer) { l.Chart.Version = "" }),
		"bad name":     layerAction("Demo_Layer", ""),
		"bad values":   layerAction("demo", "a: [unclosed"),
		"long release": layerAction(strings.Repeat("x", 54), ""),
	} {
		if _, err := ConfigHash(a); err == nil {
			t.Errorf("%s: no error", name)
		}
		h, _ := New(Options{RESTConfig: func(context.Context) (*rest.Config, error) {
			t.Errorf("%s: cluster contacted for a layer that cannot be applied", name)
			return nil, context.Canceled
		}})
		err := h.Apply(context.Background(), a)
		if err == nil || !engine.IsPermanent(err) || !strings.HasPrefix(err.Error(), "helm layer ") {
			t.Errorf("%s: Apply = %v, want a permanent error naming the layer", name, err)
		}
	}
}

// Only the init node (or a node without a role: a cluster of one) acts;
// the others must not even build a client.
func TestOtherRolesDoNothing(t *testing.T) {
	h, err := New(Options{
		RESTConfig: func(context.Context) (*rest.Config, error) {
			t.Error("a node that is not the init node asked for a cluster client")
			return nil, context.Canceled
		},
		Fetch: func(context.Context, v1.RenderedLayer) (string, error) {
			t.Error("a node that is not the init node fetched a chart")
			return "", context.Canceled
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, role := range []string{v1.RoleControlPlane, v1.RoleWorker} {
		for _, op := range []engine.LayerOp{engine.LayerApply, engine.LayerRemove} {
			a := layerAction("demo", "a: 1")
			a.Role, a.Op = role, op
			if done, err := h.Check(ctx, a); !done || err != nil {
				t.Errorf("%s %s: Check = %v, %v; want done", role, op, done, err)
			}
			if err := h.Apply(ctx, a); err != nil {
				t.Errorf("%s %s: Apply = %v", role, op, err)
			}
			if err := h.Remove(ctx, a); err != nil {
				t.Errorf("%s %s: Remove = %v", role, op, err)
			}
			if st, msg := h.Health(ctx, a); st != "" || msg != "" {
				t.Errorf("%s %s: Health = %q, %q; want nothing", role, op, st, msg)
			}
		}
	}
}

func TestNewNeedsRESTConfig(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without RESTConfig: no error")
	}
}

// Attached manifests need a manifests applier: without one the layer is
// refused rather than half-applied.
func TestAttachedManifestsNeedAnApplier(t *testing.T) {
	h, _ := New(Options{RESTConfig: func(context.Context) (*rest.Config, error) {
		t.Error("cluster contacted for a layer that cannot be applied")
		return nil, context.Canceled
	}})
	a := layerAction("demo", "", func(l *v1.RenderedLayer) {
		l.Manifests = []v1.Manifest{{Name: "issuer", Content: "kind: ClusterIssuer"}}
	})
	if _, err := h.Check(context.Background(), a); err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "no manifests applier") {
		t.Errorf("Check = %v", err)
	}
	if err := h.Apply(context.Background(), a); err == nil || !engine.IsPermanent(err) {
		t.Errorf("Apply = %v", err)
	}
}
