package simulated

import (
	"context"
	"fmt"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Layers simulates applying and removing layers of any kind: the OS layer
// goes to os.json, the others to layers.json by key.
type Layers struct{ h *Host }

var _ engine.LayerApplier = (*Layers)(nil)

func isOS(a engine.LayerAction) bool { return a.Layer.Layer == v1.LayerOS }

func (l *Layers) applied(a engine.LayerAction) (*layerFile, error) {
	h := l.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if isOS(a) {
		var f *layerFile
		err := h.readJSON(PathOS, &f)
		return f, err
	}
	all := map[string]*layerFile{}
	if err := h.readJSON(PathLayers, &all); err != nil {
		return nil, err
	}
	return all[a.Key], nil
}

// Check says an apply is done when the layer is there at its hash, a
// remove when it is not there at all.
func (l *Layers) Check(_ context.Context, a engine.LayerAction) (bool, error) {
	f, err := l.applied(a)
	if err != nil {
		return false, err
	}
	if a.Op == engine.LayerRemove {
		return f == nil, nil
	}
	return f != nil && f.Hash == a.Layer.Hash, nil
}

// Apply records the layer at its hash after the step delay.
func (l *Layers) Apply(ctx context.Context, a engine.LayerAction) error {
	h := l.h
	if _, _, err := h.begin(ctx, ActionApply, []string{a.Layer.Name, a.Key}, 1); err != nil {
		return err
	}
	f := &layerFile{Name: a.Layer.Name, Type: a.Layer.Type, Pack: a.Layer.Pack, Version: a.Layer.Version, Hash: a.Layer.Hash}
	h.mu.Lock()
	var err error
	if isOS(a) {
		err = h.writeJSON(PathOS, f)
	} else {
		all := map[string]*layerFile{}
		if err = h.readJSON(PathLayers, &all); err == nil {
			all[a.Key] = f
			err = h.writeJSON(PathLayers, all)
		}
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	kind := "layer"
	if isOS(a) {
		kind = "os"
	}
	return h.record(fmt.Sprintf("apply %s %s hash=%s", kind, a.Key, a.Layer.Hash))
}

// Remove forgets the layer after the step delay; a layer that is not there
// is left alone and nothing is recorded.
func (l *Layers) Remove(ctx context.Context, a engine.LayerAction) error {
	h := l.h
	if f, err := l.applied(a); err != nil || f == nil {
		return err
	}
	if _, _, err := h.begin(ctx, ActionRemove, []string{a.Layer.Name, a.Key}, 1); err != nil {
		return err
	}
	h.mu.Lock()
	var err error
	if isOS(a) {
		err = h.remove(PathOS)
	} else {
		all := map[string]*layerFile{}
		if err = h.readJSON(PathLayers, &all); err == nil {
			delete(all, a.Key)
			err = h.writeJSON(PathLayers, all)
		}
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	kind := "layer"
	if isOS(a) {
		kind = "os"
	}
	return h.record(fmt.Sprintf("remove %s %s", kind, a.Key))
}
