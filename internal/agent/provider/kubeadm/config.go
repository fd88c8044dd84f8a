package kubeadm

import (
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider/distro"
)

// kubeadmConfig renders kubeadm-config.yaml: for the init node its
// InitConfiguration, ClusterConfiguration, KubeletConfiguration and
// KubeProxyConfiguration from the values; for the others a
// JoinConfiguration. The provider's settings (node name, token, endpoint,
// version) go over the values.
func kubeadmConfig(v distro.Values, a engine.DistroAction) ([]byte, error) {
	if a.JoinToken == "" {
		return nil, engine.Permanent(fmt.Errorf("kubeadm: the spec carries no join token"))
	}
	maps := map[string]map[string]any{}
	for _, k := range []string{"initConfiguration", "clusterConfiguration", "kubeletConfiguration", "kubeProxyConfiguration"} {
		m, err := v.Map(k)
		if err != nil {
			return nil, err
		}
		maps[k] = distro.Clone(m)
	}
	init := maps["initConfiguration"]
	api, _ := init["apiVersion"].(string)
	if api == "" {
		api, _ = maps["clusterConfiguration"]["apiVersion"].(string)
	}
	if api == "" {
		api = DefaultAPIVersion
	}
	nr, _ := init["nodeRegistration"].(map[string]any)
	nr = distro.Merge(nr, map[string]any{"name": a.Node, "criSocket": CRISocket})
	if distro.IsServer(a.Role) && a.AllowWorkloads {
		// An empty list, not none: none means kubeadm's control-plane
		// taint.
		nr["taints"] = []any{}
	} else {
		delete(nr, "taints")
	}
	token := BootstrapToken(a.JoinToken)
	var docs []map[string]any
	switch a.Role {
	case v1.RoleInit:
		init["apiVersion"], init["kind"] = api, "InitConfiguration"
		init["bootstrapTokens"] = []any{map[string]any{
			"token":       token,
			"ttl":         "0s",
			"description": "Outpost join token of cluster " + a.Cluster,
			"groups":      []any{"system:bootstrappers:kubeadm:default-node-token"},
			"usages":      []any{"signing", "authentication"},
		}}
		init["certificateKey"] = CertificateKey(a.JoinToken)
		init["nodeRegistration"] = nr
		cc := maps["clusterConfiguration"]
		cc["apiVersion"], cc["kind"] = api, "ClusterConfiguration"
		cc["kubernetesVersion"] = "v" + distro.KubernetesVersion(a.Layer)
		cc["clusterName"] = a.Cluster
		if a.VIP != "" {
			cc["controlPlaneEndpoint"] = distro.Endpoint(a.VIP, APIPort)
		}
		docs = append(docs, init, cc)
		for _, k := range []string{"kubeletConfiguration", "kubeProxyConfiguration"} {
			if len(maps[k]) > 0 {
				docs = append(docs, maps[k])
			}
		}
	case v1.RoleControlPlane, v1.RoleWorker:
		if a.JoinEndpoint == "" {
			return nil, engine.Permanent(fmt.Errorf("kubeadm: a %s node needs a join endpoint", a.Role))
		}
		join := map[string]any{
			"apiVersion": api,
			"kind":       "JoinConfiguration",
			"discovery": map[string]any{"bootstrapToken": map[string]any{
				"apiServerEndpoint":        distro.Endpoint(a.JoinEndpoint, APIPort),
				"token":                    token,
				"unsafeSkipCAVerification": true,
			}},
			"nodeRegistration": nr,
		}
		if a.Role == v1.RoleControlPlane {
			join["controlPlane"] = map[string]any{"certificateKey": CertificateKey(a.JoinToken)}
		}
		docs = append(docs, join)
	default:
		return nil, engine.Permanent(fmt.Errorf("kubeadm: unknown role %q", a.Role))
	}
	var b strings.Builder
	b.WriteString("# Written by the Outpost agent from the kubeadm layer; it is rewritten at every install and upgrade.\n")
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		out, err := distro.MarshalYAML(d)
		if err != nil {
			return nil, fmt.Errorf("kubeadm config: %w", err)
		}
		b.Write(out)
	}
	return []byte(b.String()), nil
}

// containerdConfig renders /etc/containerd/config.toml (containerd 1.7,
// config version 2) from values.containerd.
func containerdConfig(v distro.Values) ([]byte, error) {
	m, err := v.Map("containerd")
	if err != nil {
		return nil, err
	}
	sandbox := v.String("containerd.sandboxImage", "registry.k8s.io/pause:3.10")
	systemd := true
	if b, ok := m["systemdCgroup"].(bool); ok {
		systemd = b
	}
	return []byte(`# Written by the Outpost agent from the kubeadm layer's values.containerd.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ` + strconv.Quote(sandbox) + `

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = ` + strconv.FormatBool(systemd) + `
`), nil
}

// containerdUnit is containerd's own containerd.service.
const containerdUnit = `[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target dbus.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd

Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5

# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNPROC=infinity
LimitCORE=infinity

# Comment TasksMax if your systemd version does not supports it.
# Only systemd 226 and above support this version.
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`

const crictlConfig = `runtime-endpoint: ` + CRISocket + `
image-endpoint: ` + CRISocket + `
timeout: 10
`

// kubeletUnit and kubeletDropIn are the kubernetes/release packages'
// kubelet.service and 10-kubeadm.conf, with the kubelet in /usr/local/bin.
const kubeletUnit = `[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`

const kubeletDropIn = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`
