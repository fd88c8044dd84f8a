// Package manifests applies the Kubernetes manifests of layers to a cluster:
// the engine.LayerApplier for manifest layers, and the applier other layer
// kinds use for the manifests attached to them.
//
// Every object is applied by server-side apply with one field manager,
// "outpost", forcing conflicts: Outpost is the source of truth for the
// fields it sets, and re-applying takes them back from whoever changed
// them, while fields it does not set (a replica count an autoscaler owns,
// labels someone added) are left alone. Within a layer, Namespaces and
// CRDs go first, and objects of a CRD's kind wait until the CRD is
// Established; otherwise the manifests' order is kept.
//
// Each object gets the label outpost.dev/layer=<layer key> (LabelValue) and
// the annotation outpost.dev/layer-hash=<layer hash>. The kinds a layer has
// applied are kept in an inventory ConfigMap per layer,
// outpost-system/outpost-layer-<key>, created on demand; after applying, the
// layer's labelled objects of those kinds that are no longer in it are
// deleted (pruned), and Remove deletes all of them and the inventory. The
// namespaces default, kube-system, kube-public, kube-node-lease and
// outpost-system are never deleted, even if a layer applied them (to add a
// label, say). Any other object that existed before a layer applied it
// becomes the layer's all the same: pruning or removing the layer deletes
// it. An object that moved to another layer carries that layer's label and
// is left alone.
//
// Check is the drift detector: a layer is done only when its last apply
// completed at its hash and every object exists with the fields Outpost
// manages unchanged, which a server-side dry-run apply compared with the
// live object tells exactly (defaults, normalized quantities and fields
// owned by others do not count as changes). An object that was deleted or
// edited makes Check false and the engine applies the layer again. A
// mutating webhook that changes an object on every write would make a layer
// look changed for ever: its Check stays false and every pass re-applies.
//
// Only the node that creates the cluster writes (role init, or no role: a
// cluster of one node); Check, Apply and Remove on other nodes do nothing
// and say done, so two nodes whose specs differ for a moment never undo
// each other's work. Health reports a layer's state for the status: applied,
// progressing (workloads without their replicas available, CRDs not yet
// established) or failed with the error.
//
// The cluster is reached through a ConfigFunc called on every action, so
// distro providers can hand over the admin kubeconfig they write when the
// distro is installed.
package manifests
