package simulated

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/inventory"
)

// Host paths (under the root) of the simulation.
const (
	DirState        = "/var/lib/outpost-sim"
	PathActions     = DirState + "/actions.log"
	PathDistro      = DirState + "/distro.json"
	PathOS          = DirState + "/os.json"
	PathLayers      = DirState + "/layers.json"
	PathFaultCounts = DirState + "/faults-count.json"
	PathFaults      = "/etc/outpost-sim/faults.yaml"
)

// DefaultStepDelay is how long a simulated action takes.
const DefaultStepDelay = 300 * time.Millisecond

// Fault actions.
const (
	ActionInstall = "install"
	ActionUpgrade = "upgrade"
	ActionApply   = "apply"
	ActionRemove  = "remove"
)

// Config says where a simulated host lives.
type Config struct {
	Root hostos.Root
	// StepDelay is how long each action takes unless faults.yaml says
	// otherwise; default DefaultStepDelay, negative for none.
	StepDelay time.Duration
	Logger    *slog.Logger
}

// Host is one simulated host: its distro and its layers share the state
// files under Root.
type Host struct {
	cfg Config
	log *slog.Logger
	// mu serialises read-modify-write of the state files; actions wait
	// outside it so Status stays quick.
	mu sync.Mutex
}

// New returns the simulated host at cfg.Root.
func New(cfg Config) *Host {
	if cfg.StepDelay == 0 {
		cfg.StepDelay = DefaultStepDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Host{cfg: cfg, log: cfg.Logger}
}

// Distro is the simulated distro provider.
func (h *Host) Distro() *Distro { return &Distro{h: h} }

// Layers is the simulated layer applier (the OS layer too).
func (h *Host) Layers() *Layers { return &Layers{h: h} }

// Distros is a registry that simulates every distro pack.
func (h *Host) Distros() engine.Registry[engine.Distro] {
	return engine.WithFallback[engine.Distro](h.Distro())
}

// LayerAppliers is a registry that simulates every kind of layer.
func (h *Host) LayerAppliers() engine.Registry[engine.LayerApplier] {
	return engine.WithFallback[engine.LayerApplier](h.Layers())
}

// Actions returns the lines of actions.log: one per action done.
func (h *Host) Actions() ([]string, error) {
	data, err := h.cfg.Root.ReadFile(PathActions)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("simulated actions log: %w", err)
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n"), nil
}

// distroFile is distro.json: the installed distro.
type distroFile struct {
	Pack              string `json:"pack"`
	Version           string `json:"version"`
	Hash              string `json:"hash"`
	Role              string `json:"role"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Upgrading is set half-way through an upgrade: an agent killed then
	// leaves a node that is not Ready until the upgrade is done again.
	Upgrading bool `json:"upgrading,omitempty"`
}

// layerFile is one applied layer, in os.json or layers.json.
type layerFile struct {
	Name    string `json:"name"`
	Type    string `json:"type,omitempty"`
	Pack    string `json:"pack,omitempty"`
	Version string `json:"version,omitempty"`
	Hash    string `json:"hash"`
}

// Faults is faults.yaml.
type Faults struct {
	StepDelay string  `yaml:"stepDelay"`
	NotReady  bool    `yaml:"notReady"`
	Fail      []Fault `yaml:"fail"`
}

// Fault makes matching actions fail.
type Fault struct {
	Action  string `yaml:"action"`
	Target  string `yaml:"target"`
	Times   int    `yaml:"times"`
	Message string `yaml:"message"`
}

func (f Fault) key() string { return f.Action + "/" + f.Target }

// faults reads faults.yaml; none is no faults.
func (h *Host) faults() (Faults, time.Duration, error) {
	delay := max(h.cfg.StepDelay, 0)
	var f Faults
	data, err := h.cfg.Root.ReadFile(PathFaults)
	if errors.Is(err, fs.ErrNotExist) {
		return f, delay, nil
	}
	if err != nil {
		return f, delay, fmt.Errorf("simulated faults file %s: %w", PathFaults, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return f, delay, fmt.Errorf("simulated faults file %s: %w", PathFaults, err)
	}
	if f.StepDelay != "" {
		d, err := time.ParseDuration(f.StepDelay)
		if err != nil || d < 0 {
			return f, delay, fmt.Errorf("simulated faults file %s: stepDelay %q is not a duration", PathFaults, f.StepDelay)
		}
		delay = d
	}
	for i, fl := range f.Fail {
		switch fl.Action {
		case ActionInstall, ActionUpgrade, ActionApply, ActionRemove:
		default:
			return f, delay, fmt.Errorf("simulated faults file %s: fail[%d].action %q: use install, upgrade, apply or remove", PathFaults, i, fl.Action)
		}
	}
	return f, delay, nil
}

// begin starts an action: it reads the faults, takes part of the step's
// time (frac of it), and fails if a fault says so.
func (h *Host) begin(ctx context.Context, action string, targets []string, frac float64) (Faults, time.Duration, error) {
	f, delay, err := h.faults()
	if err != nil {
		return f, delay, err
	}
	if !sleep(ctx, time.Duration(float64(delay)*frac)) {
		return f, delay, ctx.Err()
	}
	return f, delay, h.inject(f, action, targets)
}

// inject fails the action if a fault matches and has failures left; it
// counts the failure on disk first, so a restart does not reset it.
func (h *Host) inject(f Faults, action string, targets []string) error {
	for _, fl := range f.Fail {
		if fl.Action != action || (fl.Target != "" && !contains(targets, fl.Target)) {
			continue
		}
		h.mu.Lock()
		counts := map[string]int{}
		if err := h.readJSON(PathFaultCounts, &counts); err != nil {
			h.mu.Unlock()
			return err
		}
		n := counts[fl.key()]
		if fl.Times > 0 && n >= fl.Times {
			h.mu.Unlock()
			continue
		}
		counts[fl.key()] = n + 1
		err := h.writeJSON(PathFaultCounts, counts)
		h.mu.Unlock()
		if err != nil {
			return err
		}
		msg := fl.Message
		if msg == "" {
			msg = action + " failed"
		}
		h.log.Warn("simulated fault injected", "action", action, "target", targets[0], "failure", n+1, "times", fl.Times, "message", msg)
		return fmt.Errorf("simulated fault: %s", msg)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// record appends one line to actions.log. It runs after the state file is
// written: an agent killed in between leaves the action done but not
// logged, never logged twice.
func (h *Host) record(line string) error {
	p := h.cfg.Root.Path(PathActions)
	if err := os.MkdirAll(h.cfg.Root.Path(DirState), 0o755); err != nil {
		return fmt.Errorf("simulated actions log: %w", err)
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("simulated actions log: %w", err)
	}
	_, err = f.WriteString(line + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("simulated actions log: %w", err)
	}
	h.log.Info("simulated action", "action", line)
	return nil
}

// readJSON reads a state file into v; a missing file leaves v as it is.
func (h *Host) readJSON(p string, v any) error {
	data, err := h.cfg.Root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("simulated state %s: %w", p, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("simulated state %s: %w", p, err)
	}
	return nil
}

func (h *Host) writeJSON(p string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("simulated state %s: %w", p, err)
	}
	if err := h.cfg.Root.WriteFileAtomic(p, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("simulated state %s: %w", p, err)
	}
	return nil
}

func (h *Host) remove(p string) error {
	if err := os.Remove(h.cfg.Root.Path(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("simulated state %s: %w", p, err)
	}
	return nil
}

func (h *Host) distro() (*distroFile, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var d *distroFile
	if err := h.readJSON(PathDistro, &d); err != nil {
		return nil, err
	}
	return d, nil
}

// address is the host's first address from the simulated root, as the
// inventory reads it, or loopback.
func (h *Host) address() string {
	data, err := h.cfg.Root.ReadFile(inventory.PathAddresses)
	if err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
				addr, _, _ := strings.Cut(f[1], "/")
				return addr
			}
		}
	}
	return "127.0.0.1"
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// kubernetesVersion is the layer's, or its version without the distro's
// build suffix (1.32.3 for 1.32.3+k3s1).
func kubernetesVersion(l v1.RenderedLayer) string {
	if l.KubernetesVersion != "" {
		return l.KubernetesVersion
	}
	v, _, _ := strings.Cut(strings.TrimPrefix(l.Version, "v"), "+")
	return v
}
