package engine_test

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// testEngine is an engine running on a state directory against a host.
type testEngine struct {
	*engine.Engine
	reps *reports
	log  *logRecorder
	stop func()
}

type engineOpt func(*engine.Config)

func startEngine(t *testing.T, dir string, distros engine.Registry[engine.Distro], layers engine.Registry[engine.LayerApplier], opts ...engineOpt) *testEngine {
	t.Helper()
	reps, logs := newReports(), newLogRecorder()
	cfg := engine.Config{
		StateDir: dir, Distros: distros, Layers: layers,
		Logger:   slog.New(logs).With("host", "edge-1"),
		Report:   reps.add,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		PollInterval: time.Millisecond, StatusInterval: 10 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("engine did not stop within 5s")
		}
		checkChangesOnly(t, reps.list())
	}
	t.Cleanup(stop)
	return &testEngine{Engine: e, reps: reps, log: logs, stop: stop}
}

func (f *fakeHost) start(t *testing.T, dir string, opts ...engineOpt) *testEngine {
	t.Helper()
	d, l := f.registries()
	return startEngine(t, dir, d, l, opts...)
}

// checkChangesOnly: the engine reports only when something changed.
func checkChangesOnly(t *testing.T, all []v1.NodeReportSpec) {
	t.Helper()
	for i := 1; i < len(all); i++ {
		if reflect.DeepEqual(all[i-1], all[i]) {
			t.Errorf("report %d repeats the one before:\n%s", i, dumpReports(all[i-1:i+1]))
		}
	}
}

func readyAt(hash string) func(v1.NodeReportSpec) bool {
	return func(r v1.NodeReportSpec) bool { return r.State == v1.NodeReady && r.SpecHash == hash }
}

func stepNames(r v1.NodeReportSpec) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

func allDone(t *testing.T, r v1.NodeReportSpec) {
	t.Helper()
	for _, s := range r.Steps {
		if s.State != v1.StepDone || s.Finished == nil || s.Started == nil {
			t.Errorf("step %+v not Done with times", s)
		}
	}
}

func TestFreshInstallToReady(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	e := host.start(t, dir)
	e.Apply(*spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn))
	r := e.reps.wait(t, "Ready", readyAt("h1"))
	want := []string{"apply os ubuntu", "install k3s", "wait for node to join", "apply layer calico", "apply layer longhorn"}
	if got := stepNames(r); !slices.Equal(got, want) {
		t.Errorf("report steps = %q, want %q", got, want)
	}
	allDone(t, r)
	if !r.NodeReady || !r.ControlPlaneUp || r.KubernetesVersion != "1.32.2" || r.Address != "192.0.2.10" || r.Message != "" {
		t.Errorf("ready report = %+v", r)
	}
	if got := host.actions(); !slices.Equal(got, []string{"apply os ubuntu", "install k3s", "apply layer calico", "apply layer longhorn"}) {
		t.Errorf("actions = %q", got)
	}
	// The init node says ControlPlaneUp as soon as it is, before its layers.
	e.reps.wait(t, "ControlPlaneUp while layers apply", func(r v1.NodeReportSpec) bool {
		return r.ControlPlaneUp && r.State == v1.NodeApplying && r.Steps[3].State != v1.StepDone
	})
	e.stop()

	st, err := engine.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.SpecHash != "h1" || st.OS.Hash != "os1" || st.Distro.Layer.Version != k3s1.Version || !st.Distro.Joined || st.Distro.Role != v1.RoleInit ||
		len(st.Layers) != 2 || st.Layers[0].Layer.Hash != "cal-a" || st.Layers[1].Key != "longhorn" || st.Run.SpecHash != "h1" || len(st.Run.Done) != 5 {
		t.Errorf("engine.json = %+v", st)
	}
	if done := e.log.find("step done"); len(done) != 5 || done[0].attrs["host"] != "edge-1" || done[0].attrs["step"] != "apply os ubuntu" {
		t.Errorf("step done logs = %+v", done)
	}

	// Restarted with the same spec: nothing to do, nothing checked, the
	// report still lists what was done.
	checks := len(host.checks())
	e2 := host.start(t, dir)
	e2.Apply(*spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn))
	r = e2.reps.wait(t, "Ready after restart", readyAt("h1"))
	if got := stepNames(r); !slices.Equal(got, want) {
		t.Errorf("report steps after restart = %q, want %q", got, want)
	}
	allDone(t, r)
	if n := len(host.checks()); n != checks {
		t.Errorf("checks after restart: %q, want none new", host.checks())
	}
	if len(host.actions()) != 4 {
		t.Errorf("actions after restart = %q", host.actions())
	}
}

