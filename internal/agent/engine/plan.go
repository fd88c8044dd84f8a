package engine

import (
	"fmt"
	"strconv"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// MsgWaitingForTurn is the message of a node whose distro upgrade waits for
// the hub's grant.
const MsgWaitingForTurn = "waiting for the hub to grant this node's upgrade turn"

// StepKind says which provider a step goes to.
type StepKind string

const (
	StepLayer  StepKind = "layer"  // a LayerApplier (the OS layer too)
	StepDistro StepKind = "distro" // a Distro
	StepWait   StepKind = "wait"   // Distro.Status, until the node is back in its cluster
)

// Step is one idempotent step of a plan.
type Step struct {
	// Name is unique within a plan and stable across restarts ("install
	// k3s", "apply layer calico"): reports and engine.json use it.
	Name string
	Kind StepKind
	// Layer is set for StepLayer.
	Layer *LayerAction
	// Distro is set for StepDistro, and for StepWait to say which distro
	// and role the node waits in (Op is then empty).
	Distro *DistroAction
	// Gate, when set, keeps the step from running: the node reports
	// NodeWaiting with Gate as the message and the plan ends here until a
	// new spec lifts it.
	Gate string
}

// what names a step's object for error messages: `apply layer "calico"`.
func (s Step) what() string {
	switch s.Kind {
	case StepLayer:
		kind := "layer"
		if s.Layer.Layer.Layer == v1.LayerOS {
			kind = "os layer"
		}
		return fmt.Sprintf("%s %s %q", s.Layer.Op, kind, s.Layer.Key)
	case StepDistro:
		return fmt.Sprintf("%s distro %q", s.Distro.Op, s.Distro.Pack())
	default:
		return s.Name
	}
}

// Plan lists the steps that take the host from what is applied (current) to
// spec, in order:
//
//   - nothing when the spec has no cluster part or its hash is the one last
//     applied to the end;
//   - with Remove: the layers removed in reverse, then the distro removed
//     (the OS layer stays: it is the host's, not the cluster's);
//   - else the OS layer if new or changed; the distro installed if there is
//     none, removed and installed again if its pack, the node's role or the
//     cluster changed, upgraded if its hash changed (gated: without UpgradeGranted
//     the plan ends at the upgrade); a wait for the node to join after any
//     of those (or after a restart in the middle of one); then layers that
//     left the spec (or changed type) removed in reverse, and layers that
//     are new or whose hash changed applied in spec order.
//
// Unchanged layers get no step, so a values change touches only the layers
// it changed.
func Plan(current *State, spec *v1.HostSpec) []Step {
	cur := current
	if cur == nil {
		cur = &State{}
	}
	if spec == nil || spec.Cluster == nil {
		return nil
	}
	if spec.Hash != "" && cur.SpecHash == spec.Hash {
		return nil
	}
	c := spec.Cluster
	if c.Remove {
		return planRemove(cur, spec)
	}
	var steps []Step
	if c.OS != nil && (cur.OS == nil || cur.OS.Hash != c.OS.Hash) {
		// The OS layer is told apart by its kind, whatever the hub put there.
		l := *c.OS
		l.Layer = v1.LayerOS
		steps = append(steps, Step{
			Name:  "apply os " + l.Name,
			Kind:  StepLayer,
			Layer: &LayerAction{Op: LayerApply, Layer: l, Key: l.Name},
		})
	}
	applied := cur.Layers
	distro := ""
	if c.Distro != nil {
		distro = PackName(*c.Distro)
		base := distroAction(spec)
		d := cur.Distro
		wait := false
		switch {
		case d == nil:
			steps = append(steps, distroStep(base, DistroInstall, nil))
			wait = true
		case PackName(d.Layer) != distro || d.Role != c.Role || d.Cluster != c.Name:
			// A node cannot change distro, role or cluster in place (a host
			// force-released by one cluster may be given to another): it
			// leaves and joins again, and the layers it had went with it.
			old := base
			old.Layer, old.Role, old.Cluster = d.Layer, d.Role, d.Cluster
			steps = append(steps, distroStep(old, DistroRemove, nil))
			steps = append(steps, distroStep(base, DistroInstall, nil))
			applied, wait = nil, true
		case d.Layer.Hash != c.Distro.Hash:
			up := distroStep(base, DistroUpgrade, &d.Layer)
			if !c.UpgradeGranted {
				up.Gate = MsgWaitingForTurn
				return append(steps, up)
			}
			steps = append(steps, up)
			wait = true
		case !d.Joined:
			wait = true
		}
		if wait {
			w := base
			w.Op = ""
			steps = append(steps, Step{Name: "wait for node to join", Kind: StepWait, Distro: &w})
		}
	}
	keys := LayerKeys(c.Layers)
	want := make(map[string]v1.RenderedLayer, len(keys))
	for i, k := range keys {
		want[k] = c.Layers[i]
	}
	replaced := map[string]bool{}
	for i := len(applied) - 1; i >= 0; i-- {
		a := applied[i]
		w, ok := want[a.Key]
		if ok && w.Type == a.Layer.Type && w.Pack == a.Layer.Pack {
			continue
		}
		// A layer that changed type or pack is removed by the applier that
		// put it there before the new one applies it.
		replaced[a.Key] = ok
		steps = append(steps, Step{
			Name:  "remove layer " + a.Key,
			Kind:  StepLayer,
			Layer: &LayerAction{Op: LayerRemove, Layer: a.Layer, Key: a.Key, Distro: distro, Role: c.Role},
		})
	}
	for i, k := range keys {
		l := c.Layers[i]
		if have, ok := layerIn(applied, k); ok && !replaced[k] && have.Hash == l.Hash {
			continue
		}
		steps = append(steps, Step{
			Name:  "apply layer " + k,
			Kind:  StepLayer,
			Layer: &LayerAction{Op: LayerApply, Layer: l, Key: k, Distro: distro, Role: c.Role},
		})
	}
	return steps
}

// planRemove tears down what is applied, and also what the spec names but
// the state does not know (a lost engine.json): Check finds those not there
// and skips them.
func planRemove(cur *State, spec *v1.HostSpec) []Step {
	c := spec.Cluster
	var steps []Step
	distro := ""
	if cur.Distro != nil {
		distro = PackName(cur.Distro.Layer)
	} else if c.Distro != nil {
		distro = PackName(*c.Distro)
	}
	seen := map[string]bool{}
	for i := len(cur.Layers) - 1; i >= 0; i-- {
		a := cur.Layers[i]
		seen[a.Key] = true
		steps = append(steps, Step{
			Name:  "remove layer " + a.Key,
			Kind:  StepLayer,
			Layer: &LayerAction{Op: LayerRemove, Layer: a.Layer, Key: a.Key, Distro: distro, Role: c.Role},
		})
	}
	keys := LayerKeys(c.Layers)
	for i := len(keys) - 1; i >= 0; i-- {
		if seen[keys[i]] {
			continue
		}
		steps = append(steps, Step{
			Name:  "remove layer " + keys[i],
			Kind:  StepLayer,
			Layer: &LayerAction{Op: LayerRemove, Layer: c.Layers[i], Key: keys[i], Distro: distro, Role: c.Role},
		})
	}
	base := distroAction(spec)
	switch {
	case cur.Distro != nil:
		base.Layer, base.Role, base.Cluster = cur.Distro.Layer, cur.Distro.Role, cur.Distro.Cluster
		steps = append(steps, distroStep(base, DistroRemove, nil))
	case c.Distro != nil:
		steps = append(steps, distroStep(base, DistroRemove, nil))
	}
	return steps
}

func distroAction(spec *v1.HostSpec) DistroAction {
	c := spec.Cluster
	a := DistroAction{
		Node:           spec.Metadata.Name,
		Cluster:        c.Name,
		Role:           c.Role,
		JoinEndpoint:   c.JoinEndpoint,
		JoinToken:      c.JoinToken,
		VIP:            c.VIP,
		AllowWorkloads: c.AllowWorkloads,
	}
	if c.Distro != nil {
		a.Layer = *c.Distro
	}
	return a
}

func distroStep(base DistroAction, op DistroOp, from *v1.RenderedLayer) Step {
	base.Op = op
	if from != nil {
		f := *from
		base.From = &f
	}
	return Step{Name: string(op) + " " + base.Pack(), Kind: StepDistro, Distro: &base}
}

func layerIn(ls []AppliedLayer, key string) (v1.RenderedLayer, bool) {
	for _, l := range ls {
		if l.Key == key {
			return l.Layer, true
		}
	}
	return v1.RenderedLayer{}, false
}

// LayerKeys names layers uniquely: by name, with "#2", "#3" … for later
// layers of a name already used (RenderedLayer has no profile to tell them
// apart).
func LayerKeys(ls []v1.RenderedLayer) []string {
	seen := map[string]int{}
	keys := make([]string, len(ls))
	for i, l := range ls {
		seen[l.Name]++
		keys[i] = l.Name
		if n := seen[l.Name]; n > 1 {
			keys[i] = l.Name + "#" + strconv.Itoa(n)
		}
	}
	return keys
}
