package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/pki"
)

// FileState is the engine's state file in its state directory.
const FileState = "engine.json"

// stateVersion numbers the engine.json format.
const stateVersion = 1

// State is what the engine has done to the host, as engine.json keeps it.
// It holds whole layers, not just their hashes, because removing a layer
// that left the spec needs what was applied; the file is 0600 since values
// may carry secrets.
type State struct {
	Version int `json:"version"`
	// SpecHash is the hash of the last spec whose plan ran to the end.
	SpecHash string            `json:"specHash,omitempty"`
	OS       *v1.RenderedLayer `json:"os,omitempty"`
	Distro   *DistroState      `json:"distro,omitempty"`
	// Layers are the applied layers after the distro, in the order they
	// were applied (removal goes in reverse).
	Layers []AppliedLayer `json:"layers,omitempty"`
	// Run is the progress towards the spec being worked on.
	Run *RunState `json:"run,omitempty"`
}

// DistroState is the installed distro.
type DistroState struct {
	Layer   v1.RenderedLayer `json:"layer"`
	Role    string           `json:"role"`
	Cluster string           `json:"cluster"`
	// Joined is false from an install or upgrade until the node is back in
	// its cluster, so that an agent restarted in between waits again
	// before it applies layers.
	Joined bool `json:"joined"`
}

// AppliedLayer is a layer in place, under its LayerAction.Key.
type AppliedLayer struct {
	Key   string           `json:"key"`
	Layer v1.RenderedLayer `json:"layer"`
}

// RunState lists the steps done towards SpecHash, so that a report after a
// restart still shows them (the plan, made from what is applied, no longer
// has them).
type RunState struct {
	SpecHash string          `json:"specHash"`
	Done     []v1.StepStatus `json:"done,omitempty"`
}

func (s *State) setLayer(key string, l v1.RenderedLayer) {
	for i := range s.Layers {
		if s.Layers[i].Key == key {
			s.Layers[i].Layer = l
			return
		}
	}
	s.Layers = append(s.Layers, AppliedLayer{Key: key, Layer: l})
}

func (s *State) dropLayer(key string) {
	s.Layers = slices.DeleteFunc(s.Layers, func(l AppliedLayer) bool { return l.Key == key })
}

// LoadState reads engine.json from dir; a missing file is an empty state.
// The engine reads it once, in New; this is for tests and diagnostics.
func LoadState(dir string) (State, error) {
	p := filepath.Join(dir, FileState)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Version: stateVersion}, nil
	}
	if err != nil {
		return State{Version: stateVersion}, fmt.Errorf("read engine state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{Version: stateVersion}, fmt.Errorf("engine state %s: %w", p, err)
	}
	if s.Version > stateVersion {
		return State{Version: stateVersion}, fmt.Errorf("engine state %s: version %d is newer than this agent's %d", p, s.Version, stateVersion)
	}
	s.Version = stateVersion
	return s, nil
}

// save writes engine.json atomically: a crash leaves the old or the new
// state, never a torn one.
func (s *State) save(dir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode engine state: %w", err)
	}
	if err := pki.WriteFileAtomic(filepath.Join(dir, FileState), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save engine state: %w", err)
	}
	return nil
}
