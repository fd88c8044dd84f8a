// Package distro holds what the k3s, rke2 and kubeadm providers share: the
// environment they work in (a root, a command runner, an artifact fetcher),
// their state file, file installation and archive extraction through the
// root, rendering the Rancher-style config.yaml and its drop-ins from a
// layer's values, systemd units, the OS layer's hooks, the kube-vip static
// pod, kubectl for node status, cordon, drain and uncordon, and the
// k3s-killall-style cleanup that leaves a host clean after remove.
//
// # Host layout
//
// Every provider keeps a state file, /var/lib/outpost-agent/providers/<pack>.json
// (0600), written before it changes the host (phase "installing" or
// "upgrading") and again when it is done ("installed"). Check trusts it, so an
// agent killed half-way redoes the action, and every step of an action is
// safe to repeat. Artifacts are cached by the fetch package under
// /var/lib/outpost-agent/artifacts and dropped on remove.
//
// # OS layer hooks
//
// The OS layer's preKubernetesCommands and postKubernetesCommands are
// written by the os applier to /etc/outpost/hooks/pre-kubernetes.sh and
// post-kubernetes.sh. A provider runs the first, if it is there, right
// before it starts or restarts the distro's service (install and upgrade),
// and the second right after: every start of the distro sees them, in that
// order, and the OS layer needs to know nothing about the distro. The
// scripts run with /bin/sh -e, so they must be safe to run again.
//
// # Credentials for drain
//
// Server nodes use the distro's admin kubeconfig. A worker has only its
// kubelet's credentials, which may read its own Node but not evict pods: a
// worker's upgrade therefore restarts the distro in place without cordon
// and drain (the distros keep containers running across a restart of their
// service) and only waits for the node to be Ready again. A single-node
// cluster is not drained either: there is nowhere for its pods to go.
package distro
