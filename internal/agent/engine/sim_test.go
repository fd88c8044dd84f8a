package engine_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/simulated"
)

func startSim(t *testing.T, root hostos.Root, dir string, delay time.Duration) (*testEngine, *simulated.Host) {
	t.Helper()
	sim := simulated.New(simulated.Config{Root: root, StepDelay: delay, Logger: slog.New(slog.DiscardHandler)})
	return startEngine(t, dir, sim.Distros(), sim.LayerAppliers()), sim
}

func stepRunning(name string) func(v1.NodeReportSpec) bool {
	return func(r v1.NodeReportSpec) bool {
		for _, s := range r.Steps {
			if s.Name == name && s.State == v1.StepRunning {
				return true
			}
		}
		return false
	}
}

func checkNoDuplicates(t *testing.T, lines []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("actions.log has %q twice:\n%q", l, lines)
		}
		seen[l] = true
	}
}

// Killing the agent in the middle of a step with the simulated host and
// starting it again: the host ends where the spec says, every action done
// once, including an upgrade killed half-way.
func TestSimulatedCrashResume(t *testing.T) {
	root := hostos.Root{Dir: t.TempDir()}
	if err := root.WriteFileAtomic("/run/outpost/addresses", []byte("eth0 192.0.2.44/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const delay = 200 * time.Millisecond
	s1 := spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn)

	e, _ := startSim(t, root, dir, delay)
	e.Apply(*s1)
	e.reps.wait(t, "calico running", stepRunning("apply layer calico"))
	e.stop()

	e, sim := startSim(t, root, dir, time.Millisecond)
	e.Apply(*s1)
	r := e.reps.wait(t, "Ready", readyAt("h1"))
	if r.Address != "192.0.2.44" || r.KubernetesVersion != "1.32.2" || !r.ControlPlaneUp {
		t.Errorf("ready report = %+v", r)
	}
	lines, err := sim.Actions()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"apply os ubuntu hash=os1",
		"install k3s 1.32.2+k3s1 role=init",
		"apply layer calico hash=cal-a",
		"apply layer longhorn hash=lh-a",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("actions.log = %q, want %q", lines, want)
	}
	e.stop()

	// Killed half-way through an upgrade: the simulated node is down.
	e, sim = startSim(t, root, dir, delay)
	s2 := spec("h2", v1.RoleInit, &osUbuntu, &k3s2, calico, longhorn)
	s2.Cluster.UpgradeGranted = true
	e.Apply(*s2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(filepath.Join(root.Dir, simulated.PathDistro))
		if bytes.Contains(data, []byte(`"upgrading": true`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the simulated upgrade never got half-way")
		}
		time.Sleep(time.Millisecond)
	}
	e.stop()
	if st, _ := sim.Distro().Status(context.Background()); st.NodeReady {
		t.Errorf("node Ready half-way through an upgrade: %+v", st)
	}

	e, sim = startSim(t, root, dir, time.Millisecond)
	e.Apply(*s2)
	r = e.reps.wait(t, "Ready at h2", readyAt("h2"))
	if r.KubernetesVersion != "1.32.3" {
		t.Errorf("kubernetes version = %q", r.KubernetesVersion)
	}
	lines, _ = sim.Actions()
	if want := append(want, "upgrade k3s 1.32.2+k3s1 -> 1.32.3+k3s1"); !slices.Equal(lines, want) {
		t.Errorf("actions.log = %q, want %q", lines, want)
	}
	checkNoDuplicates(t, lines)

	st, _ := engine.LoadState(dir)
	if st.SpecHash != "h2" || st.Distro.Layer.Hash != "k3s-b" {
		t.Errorf("engine.json = %+v", st)
	}
}

// A fault with times fails the step that many times, reported with its
// message, and the plan goes on after.
func TestSimulatedFaultReported(t *testing.T) {
	root := hostos.Root{Dir: t.TempDir()}
	faults := "stepDelay: 1ms\nfail:\n  - {action: apply, target: calico, times: 2, message: \"chart repository unreachable\"}\n"
	if err := root.WriteFileAtomic(simulated.PathFaults, []byte(faults), 0o644); err != nil {
		t.Fatal(err)
	}
	e, sim := startSim(t, root, t.TempDir(), time.Millisecond)
	e.Apply(*spec("h1", v1.RoleWorker, nil, &k3s1, calico))
	r := e.reps.wait(t, "failure", func(r v1.NodeReportSpec) bool { return r.Message != "" })
	if want := `apply layer "calico": simulated fault: chart repository unreachable`; r.Message != want {
		t.Errorf("message = %q, want %q", r.Message, want)
	}
	e.reps.wait(t, "Ready", readyAt("h1"))
	lines, _ := sim.Actions()
	if !slices.Equal(lines, []string{"install k3s 1.32.2+k3s1 role=worker", "apply layer calico hash=cal-a"}) {
		t.Errorf("actions.log = %q", lines)
	}
}
