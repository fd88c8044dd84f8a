package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// Messages of a node that waits for its distro after the plan.
const (
	MsgWaitingForReady = "waiting for the node to become Ready"
	MsgNotReady        = "node is not Ready"
)

// Config says how an engine works. StateDir is required.
type Config struct {
	// StateDir holds engine.json (a real path, next to the agent's spec
	// cache).
	StateDir string
	// Distros are keyed by distro pack name, Layers by LayerKind.
	Distros Registry[Distro]
	Layers  Registry[LayerApplier]
	Logger  *slog.Logger
	// Report receives the node's report whenever it changes. It is called
	// from the engine's goroutine and must not block.
	Report func(v1.NodeReportSpec)
	// RetryMin and RetryMax bound the back-off between attempts at a
	// failing step; default 2s and 2m.
	RetryMin, RetryMax time.Duration
	// FailAfter is how many failed attempts at a step make the node Failed
	// (it keeps retrying at RetryMax); default 5.
	FailAfter int
	// PollInterval is how often the node's status is read while waiting
	// for it to join or become Ready; default 2s. StatusInterval is how
	// often once it is Ready; default 30s.
	PollInterval, StatusInterval time.Duration
	// WaitTimeout bounds waiting for the node to join or become Ready
	// before that counts as a failure; default 15m.
	WaitTimeout time.Duration
	Clock       Clock
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 2 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(2*time.Minute, c.RetryMin)
	}
	if c.FailAfter <= 0 {
		c.FailAfter = 5
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = 30 * time.Second
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 15 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
}

// Engine brings the host to its spec's cluster part. Make it with New, Run
// it, and hand it every spec with Apply.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	want   *v1.HostSpec
	seq    uint64             // bumped by Apply for a spec that needs work
	cancel context.CancelFunc // of the plan running now
	last   *v1.NodeReportSpec // the last report sent
	wake   chan struct{}

	// Only the Run goroutine touches these.
	state State
	rep   v1.NodeReportSpec
}

// New loads engine.json from cfg.StateDir. A damaged state file is logged
// and ignored: the next plan then starts from scratch and its checks skip
// what is already in place.
func New(cfg Config) (*Engine, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("engine config: no state directory")
	}
	cfg.setDefaults()
	e := &Engine{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
	st, err := LoadState(cfg.StateDir)
	if err != nil {
		e.log.Warn("ignoring engine state", "error", err)
	}
	e.state = st
	return e, nil
}

// Latest returns the last report sent, if any.
func (e *Engine) Latest() (v1.NodeReportSpec, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		return v1.NodeReportSpec{}, false
	}
	return cloneReport(*e.last), true
}

