//go:build tools

// Package tools pins the Kubernetes components the integration tests run; it is
// never compiled, it only makes `go mod` record the dependencies.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
