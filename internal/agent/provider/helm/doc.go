// Package helm applies layers of type helm (v1.PackHelm) to the cluster with
// the Helm SDK: the layer's chart is installed as a Helm release, upgraded
// when its chart or values change, rolled back when an upgrade fails, and
// uninstalled when the layer leaves the spec. It is the engine's
// LayerApplier for v1.PackHelm.
//
// # Who acts
//
// A Helm release is a cluster-wide object, and every node of a cluster gets
// the same layers in its spec. Only the init node (Role v1.RoleInit, or a
// node without a role, which is a cluster of its own) talks to Helm; on
// every other node Check reports the layer done, Apply and Remove do
// nothing and Health reports nothing. Letting all control-plane nodes race
// for one release would make them fight over revisions (Helm's
// pending-upgrade lock fails the losers) and, while their specs differ for
// a moment during a change, undo each other's upgrades; the init node is
// the one the hub waits for before the others join, and it stays the
// cluster's owner of add-ons. The manifests applier follows the same rule.
//
// # Names
//
// The release is named after the layer (its LayerAction.Key, with "#2"
// written "-2"). Its namespace is, in order:
//
//  1. values `outpost.namespace` — a private key, removed before the chart
//     sees the values, for packs that need a fixed namespace (rook-ceph's
//     operator and cluster charts must agree on one);
//  2. values `namespace` when it is a string — charts that take their
//     namespace as a value read it there too;
//  3. else "outpost-<release>".
//
// The namespace is created when missing and left in place by Remove: it may
// hold what the chart did not create (PersistentVolumeClaims, secrets put
// there by hand), and deleting a namespace is not undone by adding the layer
// again.
//
// # Change detection
//
// ConfigHash digests what Helm is given: release name, namespace, chart
// reference (repository, name, version, digest) and the values parsed (so
// that comments, key order and formatting do not count). It is stored in
// the release's labels (Helm keeps them on its storage Secret), together
// with outpost.dev/managed-by, and Check compares it and the chart version
// of the deployed revision. The hub's layer hash is not used: it changes
// with things Helm does not see (where the chart archive is mirrored, the
// attached manifests), which must not cause an upgrade. Only releases with
// outpost.dev/managed-by=outpost are ever upgraded or uninstalled.
//
// # Attached manifests
//
// Manifests attached to a helm layer (Layer.Manifests) are applied after
// the chart and removed before it by Options.Manifests, the manifests
// package's applier: they are typically objects of kinds the chart brings
// (a cert-manager ClusterIssuer), which Helm could not even map before the
// chart's CRDs exist, and the manifests applier waits for CRDs to be
// established. Check and Health cover both parts. Without a manifests
// applier, a layer with attached manifests is refused (a permanent error).
//
// # Failures
//
// Nothing waits for workloads (no --wait: rollouts take as long as they
// take, and a node is never blocked on an image pull); Health reports them
// "progressing" until Helm's own readiness checks (those of --wait) pass.
//
// An install that fails is uninstalled, so the next attempt starts clean.
// An upgrade that fails deletes the objects it created and is rolled back:
// a new revision with the last deployed revision's chart, values and
// rendered objects, so the release history reads "failed", then "deployed"
// at the old configuration, and the error is returned with "(rolled back
// to revision N)". Helm's own rollback is not used: it diffs against the
// failed revision and stops at the first object the good revision has and
// the failed one does not. A chart that does not render fails before Helm
// records a revision, and nothing needs undoing. A revision left pending by
// an agent killed in the middle of an operation is marked failed before the
// next one, since Helm would otherwise refuse every later operation on the
// release.
//
// As with the helm CLI, a chart's crds/ directory is installed on the first
// install only; charts that template their CRDs (cert-manager's
// crds.enabled) upgrade them like any other object.
//
// # Charts
//
// The chart archive comes from a Fetcher. HTTPFetcher downloads the chart
// artifact the catalog recorded (or resolves the chart in the repository's
// index.yaml), verifies its sha256 and keeps it by digest; its Rewrite hook
// routes downloads through the hub's artifact cache (ViaHub).
// ContentFetcher finds charts in imported content bundles, and Chain tries
// one fetcher after another. Whatever the source, the loaded chart must be
// the one the layer names, at its version.
package helm
