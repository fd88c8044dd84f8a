package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/rest"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Fetcher returns the path of a layer's chart archive (.tgz) on local disk,
// verified. The applier only reads the file.
type Fetcher func(ctx context.Context, layer v1.RenderedLayer) (path string, err error)

// Attached applies the manifests attached to helm layers (Layer.Manifests):
// the manifests package's Applier, which applies a layer's manifests
// whatever its type, waits for CRDs to be established, and prunes what a
// layer no longer has.
type Attached interface {
	engine.LayerApplier
	Health(ctx context.Context, a engine.LayerAction) (state, message string)
}

// Options configure an Applier. RESTConfig is required.
type Options struct {
	// RESTConfig returns a client configuration with cluster-admin rights
	// on the host's cluster. It is called for every action, so that a
	// kubeconfig written by the distro after the agent started, or
	// rotated since, is picked up.
	RESTConfig func(ctx context.Context) (*rest.Config, error)
	// Fetch gets chart archives; default an HTTPFetcher with its defaults.
	Fetch Fetcher
	// Manifests applies the manifests attached to a layer, after its chart
	// (they are often objects of kinds the chart brings, a cert-manager
	// ClusterIssuer say, which Helm could not even map before the chart's
	// CRDs exist) and removes them before it. Without it a layer with
	// attached manifests is refused.
	Manifests Attached
	// Timeout bounds chart hooks (Helm waits for hook Jobs to finish);
	// default 5 minutes.
	Timeout time.Duration
	// MaxHistory is how many revisions Helm keeps per release; default 10.
	MaxHistory int
	Logger     *slog.Logger
}

// Applier is the engine.LayerApplier for Helm layers. Its methods may be
// called concurrently, but the engine never runs two of Apply, Remove for
// one layer at once, and nothing else should (Helm locks a release only
// through its pending states).
type Applier struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// failed holds the error of each release's last Apply, until one
	// succeeds: Health names it when a failure left no revision behind (a
	// chart that does not render, a download refused).
	failed map[string]string
}

var _ engine.LayerApplier = (*Applier)(nil)

