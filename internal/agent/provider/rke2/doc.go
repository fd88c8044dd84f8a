// Package rke2 is the distro provider for RKE2 (https://docs.rke2.io): it
// extracts the release tarball under /usr/local as rke2's install script
// does (bin/rke2, the systemd units, share/rke2), renders
// /etc/rancher/rke2/config.yaml and its drop-ins from the layer's values
// and the node's role, and starts rke2-server.service or
// rke2-agent.service; it upgrades in place and removes everything as
// rke2-killall.sh and rke2-uninstall.sh would.
//
// Host layout:
//
//	/usr/local/bin/rke2, rke2-killall.sh, rke2-uninstall.sh    from the tarball
//	/usr/local/lib/systemd/system/rke2-{server,agent}.service  from the tarball
//	/usr/local/share/rke2/                                     from the tarball
//	/etc/rancher/rke2/config.yaml                              values.config + role (0600: holds the token)
//	/etc/rancher/rke2/config.yaml.d/50-<name>.yaml             one per values.configDropIns entry
//	/etc/default/rke2-server (rke2-agent)                      the site's proxy (0600), read by the unit
//	/var/lib/rancher/rke2/agent/pod-manifests/kube-vip.yaml    the VIP, on servers when the cluster has one
//
// Joining nodes reach the first server's supervisor on port 9345 at the
// join endpoint (the VIP); the API stays on 6443. RKE2 always runs embedded
// etcd, so the init node needs no cluster-init. Node status, cordon and
// drain use /var/lib/rancher/rke2/bin/kubectl (which rke2 unpacks at its
// first start) with /etc/rancher/rke2/rke2.yaml on servers and the
// kubelet's kubeconfig on agents.
package rke2
