package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestMain(m *testing.M) { Main(m) }

// TestIntegrationSharedServer: every Start reaches the one server, as the
// version we build, with clients, dynamic client and kubectl all working.
func TestIntegrationSharedServer(t *testing.T) {
	ctx := context.Background()
	e1, e2 := Start(t), Start(t)
	if e1.Config.Host != e2.Config.Host {
		t.Fatalf("two Starts got two servers: %s and %s", e1.Config.Host, e2.Config.Host)
	}
	v, err := e1.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != Version {
		t.Errorf("server version %s, want %s (was it built with scripts/build-kube.sh?)", v.GitVersion, Version)
	}

	ns := e1.UniqueName("kubetest")
	if _, err := e1.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: ns}, Data: map[string]string{"k": "v"}}
	if _, err := e1.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The second Env sees what the first created.
	got, err := e2.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns).Get(ctx, "c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructuredString(got.Object, "data", "k"); v != "v" {
		t.Errorf("data.k = %q, want v", v)
	}

	out, err := exec.Command("kubectl", "--kubeconfig", e1.Kubeconfig, "-n", ns, "get", "configmap", "c", "-o", "jsonpath={.data.k}").CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("kubectl not installed")
	}
	if err != nil || string(out) != "v" {
		t.Errorf("kubectl get: %v: %q, want v", err, out)
	}
}

func unstructuredString(m map[string]any, path ...string) (string, bool, error) {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return "", false, fmt.Errorf("%s is not an object", p)
		}
		cur = mm[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

func TestUniqueName(t *testing.T) {
	var e Env
	a, b := e.UniqueName("x"), e.UniqueName("x")
	if a == b || !strings.HasPrefix(a, "x-") {
		t.Errorf("UniqueName gave %q and %q", a, b)
	}
}

// fakeTB records how Start ended a test instead of ending it.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestStartFailed(t *testing.T) {
	missing := &missingError{"kube-apiserver v1.32.3 not built", "build it once with scripts/build-kube.sh"}
	tests := []struct {
		name        string
		err         error
		ci          bool
		skip, fatal bool
	}{
		{"missing binary", missing, false, true, false},
		{"missing binary under CI", missing, true, false, true},
		{"other error", errors.New("etcd exited"), false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			startFailed(f, tt.err, tt.ci)
			if (f.skipped != "") != tt.skip || (f.failed != "") != tt.fatal {
				t.Fatalf("skipped %q, failed %q", f.skipped, f.failed)
			}
			if tt.skip && !strings.Contains(f.skipped, "build-kube.sh") {
				t.Errorf("skip message %q does not say how to build kube-apiserver", f.skipped)
			}
		})
	}
}

func TestCachePath(t *testing.T) {
	t.Setenv("OUTPOST_KUBE_CACHE", "/c")
	if got, want := CachePath(), "/c/"+Version+"/kube-apiserver"; got != want {
		t.Errorf("CachePath() = %s, want %s", got, want)
	}
	t.Setenv("OUTPOST_KUBE_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got, want := CachePath(), "/x/outpost/kube/"+Version+"/kube-apiserver"; got != want {
		t.Errorf("CachePath() = %s, want %s", got, want)
	}
}
