package distro

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// StateDir holds one state file per provider, on the host.
const StateDir = "/var/lib/outpost-agent/providers"

// Phases of a State.
const (
	PhaseInstalling = "installing"
	PhaseUpgrading  = "upgrading"
	PhaseInstalled  = "installed"
)

// State is what a provider has put on the host: enough for Check, Status
// and a remove after the agent lost its engine state.
type State struct {
	Pack    string `json:"pack"`
	Version string `json:"version"`
	// Hash is the distro layer's hash once Phase is installed; during an
	// upgrade, the one being replaced.
	Hash              string `json:"hash"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	Role              string `json:"role"`
	Cluster           string `json:"cluster"`
	Node              string `json:"node"`
	Phase             string `json:"phase"`
	// Target is the layer hash an unfinished install or upgrade goes to.
	Target string `json:"target,omitempty"`
	// Files are host paths the provider extracted from archives, which
	// remove deletes one by one (they share directories such as
	// /usr/local/bin with other software).
	Files []string `json:"files,omitempty"`
	// Artifacts were fetched into the local cache; remove drops them.
	Artifacts []v1.Artifact `json:"artifacts,omitempty"`
}

func statePath(pack string) string { return path.Join(StateDir, pack+".json") }

// LoadState reads the provider's state; nil when it has installed nothing.
func (e *Env) LoadState(pack string) (*State, error) {
	data, err := e.Root.ReadFile(statePath(pack))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s provider state: %w", pack, err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s provider state %s: %w", pack, statePath(pack), err)
	}
	return &s, nil
}

// SaveState writes the provider's state atomically; 0600, since it names
// the cluster and the node.
func (e *Env) SaveState(s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s provider state: %w", s.Pack, err)
	}
	if err := e.Root.WriteFileAtomic(statePath(s.Pack), append(data, '\n'), ModeSecret); err != nil {
		return fmt.Errorf("save %s provider state: %w", s.Pack, err)
	}
	return nil
}

// DropState deletes the provider's state file.
func (e *Env) DropState(pack string) error {
	if err := os.Remove(e.Root.Path(statePath(pack))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drop %s provider state: %w", pack, err)
	}
	return nil
}

// Done is the common part of every provider's Check: whether the state
// says the action's outcome is in place. Removal also needs the provider's
// own look at the host (files a lost state would not name), which it adds.
func Done(st *State, a engine.DistroAction) bool {
	switch a.Op {
	case engine.DistroInstall:
		return st != nil && st.Phase == PhaseInstalled && st.Hash == a.Layer.Hash && st.Role == a.Role && st.Cluster == a.Cluster
	case engine.DistroUpgrade:
		return st != nil && st.Phase == PhaseInstalled && st.Hash == a.Layer.Hash
	case engine.DistroRemove:
		return st == nil
	}
	return false
}

// NewState is the state of an action about to start.
func NewState(a engine.DistroAction, phase string) *State {
	return &State{
		Pack:              a.Pack(),
		Version:           a.Layer.Version,
		Hash:              a.Layer.Hash,
		KubernetesVersion: KubernetesVersion(a.Layer),
		Role:              a.Role,
		Cluster:           a.Cluster,
		Node:              a.Node,
		Phase:             phase,
		Target:            a.Layer.Hash,
	}
}

// KubernetesVersion is the layer's Kubernetes version without a leading v
// or build metadata (1.32.3 for 1.32.3+k3s1).
func KubernetesVersion(l v1.RenderedLayer) string {
	if l.KubernetesVersion != "" {
		return trimVersion(l.KubernetesVersion)
	}
	return trimVersion(l.Version)
}

func trimVersion(v string) string {
	if len(v) > 0 && v[0] == 'v' {
		v = v[1:]
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '+' || v[i] == '-' {
			return v[:i]
		}
	}
	return v
}

// Unknown is the error for an action a provider does not know.
func Unknown(pack string, op engine.DistroOp) error {
	return engine.Permanent(fmt.Errorf("%s provider: unknown action %q", pack, op))
}

// CheckState is the Check every provider makes: an install or upgrade is
// done when the state file says so and binary is on the host; a remove when
// the state says so and none of leftovers is left on the host either.
func (e *Env) CheckState(pack, binary string, leftovers []string, a engine.DistroAction) (bool, error) {
	st, err := e.LoadState(pack)
	if err != nil {
		return false, err
	}
	switch a.Op {
	case engine.DistroInstall, engine.DistroUpgrade:
		return Done(st, a) && e.Exists(binary), nil
	case engine.DistroRemove:
		return Done(st, a) && !slices.ContainsFunc(leftovers, e.Exists), nil
	}
	return false, Unknown(pack, a.Op)
}
