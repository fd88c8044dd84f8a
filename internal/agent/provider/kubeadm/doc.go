// Package kubeadm is the distro provider for upstream Kubernetes
// bootstrapped with kubeadm: it installs the pack's kubeadm, kubelet,
// kubectl, containerd, runc, CNI plugins and crictl, writes containerd's
// config and the kubelet unit with kubeadm's drop-in, renders
// /etc/kubernetes/kubeadm-config.yaml from the layer's values, and runs
// kubeadm init or kubeadm join; it upgrades with kubeadm upgrade apply (the
// init node) or kubeadm upgrade node (the others) and removes everything
// after kubeadm reset -f.
//
// Host layout:
//
//	/usr/local/bin/{kubeadm,kubelet,kubectl,crictl}, /usr/local/sbin/runc
//	/usr/local/bin/containerd*, ctr                          from the containerd tarball
//	/opt/cni/bin/                                            from the CNI plugins tarball
//	/etc/containerd/config.toml, /etc/crictl.yaml
//	/etc/systemd/system/containerd.service (+ .d/http-proxy.conf with the site's proxy)
//	/etc/systemd/system/kubelet.service + kubelet.service.d/10-kubeadm.conf
//	/etc/kubernetes/kubeadm-config.yaml                      0600: holds the bootstrap token
//	/etc/kubernetes/manifests/kube-vip.yaml                  the VIP, on control-plane nodes
//
// # The join token
//
// The hub gives every cluster one join secret, 48 hex digits. kubeadm
// wants a bootstrap token "[a-z0-9]{6}.[a-z0-9]{16}" and, for control-plane
// joins, a certificate key of 32 bytes in hex that encrypts the control
// plane's certificates in the kubeadm-certs Secret. Both are derived from
// the secret, so every node of the cluster computes the same ones without
// the hub knowing kubeadm: HMAC-SHA256 keyed with the secret over a fixed
// label ("outpost kubeadm bootstrap token", "outpost kubeadm certificate
// key"); the token is the last 22 base-36 digits of the first MAC, split
// 6.16 (the 16 secret digits are as strong as the ones kubeadm draws
// itself), the key the hex of the second. The derivation is one-way: a leaked kubeadm token does not give
// away the hub's secret. The init node creates the token with ttl 0 (it
// never expires, like the k3s and rke2 tokens: hosts join whenever the hub
// scales the cluster) and uploads the certificates with --upload-certs.
// kubeadm deletes the uploaded certificates after two hours: a
// control-plane node that joins later needs "kubeadm init phase
// upload-certs --upload-certs --config /etc/kubernetes/kubeadm-config.yaml"
// run on the init node first.
//
// # Discovery
//
// Joining nodes use token discovery with unsafeSkipCAVerification: true
// rather than caCertHashes. The CA is made by kubeadm init on the init
// node, so its hash exists only after the cluster does, and the hub has no
// channel to carry it back to the joiners yet. The trust then rests on the
// token: kubeadm still checks the cluster-info ConfigMap's signature, made
// with the token's secret, so a node only trusts a CA offered by someone
// who holds the cluster's join secret — which the hub hands out only over
// the agent's mTLS connection, and which already grants joining. Pinning
// the CA needs the init node to report its CA hash and the hub to put it
// in the joiners' specs; see docs/providers.md.
package kubeadm