func TestReconfigureTouchesOnlyChangedLayers(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	e := host.start(t, dir)
	e.Apply(*spec("h1", v1.RoleWorker, &osUbuntu, &k3s1, calico, longhorn, monitoring))
	e.reps.wait(t, "Ready", readyAt("h1"))
	before := len(host.actions())
	e.Apply(*spec("h2", v1.RoleWorker, &osUbuntu, &k3s1, calico2, longhorn))
	r := e.reps.wait(t, "Ready at h2", readyAt("h2"))
	if got := host.actions()[before:]; !slices.Equal(got, []string{"remove layer monitoring", "apply layer calico"}) {
		t.Errorf("actions = %q", got)
	}
	if got := stepNames(r); !slices.Equal(got, []string{"remove layer monitoring", "apply layer calico"}) {
		t.Errorf("report steps = %q", got)
	}
}

func TestRetryWithBackoffThenFailed(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	host.failures["apply layer calico"] = 3
	host.failMsg = "helm: chart not found"
	e := host.start(t, dir, func(c *engine.Config) {
		c.FailAfter = 2
		c.RetryMin, c.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	})
	e.Apply(*spec("h1", v1.RoleInit, nil, &k3s1, calico))
	wantMsg := `apply layer "calico": helm: chart not found`
	r := e.reps.wait(t, "first failure", func(r v1.NodeReportSpec) bool { return r.Message != "" })
	if s := r.Steps[2]; r.State != v1.NodeApplying || s.State != v1.StepRunning || s.Attempts != 1 || s.Message != wantMsg || r.Message != wantMsg {
		t.Errorf("after one failure: %s", dumpReports([]v1.NodeReportSpec{r}))
	}
	r = e.reps.wait(t, "Failed", func(r v1.NodeReportSpec) bool { return r.State == v1.NodeFailed })
	if s := r.Steps[2]; s.State != v1.StepFailed || s.Attempts != 2 || s.Message != wantMsg || r.Message != wantMsg {
		t.Errorf("failed report: %s", dumpReports([]v1.NodeReportSpec{r}))
	}
	// It keeps trying and gets there.
	r = e.reps.wait(t, "Ready", readyAt("h1"))
	if s := r.Steps[2]; s.State != v1.StepDone || s.Attempts != 4 || s.Message != "" || r.Message != "" {
		t.Errorf("ready report: %s", dumpReports([]v1.NodeReportSpec{r}))
	}
	failed := e.log.find("step failed")
	if len(failed) != 3 || failed[0].attrs["step"] != "apply layer calico" || failed[0].attrs["host"] != "edge-1" ||
		failed[0].attrs["error"] != wantMsg || failed[0].level != slog.LevelWarn || failed[1].level != slog.LevelError {
		t.Errorf("step failed logs = %+v", failed)
	}
	// Each report after a failure carries news: the attempt count moves.
	var attempts []int
	for _, r := range e.reps.list() {
		if len(r.Steps) > 2 && r.Steps[2].Message != "" {
			attempts = append(attempts, r.Steps[2].Attempts)
		}
	}
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Errorf("attempts reported = %v, want 1, 2, 3", attempts)
	}
}

func TestNoProvider(t *testing.T) {
	e := startEngine(t, t.TempDir(), engine.Registry[engine.Distro]{}, engine.Registry[engine.LayerApplier]{})
	e.Apply(*spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico))
	r := e.reps.wait(t, "Failed", func(r v1.NodeReportSpec) bool { return r.State == v1.NodeFailed })
	if r.Message != `no provider for distro "k3s"` {
		t.Errorf("message = %q", r.Message)
	}
}

