// Package k3s is the distro provider for k3s (https://k3s.io): it installs
// the single k3s binary, renders /etc/rancher/k3s/config.yaml and its
// drop-ins from the layer's values and the node's role, writes the systemd
// unit k3s's install script would (k3s.service for servers, k3s-agent.service
// for agents), and starts it; it upgrades in place and removes everything
// as k3s-uninstall.sh would.
//
// Host layout:
//
//	/usr/local/bin/k3s                                 the binary (0755)
//	/etc/rancher/k3s/config.yaml                       values.config + role (0600: holds the token)
//	/etc/rancher/k3s/config.yaml.d/50-<name>.yaml      one per values.configDropIns entry
//	/etc/systemd/system/k3s.service                    server unit (k3s-agent.service on workers)
//	/etc/systemd/system/k3s.service.env                the site's proxy for containerd (0600)
//	/var/lib/rancher/k3s/agent/pod-manifests/kube-vip.yaml   the VIP, on servers when the cluster has one
//
// The role decides the rest of config.yaml: the init node gets
// cluster-init: true (embedded etcd, so that more servers can join later),
// a control-plane node server: https://<join endpoint>:6443, a worker the
// same in agent mode; all get the cluster's token and the host ID as
// node-name. Servers add the VIP to tls-san and, unless the cluster allows
// workloads on them, the CriticalAddonsOnly=true:NoExecute taint. The
// seed's defaults for a profile with a CNI layer (flannel, network policy
// and metrics-server off) arrive as the external-cni preset's drop-in.
package k3s
