package distro

import (
	"context"
	"slices"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Install is one install or in-place upgrade of a distro that runs as one
// systemd service (k3s, rke2). Everything that can fail without touching
// the node (values, rendering) is the provider's to do before; Run fetches
// and verifies the artifacts before the node is touched too, so a bad
// layer never leaves a drained node behind.
type Install struct {
	Action engine.DistroAction
	// Upgrade replaces the distro that runs: drain first (servers), then
	// restart, wait for Ready and uncordon.
	Upgrade   bool
	Artifacts []v1.Artifact
	// Place puts the fetched artifacts (local paths, in the order of
	// Artifacts) on the host and returns the host paths of the files it
	// extracted, which the state keeps for remove.
	Place func(ctx context.Context, local []string) ([]string, error)
	// Configure writes the config files, the kube-vip manifest and the
	// unit.
	Configure func(ctx context.Context) error
	Unit      string
	// Kube reads the node: the admin kubeconfig on servers, the kubelet's
	// on workers.
	Kube Kube
}

// RunInstall does in.
func (e *Env) RunInstall(ctx context.Context, in Install) error {
	a := in.Action
	pack := a.Pack()
	prev, err := e.LoadState(pack)
	if err != nil {
		return err
	}
	if in.Upgrade && prev == nil {
		e.Log.Warn("upgrade without provider state: installing", "pack", pack, "version", a.Layer.Version)
		in.Upgrade = false
	}
	local := make([]string, len(in.Artifacts))
	for i, art := range in.Artifacts {
		if local[i], err = e.Fetch.Fetch(ctx, art); err != nil {
			return err
		}
	}
	phase := PhaseInstalling
	if in.Upgrade {
		phase = PhaseUpgrading
	}
	st := NewState(a, phase)
	if prev != nil {
		st.Artifacts, st.Files = prev.Artifacts, prev.Files
		if in.Upgrade {
			// Until the new one runs, the old one is what is installed.
			st.Hash, st.Version, st.KubernetesVersion = prev.Hash, prev.Version, prev.KubernetesVersion
		}
	}
	for _, art := range in.Artifacts {
		if !slices.ContainsFunc(st.Artifacts, func(x v1.Artifact) bool { return x.URL == art.URL }) {
			st.Artifacts = append(st.Artifacts, art)
		}
	}
	if err := e.SaveState(st); err != nil {
		return err
	}
	server := IsServer(a.Role)
	if in.Upgrade {
		if server {
			if err := in.Kube.Drain(ctx, a.Node); err != nil {
				return err
			}
		} else {
			e.Log.Info("worker upgrades in place: it has no credentials to drain itself", "pack", pack, "node", a.Node)
		}
	}
	files, err := in.Place(ctx, local)
	if err != nil {
		return err
	}
	for _, f := range st.Files {
		if !slices.Contains(files, f) {
			if err := e.Remove(f); err != nil {
				return err
			}
		}
	}
	if err := in.Configure(ctx); err != nil {
		return err
	}
	if err := e.Systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	if in.Upgrade {
		if err := e.Start(ctx, "restart", in.Unit); err != nil {
			return err
		}
		if err := in.Kube.WaitReady(ctx, a.Node); err != nil {
			return err
		}
		if server {
			if err := in.Kube.Uncordon(ctx, a.Node); err != nil {
				return err
			}
		}
	} else if err := e.Start(ctx, "enable", "--now", in.Unit); err != nil {
		return err
	}
	done := NewState(a, PhaseInstalled)
	done.Artifacts, done.Files = in.Artifacts, files
	// The old version's downloads are not needed any more; small hosts
	// need the room.
	for _, old := range st.Artifacts {
		if !slices.ContainsFunc(in.Artifacts, func(x v1.Artifact) bool { return x.URL == old.URL }) {
			if err := e.Fetch.Remove(old); err != nil {
				e.Log.Warn("drop cached artifact", "artifact", old.Name, "error", err)
			}
		}
	}
	return e.SaveState(done)
}

// DropArtifacts removes cached artifacts on remove; failures are logged.
func (e *Env) DropArtifacts(arts []v1.Artifact) {
	for _, art := range arts {
		if err := e.Fetch.Remove(art); err != nil {
			e.Log.Warn("drop cached artifact", "artifact", art.Name, "error", err)
		}
	}
}