// Apply makes spec the one to work towards. It returns at once. A spec that
// needs other work than the one running (another hash, or the upgrade turn
// granted or taken back) cancels the running plan; a re-sent one does not.
func (e *Engine) Apply(spec v1.HostSpec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.want != nil && sameWork(*e.want, spec) {
		e.want = &spec
		return
	}
	e.want = &spec
	e.seq++
	if e.cancel != nil {
		e.cancel()
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func sameWork(a, b v1.HostSpec) bool {
	granted := func(s v1.HostSpec) bool { return s.Cluster != nil && s.Cluster.UpgradeGranted }
	return a.Hash != "" && a.Hash == b.Hash && granted(a) == granted(b)
}

// Run works on the specs given to Apply until ctx ends; then it returns nil.
// After a plan it keeps watching the node's status until the next spec.
func (e *Engine) Run(ctx context.Context) error {
	var ran uint64
	for {
		e.mu.Lock()
		if e.want == nil || e.seq == ran {
			e.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil
			case <-e.wake:
			}
			continue
		}
		spec := *e.want
		ran = e.seq
		pctx, cancel := context.WithCancel(ctx)
		e.cancel = cancel
		e.mu.Unlock()

		e.execute(pctx, spec)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// errGated ends a plan at a step the hub has not allowed yet.
var errGated = errors.New("step waits for the hub")

func (e *Engine) execute(ctx context.Context, spec v1.HostSpec) {
	c := spec.Cluster
	if c == nil {
		if d := e.state.Distro; d != nil {
			e.log.Warn("spec has no cluster part but a distro is still installed; waiting for a spec that removes it", "distro", PackName(d.Layer))
		}
		return
	}
	steps := Plan(&e.state, &spec)
	if r := e.state.Run; r == nil || r.SpecHash != spec.Hash {
		e.state.Run = &RunState{SpecHash: spec.Hash}
	}
	e.rep = v1.NodeReportSpec{SpecHash: spec.Hash, State: busyState(c)}
	planned := map[string]bool{}
	for _, s := range steps {
		planned[s.Name] = true
	}
	for _, d := range e.state.Run.Done {
		if !planned[d.Name] {
			e.rep.Steps = append(e.rep.Steps, d)
		}
	}
	off := len(e.rep.Steps)
	e.addSteps(steps)
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	e.log.Info("plan", "spec", spec.Hash, "cluster", c.Name, "role", c.Role, "remove", c.Remove, "steps", names)
	if err := e.resolve(steps); err != nil {
		e.rep.State, e.rep.Message = v1.NodeFailed, err.Error()
		e.log.Error("plan cannot run", "spec", spec.Hash, "error", err)
		e.emit()
		return
	}
	if !c.Remove {
		e.refreshStatus(ctx)
	}
	e.emit()
	for i := 0; i < len(steps); i++ {
		replan, err := e.runStep(ctx, &spec, steps[i], off+i)
		if err != nil {
			return
		}
		if replan {
			// A gated step turned out done already (the agent stopped
			// after doing it, before saving): plan what follows it now.
			rest := Plan(&e.state, &spec)
			if err := e.resolve(rest); err != nil {
				e.rep.State, e.rep.Message = v1.NodeFailed, err.Error()
				e.emit()
				return
			}
			steps = append(steps[:i+1], rest...)
			e.rep.Steps = e.rep.Steps[:off+i+1]
			e.addSteps(rest)
			e.emit()
		}
	}
	e.finish(ctx, &spec)
}

func busyState(c *v1.HostCluster) string {
	if c.Remove {
		return v1.NodeRemoving
	}
	return v1.NodeApplying
}

func (e *Engine) addSteps(steps []Step) {
	for _, s := range steps {
		e.rep.Steps = append(e.rep.Steps, v1.StepStatus{Name: s.Name, State: v1.StepPending})
	}
}

// resolve makes sure every step has a provider before any runs, so that a
// host missing one fails at once instead of half-way. Distros come first:
// without one nothing else matters.
func (e *Engine) resolve(steps []Step) error {
	for _, s := range steps {
		if s.Distro != nil {
			if _, err := e.distro(s.Distro.Pack()); err != nil {
				return err
			}
		}
	}
	for _, s := range steps {
		if s.Layer != nil {
			if _, err := e.applier(s.Layer.Layer); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *Engine) distro(pack string) (Distro, error) {
	d, ok := e.cfg.Distros.Lookup(pack)
	if !ok {
		return nil, Permanent(fmt.Errorf("no provider for distro %q", pack))
	}
	return d, nil
}

func (e *Engine) applier(l v1.RenderedLayer) (LayerApplier, error) {
	kind := LayerKind(l)
	a, ok := e.cfg.Layers.Lookup(kind)
	if !ok {
		return nil, Permanent(fmt.Errorf("no provider for %s layer %q", kind, l.Name))
	}
	return a, nil
}

// runStep runs one step to the end, retrying as long as it takes. It
// returns an error only when the plan must stop (ctx ended, a gate, a
// permanent failure); everything is reported by then.
func (e *Engine) runStep(ctx context.Context, spec *v1.HostSpec, step Step, idx int) (replan bool, err error) {
	log := e.log.With("step", step.Name)
	rs := &e.rep.Steps[idx]
	busy := busyState(spec.Cluster)
	if step.Gate != "" {
		if done, err := e.check(ctx, step); err == nil && done {
			now := e.now()
			*rs = v1.StepStatus{Name: step.Name, State: v1.StepDone, Attempts: 1, Started: &now, Finished: &now}
			if err := e.commit(step, *rs); err == nil {
				log.Info("step done", "attempts", 1, "alreadyDone", true)
				return true, nil
			}
		}
		rs.State, rs.Message = v1.StepPending, step.Gate
		e.rep.State, e.rep.Message = v1.NodeWaiting, step.Gate
		e.refreshStatus(ctx)
		log.Info("step waiting", "reason", step.Gate)
		e.emit()
		return false, errGated
	}
	started := e.now()
	rs.State, rs.Started, rs.Message = v1.StepRunning, &started, ""
	e.rep.State, e.rep.Message = busy, ""
	e.emit()
	retry := newBackoff(e.cfg.RetryMin, e.cfg.RetryMax)
	for attempt := 1; ; attempt++ {
		applied, err := e.try(ctx, step, rs, attempt)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		rs.Attempts = attempt
		if err == nil {
			e.rep.State, e.rep.Message = busy, ""
			log.Info("step done", "attempts", attempt, "alreadyDone", !applied)
			if step.Kind == StepWait {
				// Joiners wait for the init node's ControlPlaneUp: say it
				// now rather than after the layers.
				e.refreshStatus(ctx)
			}
			e.emit()
			return false, nil
		}
		rs.Message, e.rep.Message = err.Error(), err.Error()
		failed := IsPermanent(err) || attempt >= e.cfg.FailAfter
		if failed {
			rs.State, e.rep.State = v1.StepFailed, v1.NodeFailed
		} else {
			rs.State, e.rep.State = v1.StepRunning, busy
		}
		if IsPermanent(err) {
			log.Error("step failed", "attempt", attempt, "error", err, "permanent", true)
			e.emit()
			return false, err
		}
		wait := retry.Next()
		level := slog.LevelWarn
		if failed {
			level = slog.LevelError
		}
		log.Log(ctx, level, "step failed", "attempt", attempt, "error", err, "retryIn", wait.Round(time.Millisecond))
		e.emit()
		if !e.sleep(ctx, wait) {
			return false, ctx.Err()
		}
	}
}

// try is one attempt at a step: skip it if Check says it is done, else do
// it, then record it on disk before the plan moves on.
func (e *Engine) try(ctx context.Context, step Step, rs *v1.StepStatus, attempt int) (applied bool, err error) {
	done, err := e.check(ctx, step)
	if err != nil {
		return false, fmt.Errorf("%s: check: %w", step.what(), err)
	}
	if !done {
		if err := e.do(ctx, step); err != nil {
			return false, fmt.Errorf("%s: %w", step.what(), err)
		}
		applied = true
	}
	finished := e.now()
	st := v1.StepStatus{Name: step.Name, State: v1.StepDone, Attempts: attempt, Started: rs.Started, Finished: &finished}
	if err := e.commit(step, st); err != nil {
		return applied, err
	}
	*rs = st
	return applied, nil
}

func (e *Engine) check(ctx context.Context, step Step) (bool, error) {
	switch step.Kind {
	case StepLayer:
		a, err := e.applier(step.Layer.Layer)
		if err != nil {
			return false, err
		}
		return a.Check(ctx, *step.Layer)
	case StepDistro:
		d, err := e.distro(step.Distro.Pack())
		if err != nil {
			return false, err
		}
		return d.Check(ctx, *step.Distro)
	case StepWait:
		d, err := e.distro(step.Distro.Pack())
		if err != nil {
			return false, err
		}
		st, err := d.Status(ctx)
		return err == nil && joined(st, step.Distro.Role), nil
	}
	return false, Permanent(fmt.Errorf("unknown step kind %q", step.Kind))
}

// joined is what a node must be before layers go on: in its cluster, and
// serving the API if it is a control-plane node.
func joined(st NodeState, role string) bool {
	return st.Joined && (role == v1.RoleWorker || st.ControlPlaneUp)
}

func (e *Engine) do(ctx context.Context, step Step) error {
	switch step.Kind {
	case StepLayer:
		a, err := e.applier(step.Layer.Layer)
		if err != nil {
			return err
		}
		if step.Layer.Op == LayerRemove {
			return a.Remove(ctx, *step.Layer)
		}
		return a.Apply(ctx, *step.Layer)
	case StepDistro:
		d, err := e.distro(step.Distro.Pack())
		if err != nil {
			return err
		}
		return d.Apply(ctx, *step.Distro)
	case StepWait:
		return e.waitJoined(ctx, step.Distro)
	}
	return Permanent(fmt.Errorf("unknown step kind %q", step.Kind))
}

func (e *Engine) waitJoined(ctx context.Context, a *DistroAction) error {
	d, err := e.distro(a.Pack())
	if err != nil {
		return err
	}
	deadline := e.now().Add(e.cfg.WaitTimeout)
	for {
		st, err := d.Status(ctx)
		if err == nil && joined(st, a.Role) {
			return nil
		}
		if !e.now().Before(deadline) {
			if err != nil {
				return fmt.Errorf("node has not joined cluster %q within %s: %w", a.Cluster, e.cfg.WaitTimeout, err)
			}
			return fmt.Errorf("node has not joined cluster %q within %s", a.Cluster, e.cfg.WaitTimeout)
		}
		if !e.sleep(ctx, e.cfg.PollInterval) {
			return ctx.Err()
		}
	}
}

// commit records a finished step in the state and saves it. It is safe to
// repeat: a retry after a failed save commits the same step again.
func (e *Engine) commit(step Step, st v1.StepStatus) error {
	s := &e.state
	switch step.Kind {
	case StepLayer:
		a := step.Layer
		l := a.Layer
		switch {
		case l.Layer == v1.LayerOS && a.Op == LayerApply:
			s.OS = &l
		case l.Layer == v1.LayerOS:
			s.OS = nil
		case a.Op == LayerApply:
			s.setLayer(a.Key, l)
		default:
			s.dropLayer(a.Key)
		}
	case StepDistro:
		a := step.Distro
		if a.Op == DistroRemove {
			// Whatever the layers put in the cluster went with the node.
			s.Distro, s.Layers = nil, nil
		} else {
			s.Distro = &DistroState{Layer: a.Layer, Role: a.Role, Cluster: a.Cluster}
		}
	case StepWait:
		if s.Distro != nil {
			s.Distro.Joined = true
		}
	}
	if s.Run != nil {
		s.Run.Done = slices.DeleteFunc(s.Run.Done, func(d v1.StepStatus) bool { return d.Name == st.Name })
		s.Run.Done = append(s.Run.Done, st)
	}
	return s.save(e.cfg.StateDir)
}

// finish records the spec as applied and, unless the host left its
// cluster, watches the node until the next spec.
func (e *Engine) finish(ctx context.Context, spec *v1.HostSpec) {
	c := spec.Cluster
	e.state.SpecHash = spec.Hash
	if !c.Remove {
		order := map[string]int{}
		for i, k := range LayerKeys(c.Layers) {
			order[k] = i
		}
		slices.SortStableFunc(e.state.Layers, func(a, b AppliedLayer) int { return order[a.Key] - order[b.Key] })
	}
	if err := e.state.save(e.cfg.StateDir); err != nil {
		// Not fatal: after a restart the plan is empty or its checks find
		// every step done.
		e.log.Error("engine state not saved", "error", err)
	}
	if c.Remove {
		e.rep.State, e.rep.Message, e.rep.Removed = v1.NodeRemoved, "", true
		e.rep.ControlPlaneUp, e.rep.NodeReady, e.rep.KubernetesVersion = false, false, ""
		e.log.Info("removed from cluster", "cluster", c.Name, "spec", spec.Hash)
		e.emit()
		return
	}
	e.log.Info("plan done", "cluster", c.Name, "spec", spec.Hash)
	e.watch(ctx)
}

// watch reports the node Ready once its distro says so, and keeps checking
// until ctx ends: a node that stops being Ready is reported Failed.
func (e *Engine) watch(ctx context.Context) {
	if e.state.Distro == nil {
		// A spec without a distro layer: nothing to ask.
		e.rep.State, e.rep.Message = v1.NodeReady, ""
		e.emit()
		return
	}
	deadline := e.now().Add(e.cfg.WaitTimeout)
	wasReady := false
	prev := ""
	var lastDrift time.Time
	for {
		st, err := e.refreshStatus(ctx)
		if ctx.Err() != nil {
			return
		}
		msg := MsgNotReady
		if err != nil {
			msg = fmt.Sprintf("%s: %v", msg, err)
		}
		switch {
		case err == nil && st.NodeReady:
			e.rep.State, e.rep.Message = v1.NodeReady, ""
			wasReady = true
		case !wasReady && e.now().Before(deadline):
			e.rep.State, e.rep.Message = v1.NodeApplying, MsgWaitingForReady
		default:
			e.rep.State, e.rep.Message = v1.NodeFailed, msg
		}
		if e.rep.State != prev {
			switch e.rep.State {
			case v1.NodeReady:
				e.log.Info("node ready", "kubernetesVersion", st.KubernetesVersion, "address", st.Address)
			case v1.NodeFailed:
				e.log.Warn("node not ready", "error", err)
			}
			prev = e.rep.State
		}
		if e.rep.State == v1.NodeReady {
			// Health at once; the drift pass once per StatusInterval, not
			// right after a plan that has just checked every step.
			drift := !lastDrift.IsZero() && e.now().Sub(lastDrift) >= e.cfg.StatusInterval
			if lastDrift.IsZero() || drift {
				lastDrift = e.now()
			}
			e.keepLayers(ctx, drift)
		}
		e.emit()
		interval := e.cfg.PollInterval
		if e.rep.State != v1.NodeApplying {
			interval = e.cfg.StatusInterval
		}
		if !e.sleep(ctx, interval) {
			return
		}
	}
}

// HealthReporter is implemented by layer appliers that can say how their
// layer is doing in the cluster (applied, progressing, failed).
type HealthReporter interface {
	Health(ctx context.Context, a LayerAction) (state, message string)
}

// keepLayers records each applied layer's health for the report and, with
// drift, first checks every layer again and re-applies one that someone
// edited or deleted.
func (e *Engine) keepLayers(ctx context.Context, drift bool) {
	if e.state.Distro == nil {
		return
	}
	distro, role := PackName(e.state.Distro.Layer), e.state.Distro.Role
	var health []v1.LayerHealth
	for _, al := range e.state.Layers {
		a := LayerAction{Op: LayerApply, Layer: al.Layer, Key: al.Key, Distro: distro, Role: role}
		ap, err := e.applier(al.Layer)
		if err != nil {
			continue
		}
		if drift {
			done, err := ap.Check(ctx, a)
			if err == nil && !done {
				if err = ap.Apply(ctx, a); err == nil {
					e.log.Info("drift corrected", "layer", al.Key)
				}
			}
			if err != nil {
				e.log.Warn("drift pass", "layer", al.Key, "error", err)
			}
		}
		if ctx.Err() != nil {
			return
		}
		h := v1.LayerHealth{Name: al.Key, State: v1.LayerApplied}
		if hr, ok := ap.(HealthReporter); ok {
			h.State, h.Message = hr.Health(ctx, a)
		}
		if h.State != "" { // "": the layer is managed by another node
			health = append(health, h)
		}
	}
	e.rep.Layers = health
}

// refreshStatus copies the distro's view of the node into the report.
func (e *Engine) refreshStatus(ctx context.Context) (NodeState, error) {
	d := e.state.Distro
	if d == nil {
		e.rep.ControlPlaneUp, e.rep.NodeReady = false, false
		return NodeState{}, nil
	}
	p, err := e.distro(PackName(d.Layer))
	if err != nil {
		return NodeState{}, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		e.log.Debug("node status", "error", err)
		e.rep.ControlPlaneUp, e.rep.NodeReady = false, false
		return st, err
	}
	e.rep.ControlPlaneUp, e.rep.NodeReady = st.ControlPlaneUp, st.NodeReady
	e.rep.KubernetesVersion = st.KubernetesVersion
	if st.Address != "" {
		e.rep.Address = st.Address
	}
	return st, nil
}

// emit sends the report if it differs from the last one sent.
func (e *Engine) emit() {
	r := cloneReport(e.rep)
	e.mu.Lock()
	if e.last != nil && reflect.DeepEqual(*e.last, r) {
		e.mu.Unlock()
		return
	}
	e.last = &r
	e.mu.Unlock()
	if e.cfg.Report != nil {
		e.cfg.Report(cloneReport(r))
	}
}

func cloneReport(r v1.NodeReportSpec) v1.NodeReportSpec {
	r.Steps = slices.Clone(r.Steps)
	r.Layers = slices.Clone(r.Layers)
	return r
}

func (e *Engine) now() time.Time { return e.cfg.Clock.Now().UTC() }

func (e *Engine) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-e.cfg.Clock.After(d):
		return true
	}
}

// backoff doubles from min to max, each wait drawn from the upper half of
// its range so that hosts that failed together do not retry together.
type backoff struct {
	min, max time.Duration
	n        int
}

func newBackoff(lo, hi time.Duration) *backoff { return &backoff{min: lo, max: hi} }

func (b *backoff) Next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max || d <= 0 {
		d = b.max
	}
	if b.n < 62 {
		b.n++
	}
	return d/2 + time.Duration(rand.Float64()*float64(d/2))
}
