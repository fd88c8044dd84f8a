package provider

import (
	"log/slog"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
	"github.com/outpost-edge/outpost/internal/agent/provider/fetch"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
	"github.com/outpost-edge/outpost/internal/agent/provider/k3s"
	"github.com/outpost-edge/outpost/internal/agent/provider/kubeadm"
	"github.com/outpost-edge/outpost/internal/agent/provider/oslayer"
	"github.com/outpost-edge/outpost/internal/agent/provider/rke2"
)

// Config is what the providers work with. Only Root is needed; the rest
// has defaults.
type Config struct {
	Root hostos.Root
	// Runner runs host commands; default hostexec.Exec on the real host
	// (Root "/"), and on any other root a Recorder: nothing runs.
	Runner hostexec.Runner
	// Fetcher downloads artifacts; default one without the hub's cache,
	// straight from upstream into fetch.DefaultDir.
	Fetcher *fetch.Fetcher
	Log     *slog.Logger
	// ProxyEnv (HTTP_PROXY=…, HTTPS_PROXY=…, NO_PROXY=…) is the site's
	// proxy, which the distros' container runtimes need to pull images.
	ProxyEnv []string
	// Arch picks the artifacts; default the agent's own GOARCH.
	Arch string
}

// Defaults returns the distro providers by pack name (k3s, rke2, kubeadm)
// and the layer appliers by engine.LayerKind (the OS layer's "os").
func Defaults(root hostos.Root, runner hostexec.Runner, fetcher *fetch.Fetcher, log *slog.Logger) (distros engine.Registry[engine.Distro], layers map[string]engine.LayerApplier) {
	return Build(Config{Root: root, Runner: runner, Fetcher: fetcher, Log: log})
}

// Build is Defaults with every setting.
func Build(c Config) (distros engine.Registry[engine.Distro], layers map[string]engine.LayerApplier) {
	env := distro.Env{
		Root:     c.Root,
		Run:      c.Runner,
		Fetch:    c.Fetcher,
		Log:      c.Log,
		ProxyEnv: c.ProxyEnv,
		Arch:     c.Arch,
	}.WithDefaults()
	distros = engine.Registry[engine.Distro]{ByName: map[string]engine.Distro{
		k3s.Pack:     k3s.New(env),
		rke2.Pack:    rke2.New(env),
		kubeadm.Pack: kubeadm.New(env),
	}}
	layers = map[string]engine.LayerApplier{v1.LayerOS: oslayer.New(env)}
	return distros, layers
}