// New returns an Applier.
func New(opts Options) (*Applier, error) {
	if opts.RESTConfig == nil {
		return nil, errors.New("helm applier: no RESTConfig")
	}
	if opts.Fetch == nil {
		opts.Fetch = (&HTTPFetcher{}).Fetch
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.MaxHistory <= 0 {
		opts.MaxHistory = 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Applier{opts: opts, log: opts.Logger, failed: map[string]string{}}, nil
}

// acts reports whether this host does the cluster-wide work (see the
// package documentation): the init node, or a node without a role, which
// is a cluster of its own (as for the manifests applier).
func acts(a engine.LayerAction) bool { return a.Role == v1.RoleInit || a.Role == "" }

// Check reports, on the init node, whether the layer's release is deployed
// with the layer's ConfigHash and chart version and its attached manifests
// are in place (LayerApply), or whether nothing of the layer is left
// (LayerRemove). Other nodes have nothing to do: always done.
func (h *Applier) Check(ctx context.Context, a engine.LayerAction) (bool, error) {
	if !acts(a) {
		return true, nil
	}
	key := layerKey(a)
	if err := h.attachable(a); err != nil {
		return false, err
	}
	var rels []*release.Release
	var t *target
	var err error
	if a.Op == engine.LayerRemove {
		if rels, err = h.releases(ctx, ReleaseName(key)); err != nil {
			return false, fmt.Errorf("helm layer %q: %w", key, err)
		}
		if len(rels) > 0 {
			return false, nil
		}
	} else {
		if t, err = targetOf(a); err != nil {
			return false, engine.Permanent(fmt.Errorf("helm layer %q: %w", key, err))
		}
		if rels, err = h.releases(ctx, t.release); err != nil {
			return false, fmt.Errorf("helm layer %q: %w", key, err)
		}
		if !t.satisfiedBy(rels) {
			return false, nil
		}
	}
	if h.opts.Manifests == nil {
		return true, nil
	}
	return h.opts.Manifests.Check(ctx, a)
}

// attachable refuses a layer with attached manifests when nothing applies
// them: dropping them silently would leave the layer half-applied for good.
func (h *Applier) attachable(a engine.LayerAction) error {
	if h.opts.Manifests == nil && len(a.Layer.Manifests) > 0 && a.Op != engine.LayerRemove {
		return engine.Permanent(fmt.Errorf("helm layer %q: has %d attached manifests and this agent has no manifests applier", layerKey(a), len(a.Layer.Manifests)))
	}
	return nil
}

// satisfiedBy: the latest revision in the target namespace is deployed at
// the target's hash and chart version, and no other namespace still has a
// release of the layer.
func (t *target) satisfiedBy(rels []*release.Release) bool {
	var last *release.Release
	for _, r := range rels {
		if r.Namespace != t.namespace {
			return false
		}
		if last == nil || r.Version > last.Version {
			last = r
		}
	}
	return last != nil && t.deployedAs(last)
}

func (t *target) deployedAs(r *release.Release) bool {
	return r.Info != nil && r.Info.Status == release.StatusDeployed &&
		r.Labels[LabelConfigHash] == hashLabel(t.hash) &&
		r.Chart != nil && r.Chart.Metadata != nil && r.Chart.Metadata.Name == t.chart.Name &&
		sameVersion(r.Chart.Metadata.Version, t.chart.Version)
}

// Apply installs or upgrades the layer's release. A failed install is
// uninstalled and a failed upgrade rolled back to the revision deployed
// before it; either way the error is returned.
func (h *Applier) Apply(ctx context.Context, a engine.LayerAction) error {
	if !acts(a) {
		return nil
	}
	if err := h.attachable(a); err != nil {
		return err
	}
	t, err := targetOf(a)
	if err != nil {
		return engine.Permanent(fmt.Errorf("helm layer %q: %w", layerKey(a), err))
	}
	err = h.apply(ctx, a.Layer, t)
	if err == nil && h.opts.Manifests != nil {
		// Called without manifests too: it prunes what an earlier
		// version of the layer attached.
		if merr := h.opts.Manifests.Apply(ctx, a); merr != nil {
			err = fmt.Errorf("attached manifests: %w", merr)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("helm layer %q: %w", t.layer, err)
		h.failed[t.release] = err.Error()
		return err
	}
	delete(h.failed, t.release)
	return nil
}

func (h *Applier) lastError(release string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed[release]
}

func (h *Applier) apply(ctx context.Context, layer v1.RenderedLayer, t *target) error {
	rels, err := h.releases(ctx, t.release)
	if err != nil {
		return err
	}
	if t.satisfiedBy(rels) {
		return nil
	}
	var here []*release.Release
	moved := map[string]bool{}
	for _, r := range rels {
		if r.Namespace == t.namespace {
			here = append(here, r)
		} else {
			moved[r.Namespace] = true
		}
	}
	// The chart first: a layer whose chart cannot be had keeps what runs.
	ch, err := h.loadChart(ctx, layer, t)
	if err != nil {
		return err
	}
	// A release has one namespace: when the layer's changes, the old
	// release goes before the new one is installed.
	for _, ns := range sortedKeys(moved) {
		h.log.Info("helm layer moves namespace: uninstalling the old release", "layer", t.layer, "release", t.release, "from", ns, "to", t.namespace)
		if err := h.uninstall(ctx, ns, t.release); err != nil {
			return fmt.Errorf("uninstall from namespace %q: %w", ns, err)
		}
	}
	cfg, err := h.config(ctx, t.namespace)
	if err != nil {
		return err
	}
	good := lastGood(here)
	if good == nil {
		// Nothing was ever deployed (a failed or interrupted install):
		// start clean rather than upgrade from a half-made release.
		if len(here) > 0 {
			if err := h.uninstall(ctx, t.namespace, t.release); err != nil {
				return fmt.Errorf("uninstall the failed release: %w", err)
			}
		}
		return h.install(ctx, cfg, ch, t)
	}
	if err := h.unstick(cfg, here); err != nil {
		return err
	}
	return h.upgrade(ctx, cfg, ch, t, good)
}

func (h *Applier) install(ctx context.Context, cfg *action.Configuration, ch *chart.Chart, t *target) error {
	in := action.NewInstall(cfg)
	in.ReleaseName = t.release
	in.Namespace = t.namespace
	in.CreateNamespace = true
	in.Timeout = h.opts.Timeout
	in.Labels = t.labels()
	in.Description = "installed by outpost"
	h.log.Info("helm install", "layer", t.layer, "release", t.release, "namespace", t.namespace, "chart", t.chart.Name, "version", t.chart.Version)
	if _, err := in.RunWithContext(ctx, ch, t.values); err != nil {
		// Helm leaves a failed release behind, which a second install
		// would trip over; what it created goes with it.
		if uerr := h.uninstall(context.WithoutCancel(ctx), t.namespace, t.release); uerr != nil {
			return fmt.Errorf("install chart %s %s: %w (removing the failed release: %v)", t.chart.Name, t.chart.Version, err, uerr)
		}
		return fmt.Errorf("install chart %s %s: %w", t.chart.Name, t.chart.Version, err)
	}
	return nil
}

func (h *Applier) upgrade(ctx context.Context, cfg *action.Configuration, ch *chart.Chart, t *target, good *release.Release) error {
	up := h.newUpgrade(cfg, t.namespace)
	// The layer says all the values: what an earlier revision was given
	// must not leak into this one.
	up.ResetValues = true
	up.Labels = t.labels()
	up.Description = "upgraded by outpost"
	// What a failed upgrade created goes at once; what it changed is put
	// back by the rollback below.
	up.CleanupOnFail = true
	h.log.Info("helm upgrade", "layer", t.layer, "release", t.release, "namespace", t.namespace, "chart", t.chart.Name, "version", t.chart.Version, "from", good.Version)
	_, err := up.RunWithContext(ctx, t.release, ch, t.values)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("upgrade to chart %s %s: %w", t.chart.Name, t.chart.Version, err)
	// Only a revision Helm recorded needs rolling back: a chart that does
	// not render fails before one exists, and the good one is still live.
	last, lerr := cfg.Releases.Last(t.release)
	if lerr != nil || last.Version == good.Version {
		return err
	}
	if rerr := h.rollback(ctx, cfg, t, good); rerr != nil {
		h.log.Error("helm rollback failed", "layer", t.layer, "release", t.release, "to", good.Version, "error", rerr.Error())
		return fmt.Errorf("%w; rollback to revision %d: %v", err, good.Version, rerr)
	}
	h.log.Warn("helm upgrade failed, rolled back", "layer", t.layer, "release", t.release, "to", good.Version, "error", err.Error())
	return fmt.Errorf("%w (rolled back to revision %d)", err, good.Version)
}

// rollback makes a new revision of good's chart, values and rendered
// objects. Helm's own Rollback diffs good against the failed revision, and
// fails ("no Deployment with the name … found") on every object good has
// and the failed one did not; an upgrade diffs against the deployed
// revision, which a failed upgrade leaves in place, so it cannot trip over
// that. Rendering good's manifest verbatim (post-renderer) restores exactly
// what ran.
func (h *Applier) rollback(ctx context.Context, cfg *action.Configuration, t *target, good *release.Release) error {
	up := h.newUpgrade(cfg, t.namespace)
	up.ResetValues = true
	up.Labels = map[string]string{}
	for _, k := range []string{LabelManagedBy, LabelConfigHash} {
		if v, ok := good.Labels[k]; ok {
			up.Labels[k] = v
		}
	}
	up.Description = fmt.Sprintf("Rollback to %d by outpost", good.Version)
	up.PostRenderer = fixedManifest(good.Manifest)
	vals := good.Config
	if vals == nil {
		vals = map[string]any{}
	}
	// Not cut short by the ctx that may have ended the upgrade: a
	// half-rolled-back release is the worst outcome.
	_, err := up.RunWithContext(context.WithoutCancel(ctx), t.release, good.Chart, vals)
	return err
}

func (h *Applier) newUpgrade(cfg *action.Configuration, namespace string) *action.Upgrade {
	up := action.NewUpgrade(cfg)
	up.Namespace = namespace
	up.Timeout = h.opts.Timeout
	up.MaxHistory = h.opts.MaxHistory
	return up
}

// unstick marks failed a last revision left pending (an agent killed during
// an install, upgrade or rollback): Helm refuses any operation on a release
// with one, and none can be running, since this host is the only one that
// acts on the release.
func (h *Applier) unstick(cfg *action.Configuration, rels []*release.Release) error {
	last := latest(rels)
	if last == nil || last.Info == nil || !last.Info.Status.IsPending() {
		return nil
	}
	h.log.Warn("helm release was left pending; marking it failed", "release", last.Name, "revision", last.Version, "status", last.Info.Status)
	last.Info.Status = release.StatusFailed
	last.Info.Description = "interrupted (" + last.Info.Description + "); marked failed by outpost"
	if err := cfg.Releases.Update(last); err != nil {
		return fmt.Errorf("mark pending revision %d failed: %w", last.Version, err)
	}
	return nil
}

// Remove takes away the layer's attached manifests, then uninstalls its
// release, in whatever namespace it is.
func (h *Applier) Remove(ctx context.Context, a engine.LayerAction) error {
	if !acts(a) {
		return nil
	}
	key := layerKey(a)
	if h.opts.Manifests != nil {
		if err := h.opts.Manifests.Remove(ctx, a); err != nil {
			return fmt.Errorf("helm layer %q: attached manifests: %w", key, err)
		}
	}
	name := ReleaseName(key)
	rels, err := h.releases(ctx, name)
	if err != nil {
		return fmt.Errorf("helm layer %q: %w", key, err)
	}
	nss := map[string]bool{}
	for _, r := range rels {
		nss[r.Namespace] = true
	}
	for _, ns := range sortedKeys(nss) {
		h.log.Info("helm uninstall", "layer", key, "release", name, "namespace", ns)
		if err := h.uninstall(ctx, ns, name); err != nil {
			return fmt.Errorf("helm layer %q: uninstall: %w", key, err)
		}
	}
	h.mu.Lock()
	delete(h.failed, name)
	h.mu.Unlock()
	return nil
}

func (h *Applier) uninstall(ctx context.Context, namespace, name string) error {
	cfg, err := h.config(ctx, namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = h.opts.Timeout
	un.IgnoreNotFound = true
	un.Description = "uninstalled by outpost"
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return err
	}
	return nil
}

// releases returns every stored revision of the named release that this
// package made, in every namespace.
func (h *Applier) releases(ctx context.Context, name string) ([]*release.Release, error) {
	cfg, err := h.config(ctx, "")
	if err != nil {
		return nil, err
	}
	rels, err := cfg.Releases.Driver.Query(map[string]string{"name": name, "owner": "helm", LabelManagedBy: managedBy})
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	return rels, nil
}

// config is a Helm action configuration on the cluster, for namespace (""
// for all namespaces, which only listing uses).
func (h *Applier) config(ctx context.Context, namespace string) (*action.Configuration, error) {
	rc, err := h.opts.RESTConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	rc = rest.CopyConfig(rc)
	if rc.QPS == 0 {
		// Helm's discovery and apply are bursty; client-go's default of
		// 5 per second makes a chart with many objects crawl.
		rc.QPS, rc.Burst = 50, 100
	}
	if rc.WarningHandler == nil {
		rc.WarningHandler = warningLogger{h.log}
	}
	g, err := newRESTGetter(rc, namespace)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	cfg := new(action.Configuration)
	debug := func(format string, v ...any) { h.log.Debug("helm: " + fmt.Sprintf(format, v...)) }
	if err := cfg.Init(g, namespace, "secret", debug); err != nil {
		return nil, fmt.Errorf("helm client: %w", err)
	}
	return cfg, nil
}

// loadChart fetches and loads the chart, and makes sure it is the one the
// layer names: a repository serving another chart under the pinned URL must
// not get it installed.
func (h *Applier) loadChart(ctx context.Context, layer v1.RenderedLayer, t *target) (*chart.Chart, error) {
	path, err := h.opts.Fetch(ctx, layer)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %s %s: %w", t.chart.Name, t.chart.Version, err)
	}
	ch, err := loader.LoadFile(path)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("load chart %s %s from %s: %w", t.chart.Name, t.chart.Version, path, err))
	}
	if ch.Metadata == nil || ch.Metadata.Name != t.chart.Name || !sameVersion(ch.Metadata.Version, t.chart.Version) {
		got := "no metadata"
		if ch.Metadata != nil {
			got = ch.Metadata.Name + " " + ch.Metadata.Version
		}
		return nil, engine.Permanent(fmt.Errorf("chart archive %s is %s, want %s %s", path, got, t.chart.Name, t.chart.Version))
	}
	return ch, nil
}

