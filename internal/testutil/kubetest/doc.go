// Package kubetest runs a real, throwaway Kubernetes API server (etcd and
// kube-apiserver, nothing else) for tests, so code that talks to Kubernetes is
// tested against the API it meets in production — server-side apply, field
// managers, CRD establishment, discovery — rather than a fake client.
//
// One etcd and one kube-apiserver are started per test binary, at the first
// Start, and every caller of Start shares them: a start costs a few seconds
// and tests stay independent by working in namespaces of their own
// (Env.UniqueName gives names no other test of the binary uses). Nothing is
// cleaned up between tests. There is no controller-manager, scheduler or
// kubelet, so:
//
//   - deleted namespaces stay Terminating for ever: never reuse a namespace
//     name, and do not wait for a namespace to go away;
//   - Deployments, DaemonSets and StatefulSets get no Pods and never report
//     available, and the garbage collector does not delete dependents;
//   - what runs inside the API server does work: admission, RBAC,
//     validation, CRDs becoming Established, CRD deletion removing its
//     custom resources.
//
// A package that uses it calls Main from its TestMain so the servers are
// stopped when the tests end:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
// The binaries: kube-apiserver is built from source by scripts/build-kube.sh
// (about 4 minutes once per machine) into a cache outside the work tree,
// ${OUTPOST_KUBE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/outpost/kube}/v1.32.3/kube-apiserver
// (OUTPOST_KUBE_APISERVER names another binary); etcd comes from the Debian
// package etcd-server (etcd in PATH or /usr/bin/etcd). When one is missing the
// tests are skipped with the command that provides it, except under CI (the
// CI environment variable is set): there a missing kube-apiserver is built by
// running scripts/build-kube.sh, and a missing etcd is a failure.
//
// Clients authenticate with a bearer token of a system:masters user, so RBAC
// is on but never in the way; Env.Kubeconfig is a file kubectl can use.
package kubetest
