package engine

import (
	"context"
	"errors"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// DistroOp is what a DistroAction asks of a distro provider.
type DistroOp string

const (
	// DistroInstall installs the distro and makes the host a node in the
	// role the action names: init creates the cluster, control-plane and
	// worker join it at JoinEndpoint with JoinToken.
	DistroInstall DistroOp = "install"
	// DistroUpgrade replaces the installed distro (From) with Layer. Cordon,
	// drain, replace and uncordon are the provider's business; the hub has
	// already made this node's turn.
	DistroUpgrade DistroOp = "upgrade"
	// DistroRemove takes the node out of its cluster and uninstalls.
	DistroRemove DistroOp = "remove"
)

// DistroAction is one thing to do with the distro. Providers must make Apply
// safe to repeat: an agent killed in the middle of an action runs it again
// unless Check says it is done.
type DistroAction struct {
	Op DistroOp
	// Layer is the distro layer to install or upgrade to; for DistroRemove
	// the one installed.
	Layer v1.RenderedLayer
	// From is the layer installed now (DistroUpgrade only).
	From *v1.RenderedLayer
	// Node is the host ID, which providers use as the node name.
	Node           string
	Cluster        string
	Role           string // v1.RoleInit, v1.RoleControlPlane or v1.RoleWorker
	JoinEndpoint   string
	JoinToken      string // secret: never log it
	VIP            string
	AllowWorkloads bool
}

// Pack is the distro pack the action is about (k3s, rke2, kubeadm): the name
// providers are registered under.
func (a DistroAction) Pack() string { return PackName(a.Layer) }

// PackName is a layer's pack, or its name for a layer without one (a raw
// manifest layer).
func PackName(l v1.RenderedLayer) string {
	if l.Pack != "" {
		return l.Pack
	}
	return l.Name
}

// NodeState is what a distro provider sees of its node now.
type NodeState struct {
	// ControlPlaneUp: this node's Kubernetes API answers (init and
	// control-plane nodes only); joiners wait for it on the init node.
	ControlPlaneUp bool
	// Joined: the node is registered in its cluster. It may still be
	// NotReady, for instance until a CNI layer is applied, which is why the
	// engine waits for Joined, not NodeReady, before applying layers.
	Joined bool
	// NodeReady: the node's Ready condition is true.
	NodeReady         bool
	KubernetesVersion string
	// Address is where the node is reachable (the join endpoint of an init
	// node without a VIP).
	Address string
}

// Distro installs, upgrades and removes one Kubernetes distribution.
type Distro interface {
	// Name is the distro pack the provider handles ("k3s"), for logs.
	Name() string
	// Check reports whether the action's outcome is already in place, so
	// that it is not done again.
	Check(ctx context.Context, a DistroAction) (done bool, err error)
	Apply(ctx context.Context, a DistroAction) error
	// Status describes the node; it is called often and must be cheap.
	Status(ctx context.Context) (NodeState, error)
}

// LayerOp is what a LayerAction asks of a layer applier.
type LayerOp string

const (
	LayerApply  LayerOp = "apply"
	LayerRemove LayerOp = "remove"
)

// LayerAction is one layer to apply or remove.
type LayerAction struct {
	Op LayerOp
	// Layer is the layer as the spec has it (LayerApply) or as it was last
	// applied (LayerRemove).
	Layer v1.RenderedLayer
	// Key names the layer uniquely on the host: its name, with "#2", "#3"
	// for later layers of the same name (layers of different profiles may
	// share one).
	Key string
	// Distro is the distro pack the cluster runs (k3s, rke2, kubeadm), which
	// tells an applier where the cluster's kubeconfig and tools are; empty
	// for the OS layer.
	Distro string
	// Role is the host's role: appliers of cluster-wide objects may leave
	// them to the init node.
	Role string
}

// LayerApplier applies and removes layers of one kind: the OS layer, Helm
// charts, manifests.
type LayerApplier interface {
	// Check reports whether the action's outcome is in place: for
	// LayerApply the layer at Layer.Hash, for LayerRemove nothing of the
	// layer at any hash.
	Check(ctx context.Context, a LayerAction) (done bool, err error)
	// Apply puts the layer in place at its hash, replacing what an earlier
	// hash left; it must be safe to repeat.
	Apply(ctx context.Context, a LayerAction) error
	// Remove takes the layer away; removing a layer that is not there is
	// not an error.
	Remove(ctx context.Context, a LayerAction) error
}

// LayerKind is the Registry key of a layer's applier: "os" for the OS layer,
// else the layer's type (v1.PackHelm, v1.PackManifest).
func LayerKind(l v1.RenderedLayer) string {
	if l.Layer == v1.LayerOS {
		return v1.LayerOS
	}
	return l.Type
}

// Registry holds providers by name, with a fallback for names it does not
// have. Distros are registered by distro pack name (k3s, rke2, kubeadm),
// layer appliers by LayerKind. The zero Registry has none.
type Registry[T any] struct {
	ByName   map[string]T
	Fallback T
	// HasFallback says Fallback is set (T is an interface; a nil one is no
	// fallback).
	HasFallback bool
}

// WithFallback returns a Registry that answers every name with p.
func WithFallback[T any](p T) Registry[T] {
	return Registry[T]{Fallback: p, HasFallback: true}
}

// Lookup returns the provider for name.
func (r Registry[T]) Lookup(name string) (T, bool) {
	if p, ok := r.ByName[name]; ok {
		return p, true
	}
	return r.Fallback, r.HasFallback
}

// IsZero reports whether the registry has no provider at all.
func (r Registry[T]) IsZero() bool { return len(r.ByName) == 0 && !r.HasFallback }

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying will not fix (no provider, values
// the distro rejects): the engine reports the node Failed at once and waits
// for a new spec instead of retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Clock is the engine's time, so tests can control step timestamps.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
