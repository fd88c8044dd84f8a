package helm

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Layer health states, as Health reports them.
const (
	// HealthApplied: the release is deployed at the layer's configuration
	// and every workload in it is ready by Helm's own measure (the one
	// `helm install --wait` uses).
	HealthApplied = "applied"
	// HealthProgressing: deployed, but workloads are not ready yet, or a
	// Helm operation is under way.
	HealthProgressing = "progressing"
	// HealthFailed: not installed, failed, or rolled back from the layer's
	// configuration; the message says which, with Helm's error.
	HealthFailed = "failed"
)

// maxNotReady is how many unready objects a health message names.
const maxNotReady = 3

// Health says how the layer is doing: its release and, when there is a
// manifests applier, its attached manifests (the worse of the two).
// Nodes other than the init node do not look (see the package
// documentation) and get state "": leave the layer out of their report.
func (h *Applier) Health(ctx context.Context, a engine.LayerAction) (state, message string) {
	if !acts(a) {
		return "", ""
	}
	state, message = h.releaseHealth(ctx, a)
	if h.opts.Manifests == nil || state == HealthFailed {
		return state, message
	}
	ms, mm := h.opts.Manifests.Health(ctx, a)
	if healthRank(ms) > healthRank(state) {
		return ms, "attached manifests: " + mm
	}
	return state, message
}

func healthRank(s string) int {
	switch s {
	case HealthApplied:
		return 1
	case HealthProgressing:
		return 2
	case HealthFailed:
		return 3
	}
	return 0
}

func (h *Applier) releaseHealth(ctx context.Context, a engine.LayerAction) (state, message string) {
	t, err := targetOf(a)
	if err != nil {
		return HealthFailed, err.Error()
	}
	rels, err := h.releases(ctx, t.release)
	if err != nil {
		return HealthFailed, err.Error()
	}
	var here []*release.Release
	for _, r := range rels {
		if r.Namespace == t.namespace {
			here = append(here, r)
		}
	}
	last := latest(here)
	switch {
	case last == nil:
		msg := fmt.Sprintf("release %q is not installed in namespace %q", t.release, t.namespace)
		if e := h.lastError(t.release); e != "" {
			msg += ": " + e
		}
		return HealthFailed, msg
	case last.Info == nil:
		return HealthFailed, fmt.Sprintf("release %q revision %d has no status", t.release, last.Version)
	case last.Info.Status.IsPending():
		return HealthProgressing, fmt.Sprintf("release %q revision %d is %s", t.release, last.Version, last.Info.Status)
	case last.Info.Status != release.StatusDeployed:
		return HealthFailed, fmt.Sprintf("release %q revision %d is %s: %s", t.release, last.Version, last.Info.Status, last.Info.Description)
	case !t.deployedAs(last):
		msg := fmt.Sprintf("release %q runs revision %d (chart %s), not the layer's configuration", t.release, last.Version, chartOf(last))
		if e := h.lastError(t.release); e != "" {
			msg += "; last apply: " + e
		} else if f := lastFailed(here); f != nil {
			msg += fmt.Sprintf("; revision %d failed: %s", f.Version, f.Info.Description)
		}
		return HealthFailed, msg
	}
	notReady, err := h.notReady(ctx, t.namespace, last)
	if err != nil {
		return HealthProgressing, fmt.Sprintf("release %q: cannot check readiness: %v", t.release, err)
	}
	if len(notReady) > 0 {
		more := ""
		if len(notReady) > maxNotReady {
			more = fmt.Sprintf(" and %d more", len(notReady)-maxNotReady)
			notReady = notReady[:maxNotReady]
		}
		return HealthProgressing, fmt.Sprintf("waiting for %s%s", strings.Join(notReady, ", "), more)
	}
	return HealthApplied, ""
}

// notReady names the release's objects that are not ready, as
// "Deployment ns/name".
func (h *Applier) notReady(ctx context.Context, namespace string, rel *release.Release) ([]string, error) {
	cfg, err := h.config(ctx, namespace)
	if err != nil {
		return nil, err
	}
	infos, err := cfg.KubeClient.Build(bytes.NewBufferString(rel.Manifest), false)
	if err != nil {
		return nil, err
	}
	rc, err := cfg.RESTClientGetter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	checker := kube.NewReadyChecker(cs, func(string, ...any) {}, kube.PausedAsReady(true), kube.CheckJobs(true))
	var out []string
	err = infos.Visit(func(info *resource.Info, err error) error {
		if err != nil {
			return err
		}
		ok, err := checker.IsReady(ctx, info)
		if err != nil || !ok {
			out = append(out, fmt.Sprintf("%s %s/%s", info.Mapping.GroupVersionKind.Kind, info.Namespace, info.Name))
		}
		return nil
	})
	return out, err
}

func lastFailed(rels []*release.Release) *release.Release {
	var f *release.Release
	for _, r := range rels {
		if r.Info != nil && r.Info.Status == release.StatusFailed && (f == nil || r.Version > f.Version) {
			f = r
		}
	}
	return f
}

func chartOf(r *release.Release) string {
	if r.Chart == nil || r.Chart.Metadata == nil {
		return "unknown"
	}
	return r.Chart.Metadata.Name + " " + r.Chart.Metadata.Version
}
