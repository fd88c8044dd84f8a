package manifests

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Layer health states, worst last.
const (
	// HealthApplied: every object of the layer exists at the layer's hash,
	// workloads are available and CRDs established.
	HealthApplied = "applied"
	// HealthProgressing: objects exist but are not ready yet (workloads
	// without their replicas available, CRDs not established, objects of
	// an older version of the layer or being deleted).
	HealthProgressing = "progressing"
	// HealthFailed: an object is missing or cannot be read; the message
	// says which and why.
	HealthFailed = "failed"
)

// Health reports the state of the layer's objects in the cluster and a
// message naming the first object in the worst state ("Deployment web/api:
// 0 of 2 replicas available", with "(and 3 more)" when others are too).
// Nodes that do not apply cluster-wide objects report "" and "": the init
// node reports the layer.
func (a *Applier) Health(ctx context.Context, act engine.LayerAction) (state, message string) {
	if !writer(act.Role) {
		return "", ""
	}
	objs, err := parseLayer(act.Layer)
	if err != nil {
		return HealthFailed, err.Error()
	}
	s, err := a.session(ctx, act.Key)
	if err != nil {
		return HealthFailed, err.Error()
	}
	crdKinds := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if gk, ok := crdKind(o.u); ok && o.gk() == gkCRD {
			crdKinds[gk] = true
		}
	}
	var failed, progressing []string
	for _, o := range objs {
		st, msg := s.objectHealth(ctx, o, act.Layer.Hash, crdKinds[o.gk()])
		switch st {
		case HealthFailed:
			failed = append(failed, msg)
		case HealthProgressing:
			progressing = append(progressing, msg)
		}
	}
	switch {
	case len(failed) > 0:
		return HealthFailed, summary(failed)
	case len(progressing) > 0:
		return HealthProgressing, summary(progressing)
	}
	return HealthApplied, fmt.Sprintf("%d objects applied", len(objs))
}

func summary(msgs []string) string {
	if len(msgs) == 1 {
		return msgs[0]
	}
	return fmt.Sprintf("%s (and %d more)", msgs[0], len(msgs)-1)
}

func (s *session) objectHealth(ctx context.Context, o object, hash string, customKind bool) (string, string) {
	res, err := s.resource(ctx, o, false)
	if meta.IsNoMatchError(err) && customKind {
		return HealthProgressing, fmt.Sprintf("%s: waiting for its CRD", o)
	}
	if err != nil {
		return HealthFailed, fmt.Sprintf("%s: %v", o, err)
	}
	live, err := res.Get(ctx, o.u.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return HealthFailed, fmt.Sprintf("%s: not found", o)
	}
	if err != nil {
		return HealthFailed, fmt.Sprintf("%s: %v", o, err)
	}
	if live.GetDeletionTimestamp() != nil {
		return HealthProgressing, fmt.Sprintf("%s: being deleted", o)
	}
	if live.GetAnnotations()[AnnotationHash] != hash {
		return HealthProgressing, fmt.Sprintf("%s: not yet at this version of the layer", o)
	}
	if ready, why := readiness(live); !ready {
		return HealthProgressing, fmt.Sprintf("%s: %s", o, why)
	}
	return HealthApplied, ""
}

// readiness says whether a workload has its replicas available (as
// `kubectl rollout status` judges it) and a CRD is established; other
// objects are ready once they exist.
func readiness(u *unstructured.Unstructured) (bool, string) {
	gk := u.GroupVersionKind().GroupKind()
	if gk == gkCRD {
		return crdEstablished(u)
	}
	if gk.Group != "apps" {
		return true, ""
	}
	num := func(path ...string) int64 {
		n, _, _ := unstructured.NestedInt64(u.Object, path...)
		return n
	}
	if observed := num("status", "observedGeneration"); observed < u.GetGeneration() {
		return false, "the controller has not seen the latest version yet"
	}
	switch gk.Kind {
	case "Deployment", "StatefulSet":
		want := int64(1)
		if n, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found {
			want = n
		}
		updated := num("status", "updatedReplicas")
		avail := num("status", "availableReplicas")
		if updated < want || avail < want {
			return false, fmt.Sprintf("%d of %d replicas available, %d updated", avail, want, updated)
		}
	case "DaemonSet":
		want := num("status", "desiredNumberScheduled")
		updated := num("status", "updatedNumberScheduled")
		avail := num("status", "numberAvailable")
		if updated < want || avail < want {
			return false, fmt.Sprintf("%d of %d pods available, %d updated", avail, want, updated)
		}
	}
	return true, ""
}
