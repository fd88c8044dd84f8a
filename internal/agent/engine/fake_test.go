package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// fakeHost is a recording provider: a host held in memory, which outlives
// the engines a test starts on it, as a real host outlives its agent.
type fakeHost struct {
	mu       sync.Mutex
	distro   *fakeDistro
	os       string
	layers   map[string]string // key → hash
	applied  []string          // one entry per action done: the step name
	checked  []string
	notReady bool
	// failures makes the next n attempts at an action (by step name) fail.
	failures map[string]int
	failMsg  string
	// hold makes an action block until its ctx ends; with effect, what it
	// does is in place before it blocks (the agent dies after the host
	// changed but before it heard back).
	hold   map[string]bool
	effect bool
	// started receives the name of every action that begins.
	started chan string
}

type fakeDistro struct {
	pack, hash, version, role string
}

func newFakeHost() *fakeHost {
	return &fakeHost{layers: map[string]string{}, failures: map[string]int{}, hold: map[string]bool{}, started: make(chan string, 100)}
}

func (f *fakeHost) registries() (engine.Registry[engine.Distro], engine.Registry[engine.LayerApplier]) {
	return engine.Registry[engine.Distro]{ByName: map[string]engine.Distro{"k3s": fakeDistroP{f}}},
		engine.Registry[engine.LayerApplier]{ByName: map[string]engine.LayerApplier{
			"os": fakeLayers{f}, v1.PackHelm: fakeLayers{f}, v1.PackManifest: fakeLayers{f},
		}}
}

func (f *fakeHost) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

func (f *fakeHost) checks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.checked)
}

// act runs an action named name whose effect is do.
func (f *fakeHost) act(ctx context.Context, name string, do func()) error {
	f.started <- name
	f.mu.Lock()
	hold, effect := f.hold[name], f.effect
	if n := f.failures[name]; n > 0 {
		f.failures[name] = n - 1
		msg := f.failMsg
		f.mu.Unlock()
		return errors.New(msg)
	}
	f.mu.Unlock()
	if hold {
		if effect {
			f.mu.Lock()
			do()
			f.applied = append(f.applied, name)
			f.mu.Unlock()
		}
		<-ctx.Done()
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	do()
	f.applied = append(f.applied, name)
	return nil
}

type fakeDistroP struct{ f *fakeHost }

func (p fakeDistroP) Name() string { return "fake" }

func (p fakeDistroP) Check(_ context.Context, a engine.DistroAction) (bool, error) {
	f := p.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = append(f.checked, string(a.Op)+" "+a.Pack())
	d := f.distro
	switch a.Op {
	case engine.DistroInstall:
		return d != nil && d.pack == a.Pack() && d.hash == a.Layer.Hash && d.role == a.Role, nil
	case engine.DistroUpgrade:
		return d != nil && d.hash == a.Layer.Hash, nil
	default:
		return d == nil, nil
	}
}

func (p fakeDistroP) Apply(ctx context.Context, a engine.DistroAction) error {
	f := p.f
	return f.act(ctx, string(a.Op)+" "+a.Pack(), func() {
		if a.Op == engine.DistroRemove {
			f.distro = nil
			f.layers = map[string]string{}
			return
		}
		f.distro = &fakeDistro{pack: a.Pack(), hash: a.Layer.Hash, version: a.Layer.Version, role: a.Role}
	})
}

func (p fakeDistroP) Status(context.Context) (engine.NodeState, error) {
	f := p.f
	f.mu.Lock()
	defer f.mu.Unlock()
	st := engine.NodeState{Address: "192.0.2.10"}
	if f.distro == nil {
		return st, nil
	}
	st.Joined = true
	st.ControlPlaneUp = f.distro.role != v1.RoleWorker
	st.NodeReady = !f.notReady
	st.KubernetesVersion, _, _ = strings.Cut(f.distro.version, "+")
	return st, nil
}

type fakeLayers struct{ f *fakeHost }

func name(a engine.LayerAction) string {
	if a.Layer.Layer == v1.LayerOS {
		return string(a.Op) + " os " + a.Key
	}
	return string(a.Op) + " layer " + a.Key
}

func (p fakeLayers) Check(_ context.Context, a engine.LayerAction) (bool, error) {
	f := p.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = append(f.checked, name(a))
	if a.Layer.Layer == v1.LayerOS {
		return f.os == a.Layer.Hash, nil
	}
	h, ok := f.layers[a.Key]
	if a.Op == engine.LayerRemove {
		return !ok, nil
	}
	return ok && h == a.Layer.Hash, nil
}

func (p fakeLayers) Apply(ctx context.Context, a engine.LayerAction) error {
	f := p.f
	return f.act(ctx, name(a), func() {
		if a.Layer.Layer == v1.LayerOS {
			f.os = a.Layer.Hash
		} else {
			f.layers[a.Key] = a.Layer.Hash
		}
	})
}

func (p fakeLayers) Remove(ctx context.Context, a engine.LayerAction) error {
	f := p.f
	return f.act(ctx, name(a), func() { delete(f.layers, a.Key) })
}

// reports collects an engine's reports.
type reports struct {
	mu   sync.Mutex
	all  []v1.NodeReportSpec
	wake chan struct{}
}

func newReports() *reports { return &reports{wake: make(chan struct{}, 1)} }

func (r *reports) add(rep v1.NodeReportSpec) {
	r.mu.Lock()
	r.all = append(r.all, rep)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reports) list() []v1.NodeReportSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// wait returns the first report (from the start) that cond accepts.
func (r *reports) wait(t *testing.T, what string, cond func(v1.NodeReportSpec) bool) v1.NodeReportSpec {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	for {
		all := r.list()
		for ; seen < len(all); seen++ {
			if cond(all[seen]) {
				return all[seen]
			}
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for a report: %s; reports:\n%s", what, dumpReports(all))
		}
	}
}

func dumpReports(all []v1.NodeReportSpec) string {
	var b strings.Builder
	for _, r := range all {
		fmt.Fprintf(&b, "  %s msg=%q ready=%v removed=%v spec=%s\n", r.State, r.Message, r.NodeReady, r.Removed, r.SpecHash)
		for _, s := range r.Steps {
			fmt.Fprintf(&b, "    %-28s %-8s attempts=%d %s\n", s.Name, s.State, s.Attempts, s.Message)
		}
	}
	return b.String()
}

// logRecorder keeps log records with their attributes flattened.
type logRecorder struct {
	mu    *sync.Mutex
	recs  *[]logRec
	attrs []slog.Attr
}

type logRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: &sync.Mutex{}, recs: &[]logRec{}}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{mu: l.mu, recs: l.recs, attrs: append(slices.Clone(l.attrs), as...)}
}

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range l.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	*l.recs = append(*l.recs, rec)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) find(msg string) []logRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logRec
	for _, r := range *l.recs {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}