// lastGood is the revision to roll back to: the newest one that was
// deployed (a failed upgrade leaves the one before it "deployed"; after a
// failed rollback it may be "superseded").
func lastGood(rels []*release.Release) *release.Release {
	var best *release.Release
	for _, r := range rels {
		if r.Info == nil {
			continue
		}
		switch r.Info.Status {
		case release.StatusDeployed, release.StatusSuperseded:
		default:
			continue
		}
		if best == nil || goodRank(r) > goodRank(best) || goodRank(r) == goodRank(best) && r.Version > best.Version {
			best = r
		}
	}
	return best
}

func goodRank(r *release.Release) int {
	if r.Info.Status == release.StatusDeployed {
		return 1
	}
	return 0
}

func latest(rels []*release.Release) *release.Release {
	var last *release.Release
	for _, r := range rels {
		if last == nil || r.Version > last.Version {
			last = r
		}
	}
	return last
}

func layerKey(a engine.LayerAction) string {
	if a.Key != "" {
		return a.Key
	}
	return a.Layer.Name
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// fixedManifest is the post-renderer of a rollback: it replaces whatever
// the chart renders with a revision's recorded objects.
type fixedManifest string

func (m fixedManifest) Run(*bytes.Buffer) (*bytes.Buffer, error) {
	return bytes.NewBufferString(string(m)), nil
}

// warningLogger sends API server warnings (deprecated APIs a chart uses) to
// the agent's log instead of stderr.
type warningLogger struct{ log *slog.Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.log.Warn("kubernetes API warning", "warning", text)
	}
}
