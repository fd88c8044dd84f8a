package distro

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/fetch"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
)

// Defaults of an Env.
const (
	DefaultPollInterval = 5 * time.Second
	DefaultReadyTimeout = 10 * time.Minute
	DefaultDrainTimeout = 5 * time.Minute
	// StatusTimeout bounds one kubectl call of Status, which the engine
	// makes often and which must not hang on a dead API server.
	StatusTimeout = 10 * time.Second
)

// Env is the host a provider works on.
type Env struct {
	Root hostos.Root
	// Run runs host commands; default hostexec.Exec on the real host, and
	// a Recorder (nothing runs) on any other root.
	Run   hostexec.Runner
	Fetch *fetch.Fetcher
	Log   *slog.Logger
	// Arch picks artifacts (amd64, arm64); default runtime.GOARCH.
	Arch string
	// ProxyEnv (HTTP_PROXY=…, HTTPS_PROXY=…, NO_PROXY=…) goes into the
	// distro's service environment, so that its container runtime pulls
	// images through the site's proxy.
	ProxyEnv []string
	// PollInterval is the pause between readiness checks; ReadyTimeout
	// bounds waiting for the node to be Ready after an upgrade;
	// DrainTimeout is kubectl drain's --timeout.
	PollInterval, ReadyTimeout, DrainTimeout time.Duration
	// Sleep pauses for d or until ctx ends (false); tests make it return
	// at once. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) bool
}

// WithDefaults returns e with its empty fields set.
func (e Env) WithDefaults() Env {
	if e.Log == nil {
		e.Log = slog.Default()
	}
	if e.Arch == "" {
		e.Arch = runtime.GOARCH
	}
	if e.Fetch == nil {
		e.Fetch = &fetch.Fetcher{Root: e.Root}
	}
	if e.Run == nil {
		if e.Root.IsHost() {
			e.Run = &hostexec.Exec{Log: e.Log}
		} else {
			// Commands name host paths: run for real, they would act on
			// the machine, not on the root the files went to.
			e.Log.Warn("providers on a root other than /: host commands are recorded, not run", "root", e.Root.Dir)
			e.Run = &hostexec.Recorder{}
		}
	}
	if e.PollInterval <= 0 {
		e.PollInterval = DefaultPollInterval
	}
	if e.ReadyTimeout <= 0 {
		e.ReadyTimeout = DefaultReadyTimeout
	}
	if e.DrainTimeout <= 0 {
		e.DrainTimeout = DefaultDrainTimeout
	}
	if e.Sleep == nil {
		e.Sleep = sleep
	}
	return e
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Artifact returns the layer's artifact called name for the host's
// architecture (an artifact without arch fits every one).
func (e *Env) Artifact(l v1.RenderedLayer, name string) (v1.Artifact, error) {
	for _, a := range l.Artifacts {
		if a.Name == name && (a.Arch == e.Arch || a.Arch == "") {
			return a, nil
		}
	}
	return v1.Artifact{}, engine.Permanent(fmt.Errorf("%s %s has no %s artifact for %s", engine.PackName(l), l.Version, name, e.Arch))
}

// Artifacts are the layer's artifacts for the host's architecture.
func (e *Env) Artifacts(l v1.RenderedLayer) []v1.Artifact {
	var out []v1.Artifact
	for _, a := range l.Artifacts {
		if a.Arch == e.Arch || a.Arch == "" {
			out = append(out, a)
		}
	}
	return out
}

// Exists reports whether the host path p exists (a broken symlink counts).
func (e *Env) Exists(p string) bool {
	_, err := e.Root.Stat(p)
	if err == nil {
		return true
	}
	_, lerr := lstat(e.Root.Path(p))
	return lerr == nil
}

// IsServer reports whether a role runs the control plane.
func IsServer(role string) bool { return role == v1.RoleInit || role == v1.RoleControlPlane }

// Mode of files holding secrets (join tokens, kubeconfigs).
const (
	ModeSecret fs.FileMode = 0o600
	ModeFile   fs.FileMode = 0o644
	ModeExec   fs.FileMode = 0o755
)