// An agent killed while a step runs does not redo the steps before it, and
// does the interrupted one only if the provider says it is not done.
func TestCrashResume(t *testing.T) {
	for _, effect := range []bool{false, true} {
		name := "killed before the action took effect"
		if effect {
			name = "killed after the action took effect"
		}
		t.Run(name, func(t *testing.T) {
			host, dir := newFakeHost(), t.TempDir()
			host.hold["apply layer calico"], host.effect = true, effect
			s := spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn)
			e := host.start(t, dir)
			e.Apply(*s)
			for n := range host.started {
				if n == "apply layer calico" {
					break
				}
			}
			e.stop()

			host.mu.Lock()
			host.hold = map[string]bool{}
			host.checked = nil
			host.mu.Unlock()
			e2 := host.start(t, dir)
			e2.Apply(*s)
			r := e2.reps.wait(t, "Ready", readyAt("h1"))
			want := []string{"apply os ubuntu", "install k3s", "apply layer calico", "apply layer longhorn"}
			if got := host.actions(); !slices.Equal(got, want) {
				t.Errorf("actions = %q, want each once: %q", got, want)
			}
			// Steps done before the kill are not even checked again; the
			// interrupted one is checked.
			if got := host.checks(); !slices.Equal(got, []string{"apply layer calico", "apply layer longhorn"}) {
				t.Errorf("checks after restart = %q", got)
			}
			// The report after the restart still shows every step.
			if got := stepNames(r); !slices.Equal(got, []string{"apply os ubuntu", "install k3s", "wait for node to join", "apply layer calico", "apply layer longhorn"}) {
				t.Errorf("report steps = %q", got)
			}
			allDone(t, r)
			calicoDone := e2.log.find("step done")[0]
			if calicoDone.attrs["step"] != "apply layer calico" || calicoDone.attrs["alreadyDone"] != boolString(effect) {
				t.Errorf("first step done after restart: %+v", calicoDone)
			}
		})
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestNewerSpecCancelsRunningPlan(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	host.hold["apply layer calico"] = true
	e := host.start(t, dir)
	e.Apply(*spec("h1", v1.RoleInit, nil, &k3s1, calico, longhorn))
	for n := range host.started {
		if n == "apply layer calico" {
			break
		}
	}
	// A re-sent spec (same hash, new revision) does not disturb the plan.
	resent := spec("h1", v1.RoleInit, nil, &k3s1, calico, longhorn)
	resent.Metadata.Revision = 2
	e.Apply(*resent)
	select {
	case n := <-host.started:
		t.Fatalf("re-sent spec restarted the plan: %s", n)
	case <-time.After(50 * time.Millisecond):
	}

	host.mu.Lock()
	host.hold = map[string]bool{}
	host.mu.Unlock()
	e.Apply(*spec("h2", v1.RoleInit, nil, &k3s1, calico2))
	r := e.reps.wait(t, "Ready at h2", readyAt("h2"))
	if got := host.actions(); !slices.Equal(got, []string{"install k3s", "apply layer calico"}) {
		t.Errorf("actions = %q", got)
	}
	if got := stepNames(r); !slices.Equal(got, []string{"apply layer calico"}) {
		t.Errorf("report steps = %q", got)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.layers["calico"] != "cal-b" || host.layers["longhorn"] != "" {
		t.Errorf("layers = %v", host.layers)
	}
}

func TestUpgradeGatedThenGranted(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	e := host.start(t, dir)
	e.Apply(*spec("h1", v1.RoleControlPlane, &osUbuntu, &k3s1, calico))
	e.reps.wait(t, "Ready", readyAt("h1"))
	before := len(host.actions())

	e.Apply(*spec("h2", v1.RoleControlPlane, &osUbuntu, &k3s2, calico2))
	r := e.reps.wait(t, "Waiting", func(r v1.NodeReportSpec) bool { return r.State == v1.NodeWaiting })
	if r.Message != engine.MsgWaitingForTurn || len(r.Steps) != 1 || r.Steps[0].Name != "upgrade k3s" ||
		r.Steps[0].State != v1.StepPending || r.Steps[0].Message != engine.MsgWaitingForTurn || !r.NodeReady || r.KubernetesVersion != "1.32.2" {
		t.Errorf("waiting report: %+v", r)
	}
	time.Sleep(20 * time.Millisecond)
	if got := host.actions()[before:]; len(got) != 0 {
		t.Fatalf("acted without the turn: %q", got)
	}

	granted := spec("h2", v1.RoleControlPlane, &osUbuntu, &k3s2, calico2)
	granted.Cluster.UpgradeGranted = true
	e.Apply(*granted)
	r = e.reps.wait(t, "Ready at h2", readyAt("h2"))
	if got := host.actions()[before:]; !slices.Equal(got, []string{"upgrade k3s", "apply layer calico"}) {
		t.Errorf("actions = %q", got)
	}
	if r.KubernetesVersion != "1.32.3" {
		t.Errorf("kubernetes version = %q", r.KubernetesVersion)
	}
}

func TestRemoveAll(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	e := host.start(t, dir)
	e.Apply(*spec("h1", v1.RoleWorker, &osUbuntu, &k3s1, calico, longhorn))
	e.reps.wait(t, "Ready", readyAt("h1"))
	before := len(host.actions())
	s := spec("h2", v1.RoleWorker, &osUbuntu, &k3s1, calico, longhorn)
	s.Cluster.Remove = true
	e.Apply(*s)
	r := e.reps.wait(t, "Removed", func(r v1.NodeReportSpec) bool { return r.Removed })
	if r.State != v1.NodeRemoved || r.SpecHash != "h2" || r.NodeReady || r.ControlPlaneUp {
		t.Errorf("removed report = %+v", r)
	}
	if got := host.actions()[before:]; !slices.Equal(got, []string{"remove layer longhorn", "remove layer calico", "remove k3s"}) {
		t.Errorf("actions = %q", got)
	}
	removing := e.reps.wait(t, "Removing", func(r v1.NodeReportSpec) bool { return r.State == v1.NodeRemoving })
	if removing.SpecHash != "h2" {
		t.Errorf("removing report = %+v", removing)
	}
	st, _ := engine.LoadState(dir)
	if st.Distro != nil || len(st.Layers) != 0 || st.OS == nil || st.SpecHash != "h2" {
		t.Errorf("state after remove = %+v", st)
	}
}

func TestNodeNotReadyAfterPlan(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	host.notReady = true
	e := host.start(t, dir, func(c *engine.Config) { c.WaitTimeout = 30 * time.Millisecond })
	e.Apply(*spec("h1", v1.RoleWorker, nil, &k3s1))
	e.reps.wait(t, "waiting for Ready", func(r v1.NodeReportSpec) bool {
		return r.State == v1.NodeApplying && r.Message == engine.MsgWaitingForReady
	})
	e.reps.wait(t, "Failed", func(r v1.NodeReportSpec) bool {
		return r.State == v1.NodeFailed && strings.HasPrefix(r.Message, engine.MsgNotReady)
	})
	host.mu.Lock()
	host.notReady = false
	host.mu.Unlock()
	e.reps.wait(t, "Ready", readyAt("h1"))
}

// Someone deletes what a layer made while the node runs: the next drift
// pass (once per StatusInterval) finds it and applies the layer again,
// without any new spec.
func TestDriftIsCorrected(t *testing.T) {
	host, dir := newFakeHost(), t.TempDir()
	e := host.start(t, dir, func(c *engine.Config) { c.StatusInterval = 50 * time.Millisecond })
	e.Apply(*spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn))
	e.reps.wait(t, "Ready", readyAt("h1"))
	before := len(host.actions())
	host.mu.Lock()
	delete(host.layers, "calico") // the drift
	host.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := host.actions()[before:]
		if slices.Contains(got, "apply layer calico") {
			if slices.Contains(got, "apply layer longhorn") {
				t.Fatalf("an untouched layer was applied again: %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drift not corrected within 5s: actions since Ready %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := e.reps.wait(t, "layer health", func(r v1.NodeReportSpec) bool { return len(r.Layers) == 2 })
	if r.Layers[0].Name != "calico" || r.Layers[0].State != v1.LayerApplied {
		t.Fatalf("layer health %+v", r.Layers)
	}
}
