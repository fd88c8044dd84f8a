package distro

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"text/template"

	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// DefaultKubeVIPImage is the kube-vip of the built-in kube-vip pack.
const DefaultKubeVIPImage = "ghcr.io/kube-vip/kube-vip:v0.8.3"

// KubeVIP is the static pod that holds the control-plane VIP on the
// control-plane nodes (ARP, leader election through a Lease in
// kube-system). A static pod rather than the kube-vip pack's DaemonSet,
// because the VIP must exist before the first server's API does, for
// kubeadm, and before any joiner can reach the cluster, for all three.
type KubeVIP struct {
	VIP string
	// Interface to announce on; empty lets kube-vip take the one of the
	// default route.
	Interface string
	Image     string
	// Kubeconfig is the host path of the kubeconfig kube-vip talks to the
	// local API server with.
	Kubeconfig string
}

var (
	reImage     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9./:@_-]*$`)
	reInterface = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$`)
)

// WantsKubeVIP reports whether the node runs kube-vip: a control-plane
// node of a cluster whose VIP is an IP address. A VIP that is a DNS name
// (dynamic DNS, a load balancer of the site's) is someone else's to
// answer; it only goes into the API server's certificate.
func WantsKubeVIP(a engine.DistroAction) bool {
	return a.VIP != "" && IsServer(a.Role) && net.ParseIP(a.VIP) != nil
}

// KubeVIPFor reads the optional kubeVip mapping of the distro values
// (image, interface) for a VIP. They go into YAML as they are, so they are
// checked first.
func KubeVIPFor(v Values, vip, kubeconfig string) (KubeVIP, error) {
	k := KubeVIP{
		VIP:        vip,
		Interface:  v.String("kubeVip.interface", ""),
		Image:      v.String("kubeVip.image", DefaultKubeVIPImage),
		Kubeconfig: kubeconfig,
	}
	if net.ParseIP(vip) == nil {
		return k, engine.Permanent(fmt.Errorf("kube-vip: VIP %q is not an IP address", vip))
	}
	if !reImage.MatchString(k.Image) {
		return k, engine.Permanent(fmt.Errorf("values: kubeVip.image %q is not an image reference", k.Image))
	}
	if k.Interface != "" && !reInterface.MatchString(k.Interface) {
		return k, engine.Permanent(fmt.Errorf("values: kubeVip.interface %q is not an interface name", k.Interface))
	}
	return k, nil
}

var kubeVIPTemplate = template.Must(template.New("kube-vip").Parse(`# Written by the Outpost agent: holds the control-plane VIP {{ .VIP }}.
apiVersion: v1
kind: Pod
metadata:
  name: kube-vip
  namespace: kube-system
spec:
  containers:
    - name: kube-vip
      image: {{ .Image }}
      imagePullPolicy: IfNotPresent
      args:
        - manager
      env:
        - name: vip_arp
          value: "true"
        - name: port
          value: "6443"
        - name: vip_nodename
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
{{- if .Interface }}
        - name: vip_interface
          value: {{ .Interface }}
{{- end }}
        - name: vip_cidr
          value: "32"
        - name: dns_mode
          value: first
        - name: cp_enable
          value: "true"
        - name: cp_namespace
          value: kube-system
        - name: vip_leaderelection
          value: "true"
        - name: vip_leasename
          value: plndr-cp-lock
        - name: vip_leaseduration
          value: "5"
        - name: vip_renewdeadline
          value: "3"
        - name: vip_retryperiod
          value: "1"
        - name: address
          value: {{ .VIP }}
      securityContext:
        capabilities:
          add:
            - NET_ADMIN
            - NET_RAW
      volumeMounts:
        - mountPath: /etc/kubernetes/admin.conf
          name: kubeconfig
  hostAliases:
    - hostnames:
        - kubernetes
      ip: 127.0.0.1
  hostNetwork: true
  volumes:
    - name: kubeconfig
      hostPath:
        path: {{ .Kubeconfig }}
`))

// Manifest is the static pod's YAML.
func (k KubeVIP) Manifest() []byte {
	var b strings.Builder
	if err := kubeVIPTemplate.Execute(&b, k); err != nil {
		panic(err) // the template and its data are fixed
	}
	return []byte(b.String())
}
