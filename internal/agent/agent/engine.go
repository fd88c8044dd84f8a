package agent

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/simulated"
)

// newEngine makes the cluster engine with the configured providers, or the
// simulated ones on a simulated host. Its state lives next to the spec
// cache, so the two always describe the same host.
func (a *Agent) newEngine() error {
	distros, layers := a.cfg.Distros, a.cfg.Layers
	if !a.cfg.Simulated && distros.IsZero() && layers.IsZero() {
		var err error
		if distros, layers, err = a.realProviders(); err != nil {
			return fmt.Errorf("providers: %w", err)
		}
	}
	if a.cfg.Simulated && (distros.IsZero() || layers.IsZero()) {
		sim := simulated.New(simulated.Config{Root: a.cfg.Root, Logger: a.log})
		if distros.IsZero() {
			distros = sim.Distros()
		}
		if layers.IsZero() {
			layers = sim.LayerAppliers()
		}
	}
	a.reports = newReportBox()
	e, err := engine.New(engine.Config{
		StateDir: a.cfg.StateDir,
		Distros:  distros,
		Layers:   layers,
		Logger:   a.log,
		Report:   a.reports.put,
		RetryMin: a.cfg.RetryMin,
		RetryMax: a.cfg.RetryMax,
	})
	if err != nil {
		return err
	}
	a.engine = e
	return nil
}

// startEngine runs the engine until ctx ends or the returned stop is
// called; stop waits for it, so no step outlives Run.
func (a *Agent) startEngine(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.engine.Run(ctx); err != nil {
			a.log.Error("engine stopped", "error", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// onSpec hands a spec (new from the hub, or the cached one at start) to the
// engine and to the OnSpec hook.
func (a *Agent) onSpec(spec v1.HostSpec) {
	a.engine.Apply(spec)
	if a.cfg.OnSpec != nil {
		a.cfg.OnSpec(spec)
	}
}

// reportBox holds the engine's latest report until the hub has it. Only the
// latest is kept: an older one says nothing the hub still needs.
type reportBox struct {
	mu     sync.Mutex
	latest *v1.NodeReportSpec
	seq    uint64 // of latest
	sent   uint64 // seq the hub acknowledged
	wake   chan struct{}
}

func newReportBox() *reportBox { return &reportBox{wake: make(chan struct{}, 1)} }

func (b *reportBox) put(r v1.NodeReportSpec) {
	b.mu.Lock()
	b.latest = &r
	b.seq++
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// next returns the latest report if the hub does not have it yet.
func (b *reportBox) next() (v1.NodeReportSpec, uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.latest == nil || b.seq == b.sent {
		return v1.NodeReportSpec{}, 0, false
	}
	return *b.latest, b.seq, true
}

func (b *reportBox) done(seq uint64) {
	b.mu.Lock()
	b.sent = seq
	b.mu.Unlock()
}

// resend makes the latest report due again: a hub that just (re)enrolled
// the host may not have it.
func (b *reportBox) resend() {
	b.mu.Lock()
	b.sent = 0
	b.mu.Unlock()
}

// statusLoop sends the engine's reports to the hub, each once, the latest
// first; while the hub is out of reach it retries with back-off, sending
// whatever is latest by then.
func (a *Agent) statusLoop(ctx context.Context) error {
	a.reports.resend()
	retry := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	for {
		rep, seq, ok := a.reports.next()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-a.reports.wake:
			}
			continue
		}
		_, gen := a.current()
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := a.call(cctx, http.MethodPost, v1.AgentPathStatus, nil, rep, nil, nil)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case a.authFailed(err, gen):
			return fmt.Errorf("status report: %w: %w", errReenroll, err)
		case isRefusal(err):
			// The hub will not take this one however often it is sent;
			// the next report may fare better.
			a.log.Warn("hub refused status report", "error", err, "state", rep.State, "spec", rep.SpecHash)
			a.reports.done(seq)
		case err != nil:
			pause := retry.Next()
			a.log.Warn("status report failed", "error", err, "retryIn", pause.Round(time.Millisecond))
			a.setError(err)
			if !sleep(ctx, pause) {
				return nil
			}
		default:
			retry.Reset()
			a.reports.done(seq)
			a.log.Debug("status reported", "state", rep.State, "spec", rep.SpecHash)
		}
	}
}
