// Package provider assembles the real providers of the agent's engine: the
// k3s, rke2 and kubeadm distro providers and the OS layer applier, all
// working on one host root through one command runner and one artifact
// fetcher. The simulated providers (package simulated) stand in for them
// on simulated hosts; the manifest and Helm appliers are added by the
// agent next to these.
//
// docs/providers.md says how each provider lays out a host and how to run
// one on a real Ubuntu host.
package provider
