package simulated_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/simulated"
)

var (
	k3s1   = v1.RenderedLayer{Name: "k3s", Layer: v1.LayerK8s, Type: v1.PackDistro, Pack: "k3s", Version: "1.32.2+k3s1", Hash: "k3s-a"}
	k3s2   = v1.RenderedLayer{Name: "k3s", Layer: v1.LayerK8s, Type: v1.PackDistro, Pack: "k3s", Version: "1.32.3+k3s1", KubernetesVersion: "1.32.3", Hash: "k3s-b"}
	ubuntu = v1.RenderedLayer{Name: "ubuntu", Layer: v1.LayerOS, Type: v1.PackDistro, Pack: "ubuntu", Version: "22.04", Hash: "os1"}
	calico = v1.RenderedLayer{Name: "calico", Layer: v1.LayerCNI, Type: v1.PackHelm, Pack: "calico", Version: "3.29.0", Hash: "cal-a"}
)

func newHost(t *testing.T, root hostos.Root) *simulated.Host {
	t.Helper()
	return simulated.New(simulated.Config{Root: root, StepDelay: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
}

func check[A any](t *testing.T, f func(context.Context, A) (bool, error), a A, want bool) {
	t.Helper()
	got, err := f(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Check(%+v) = %v, want %v", a, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestActionsRecordedOnceAndChecked(t *testing.T) {
	ctx := context.Background()
	root := hostos.Root{Dir: t.TempDir()}
	h := newHost(t, root)
	d, l := h.Distro(), h.Layers()

	install := engine.DistroAction{Op: engine.DistroInstall, Layer: k3s1, Role: v1.RoleInit}
	check(t, d.Check, install, false)
	must(t, d.Apply(ctx, install))
	check(t, d.Check, install, true)
	asWorker := install
	asWorker.Role = v1.RoleWorker
	check(t, d.Check, asWorker, false)

	osApply := engine.LayerAction{Op: engine.LayerApply, Layer: ubuntu, Key: "ubuntu"}
	calApply := engine.LayerAction{Op: engine.LayerApply, Layer: calico, Key: "calico", Distro: "k3s"}
	calRemove := calApply
	calRemove.Op = engine.LayerRemove
	check(t, l.Check, calApply, false)
	check(t, l.Check, calRemove, true)
	must(t, l.Apply(ctx, osApply))
	must(t, l.Apply(ctx, calApply))
	check(t, l.Check, osApply, true)
	check(t, l.Check, calApply, true)
	check(t, l.Check, calRemove, false)
	changed := calApply
	changed.Layer.Hash = "cal-b"
	check(t, l.Check, changed, false)

	// Restarted: a new Host reads the same files.
	h = newHost(t, root)
	d, l = h.Distro(), h.Layers()
	check(t, d.Check, install, true)
	check(t, l.Check, calApply, true)

	upgrade := engine.DistroAction{Op: engine.DistroUpgrade, Layer: k3s2, Role: v1.RoleInit, From: &k3s1}
	check(t, d.Check, upgrade, false)
	must(t, d.Apply(ctx, upgrade))
	check(t, d.Check, upgrade, true)

	must(t, l.Remove(ctx, calRemove))
	check(t, l.Check, calRemove, true)
	// Removing what is not there does nothing and records nothing.
	must(t, l.Remove(ctx, calRemove))

	remove := engine.DistroAction{Op: engine.DistroRemove, Layer: k3s2, Role: v1.RoleInit}
	check(t, d.Check, remove, false)
	must(t, d.Apply(ctx, remove))
	check(t, d.Check, remove, true)
	check(t, l.Check, osApply, true) // the OS layer is the host's, it stays

	lines, err := h.Actions()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"install k3s 1.32.2+k3s1 role=init",
		"apply os ubuntu hash=os1",
		"apply layer calico hash=cal-a",
		"upgrade k3s 1.32.2+k3s1 -> 1.32.3+k3s1",
		"remove layer calico",
		"remove k3s",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("actions.log =\n%q\nwant\n%q", lines, want)
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	root := hostos.Root{Dir: t.TempDir()}
	h := newHost(t, root)
	d := h.Distro()
	st, err := d.Status(ctx)
	if err != nil || st.Joined || st.NodeReady || st.Address != "127.0.0.1" {
		t.Errorf("before install: %+v, %v", st, err)
	}
	must(t, root.WriteFileAtomic("/run/outpost/addresses", []byte("# nic addr\neth0 192.0.2.7/24\n"), 0o644))
	must(t, d.Apply(ctx, engine.DistroAction{Op: engine.DistroInstall, Layer: k3s1, Role: v1.RoleWorker}))
	st, _ = d.Status(ctx)
	if !st.Joined || !st.NodeReady || st.ControlPlaneUp || st.KubernetesVersion != "1.32.2" || st.Address != "192.0.2.7" {
		t.Errorf("worker: %+v", st)
	}
	must(t, d.Apply(ctx, engine.DistroAction{Op: engine.DistroInstall, Layer: k3s2, Role: v1.RoleControlPlane}))
	st, _ = d.Status(ctx)
	if !st.ControlPlaneUp || !st.NodeReady || st.KubernetesVersion != "1.32.3" {
		t.Errorf("control plane: %+v", st)
	}
	must(t, root.WriteFileAtomic(simulated.PathFaults, []byte("notReady: true\n"), 0o644))
	st, _ = d.Status(ctx)
	if st.NodeReady || !st.ControlPlaneUp {
		t.Errorf("notReady fault: %+v", st)
	}
}

// A cancelled action leaves nothing behind, except an upgrade cancelled
// half-way, which leaves the node down until it is done again.
func TestCancelledActions(t *testing.T) {
	root := hostos.Root{Dir: t.TempDir()}
	h := simulated.New(simulated.Config{Root: root, StepDelay: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	d := h.Distro()
	install := engine.DistroAction{Op: engine.DistroInstall, Layer: k3s1, Role: v1.RoleInit}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := d.Apply(ctx, install); err == nil {
		t.Fatal("cancelled install succeeded")
	}
	check(t, d.Check, install, false)
	must(t, d.Apply(context.Background(), install))

	upgrade := engine.DistroAction{Op: engine.DistroUpgrade, Layer: k3s2, Role: v1.RoleInit}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Apply(ctx, upgrade) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		data, _ := root.ReadFile(simulated.PathDistro)
		if strings.Contains(string(data), `"upgrading": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upgrade never got half-way")
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled upgrade succeeded")
	}
	if st, _ := d.Status(context.Background()); st.NodeReady || st.ControlPlaneUp {
		t.Errorf("half-way upgrade: %+v", st)
	}
	check(t, d.Check, upgrade, false)
	must(t, d.Apply(context.Background(), upgrade))
	check(t, d.Check, upgrade, true)
	lines, _ := h.Actions()
	if !slices.Equal(lines, []string{"install k3s 1.32.2+k3s1 role=init", "upgrade k3s 1.32.2+k3s1 -> 1.32.3+k3s1"}) {
		t.Errorf("actions.log = %q", lines)
	}
}

func TestFaultTimesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	root := hostos.Root{Dir: t.TempDir()}
	must(t, root.WriteFileAtomic(simulated.PathFaults, []byte(`
stepDelay: 1ms
fail:
  - action: install
    target: k3s
    times: 2
    message: download failed
  - action: apply
    target: longhorn
    message: always
`), 0o644))
	install := engine.DistroAction{Op: engine.DistroInstall, Layer: k3s1, Role: v1.RoleInit}
	err := newHost(t, root).Distro().Apply(ctx, install)
	if err == nil || err.Error() != "simulated fault: download failed" {
		t.Fatalf("first install = %v", err)
	}
	// A restart does not reset the count.
	if err := newHost(t, root).Distro().Apply(ctx, install); err == nil {
		t.Fatal("second install succeeded")
	}
	h := newHost(t, root)
	must(t, h.Distro().Apply(ctx, install))
	check(t, h.Distro().Check, install, true)

	// Another target is not affected; times 0 fails every time.
	must(t, h.Layers().Apply(ctx, engine.LayerAction{Op: engine.LayerApply, Layer: calico, Key: "calico"}))
	lh := calico
	lh.Name, lh.Pack = "longhorn", "longhorn"
	for range 3 {
		if err := h.Layers().Apply(ctx, engine.LayerAction{Op: engine.LayerApply, Layer: lh, Key: "longhorn"}); err == nil || !strings.Contains(err.Error(), "always") {
			t.Fatalf("longhorn apply = %v", err)
		}
	}
	lines, _ := h.Actions()
	if !slices.Equal(lines, []string{"install k3s 1.32.2+k3s1 role=init", "apply layer calico hash=cal-a"}) {
		t.Errorf("actions.log = %q", lines)
	}
}

func TestFaultsFileErrors(t *testing.T) {
	for content, want := range map[string]string{
		"stepDelay: soon\n":                   `stepDelay "soon"`,
		"fail: [{action: explode}]\n":         `fail[0].action "explode"`,
		"fial: []\n":                          "field fial not found",
		"fail: [{action: apply, tmies: 2}]\n": "field tmies not found",
	} {
		root := hostos.Root{Dir: t.TempDir()}
		must(t, root.WriteFileAtomic(simulated.PathFaults, []byte(content), 0o644))
		err := newHost(t, root).Layers().Apply(context.Background(), engine.LayerAction{Op: engine.LayerApply, Layer: calico, Key: "calico"})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), simulated.PathFaults) {
			t.Errorf("faults %q: err = %v, want it to name the file and %q", content, err, want)
		}
	}
}
