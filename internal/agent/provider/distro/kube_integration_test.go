package distro

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
	"github.com/outpost-edge/outpost/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// The providers read node health with the real kubectl; here against a real
// kube-apiserver, with a Node object standing in for a kubelet (the test
// server has none).
func TestIntegrationNodeHealthThroughKubectl(t *testing.T) {
	env := kubetest.Start(t)
	ctx := context.Background()
	name := env.UniqueName("edge-node")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	created, err := env.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}},
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.44"}},
		NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.32.3+k3s1"},
	}
	if _, err := env.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	k := Kube{
		Env:        &Env{Root: hostos.Root{Dir: "/"}, Run: &hostexec.Exec{}},
		Kubectl:    []string{"kubectl"},
		Kubeconfig: env.Kubeconfig,
	}
	*k.Env = k.Env.WithDefaults()
	st, err := k.NodeStatus(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Joined || !st.NodeReady || !st.ControlPlaneUp || st.Address != "192.0.2.44" || st.KubernetesVersion == "" {
		t.Fatalf("node status through kubectl: %+v", st)
	}
	if ready, err := k.NodeReady(ctx, name); err != nil || !ready {
		t.Fatalf("NodeReady: %v %v", ready, err)
	}
	missing, err := k.NodeStatus(ctx, name+"-gone", false)
	if err != nil || missing.Joined {
		t.Fatalf("a node that does not exist: %+v %v", missing, err)
	}

	// Cordon and uncordon act on the real object.
	if _, err := k.run(ctx, "cordon", name); err != nil {
		t.Fatal(err)
	}
	n, _ := env.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if !n.Spec.Unschedulable {
		t.Fatal("cordon did not mark the node unschedulable")
	}
	if err := k.Uncordon(ctx, name); err != nil {
		t.Fatal(err)
	}
	n, _ = env.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if n.Spec.Unschedulable {
		t.Fatal("uncordon left the node unschedulable")
	}
}
