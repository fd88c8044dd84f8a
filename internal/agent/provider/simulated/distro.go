package simulated

import (
	"context"
	"fmt"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Distro simulates installing, upgrading and removing any distro pack.
type Distro struct{ h *Host }

var _ engine.Distro = (*Distro)(nil)

// Name says this is the simulation, whatever pack it stands in for.
func (d *Distro) Name() string { return "simulated" }

// Check reads distro.json: an install is done when that pack is there at
// the layer's hash in that role, an upgrade when it is there at the new
// hash and not half-way, a remove when nothing is installed.
func (d *Distro) Check(_ context.Context, a engine.DistroAction) (bool, error) {
	cur, err := d.h.distro()
	if err != nil {
		return false, err
	}
	switch a.Op {
	case engine.DistroInstall:
		return cur != nil && !cur.Upgrading && cur.Pack == a.Pack() && cur.Hash == a.Layer.Hash && cur.Role == a.Role, nil
	case engine.DistroUpgrade:
		return cur != nil && !cur.Upgrading && cur.Pack == a.Pack() && cur.Hash == a.Layer.Hash, nil
	case engine.DistroRemove:
		return cur == nil, nil
	}
	return false, engine.Permanent(fmt.Errorf("simulated distro: unknown action %q", a.Op))
}

// Apply does the action, taking the step delay, unless a fault fails it.
func (d *Distro) Apply(ctx context.Context, a engine.DistroAction) error {
	h := d.h
	pack := a.Pack()
	targets := []string{pack, a.Layer.Name}
	switch a.Op {
	case engine.DistroInstall:
		if _, _, err := h.begin(ctx, ActionInstall, targets, 1); err != nil {
			return err
		}
		if err := h.setDistro(&distroFile{
			Pack: pack, Version: a.Layer.Version, Hash: a.Layer.Hash, Role: a.Role,
			KubernetesVersion: kubernetesVersion(a.Layer),
		}); err != nil {
			return err
		}
		return h.record(fmt.Sprintf("install %s %s role=%s", pack, a.Layer.Version, a.Role))

	case engine.DistroUpgrade:
		// Half the time before the node goes down, half with it down, so
		// that a kill in the middle leaves it half-way like a real one.
		if _, _, err := h.begin(ctx, ActionUpgrade, targets, 0.5); err != nil {
			return err
		}
		cur, err := h.distro()
		if err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("simulated upgrade of %s: nothing installed", pack)
		}
		from := cur.Version
		cur.Upgrading = true
		if err := h.setDistro(cur); err != nil {
			return err
		}
		_, delay, err := h.faults()
		if err != nil {
			return err
		}
		if !sleep(ctx, delay/2) {
			return ctx.Err()
		}
		if err := h.setDistro(&distroFile{
			Pack: pack, Version: a.Layer.Version, Hash: a.Layer.Hash, Role: a.Role,
			KubernetesVersion: kubernetesVersion(a.Layer),
		}); err != nil {
			return err
		}
		return h.record(fmt.Sprintf("upgrade %s %s -> %s", pack, from, a.Layer.Version))

	case engine.DistroRemove:
		if _, _, err := h.begin(ctx, ActionRemove, targets, 1); err != nil {
			return err
		}
		h.mu.Lock()
		// The cluster's objects go with the node; the OS layer stays.
		err := h.remove(PathLayers)
		if err == nil {
			err = h.remove(PathDistro)
		}
		h.mu.Unlock()
		if err != nil {
			return err
		}
		return h.record("remove " + pack)
	}
	return engine.Permanent(fmt.Errorf("simulated distro: unknown action %q", a.Op))
}

func (h *Host) setDistro(d *distroFile) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writeJSON(PathDistro, d)
}

// Status is what the simulated node would say: up once installed, not
// Ready half-way through an upgrade or when faults.yaml says notReady.
func (d *Distro) Status(context.Context) (engine.NodeState, error) {
	st := engine.NodeState{Address: d.h.address()}
	cur, err := d.h.distro()
	if err != nil || cur == nil {
		return st, err
	}
	f, _, ferr := d.h.faults()
	if ferr != nil {
		d.h.log.Warn("simulated status ignores faults", "error", ferr)
	}
	st.Joined = true
	st.ControlPlaneUp = cur.Role != v1.RoleWorker && !cur.Upgrading
	st.NodeReady = !cur.Upgrading && !f.NotReady
	st.KubernetesVersion = cur.KubernetesVersion
	return st, nil
}
