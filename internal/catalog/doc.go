// Package catalog is where packs come from and how their versions are
// chosen: the built-in catalog embedded in the binary, pack validation,
// version trains, and fetching packs from registries.
//
// # Packs
//
// A pack (v1.PackSpec) is one building block of a cluster profile, in one
// layer: os, k8s, cni, csi or addon. OS and Kubernetes packs are of type
// distro (the agent installs them on the host); the others are helm (a
// chart) or manifest (Kubernetes manifests, Go templates over the layer's
// values). ValidatePack says what a valid pack is; every pack a registry
// offers is validated before the hub sees it.
//
// # Versions and trains
//
// Pack versions are semantic versions with the build metadata upstream
// uses: k3s 1.30.4+k3s1, rke2 1.30.4+rke2r1. A profile layer names a pin
// (1.30.4+k3s1) or a train (1.x, 1.30.x, latest, or a range such as
// ">=1.29 <1.31") and Resolve picks the version. Build metadata breaks
// ties on purpose, so that k3s's second release of a Kubernetes patch
// (+k3s2) replaces the first. Trains never take a prerelease unless they
// name one, and ResolvePack makes them skip deprecated versions.
//
// # Registries
//
// Fetch reads one registry (v1.RegistrySpec):
//
//   - builtin: the packs in builtin/*.yaml, one pack file each.
//   - pack-index: a PackIndex document over HTTP(S), or a directory on the
//     hub holding an index.yaml or, without one, pack files.
//   - helm: a Helm chart repository's index.yaml.
//
// A pack index lists v1.PackSpecs:
//
//	apiVersion: outpost.dev/v1
//	kind: PackIndex
//	packs:
//	  - name: acme-agent
//	    layer: addon
//	    type: helm
//	    versions:
//	      - version: 2.3.1
//	        chart: {repository: https://charts.acme.example, name: acme-agent, version: 2.3.1}
//	        values: |
//	          replicas: 1
//
// A pack file is one such v1.PackSpec on its own, like the built-in ones.
// Unknown fields are ignored in an index (so that an index written for a
// newer Outpost still loads) and are errors in a pack file (written by
// hand, so a misspelt key is caught). The registry field of the packs is
// overwritten with the name of the registry that serves them.
//
// From a Helm repository, every chart becomes an addon pack of type helm
// named "<registry>/<chart>" and every chart version a pack version whose
// chart ref points back at the repository, with the archive's digest;
// kubeVersion becomes the Kubernetes constraint and deprecated is kept.
// The archive's URL, resolved against the repository URL, is recorded as
// an architecture-independent artifact with the digest as its sha256,
// since ChartRef has no URL. Entries Helm would not install are left out
// rather than failing the registry: library charts, versions that are not
// MAJOR.MINOR.PATCH, duplicates, entries without a URL, unparseable
// kubeVersion. Pack values are empty: the chart's values.yaml is its
// defaults.
//
// Downloads are capped at 32 MiB; a registry's caCert is trusted in
// addition to the system roots. One invalid pack fails the whole fetch, so
// that a registry's last good catalog stays in use (the caller keeps it).
//
// # Artifacts and checksum files
//
// Distro artifacts are verified by SHA-256: either Artifact.SHA256, or the
// upstream checksum file at Artifact.ChecksumURL. Upstreams publish two
// formats, both read by ChecksumFor: a list of "<sha256>  <file name>"
// lines (k3s and rke2 sha256sum-<arch>.txt, containerd, runc, the CNI
// plugins), looked up by the artifact URL's last path segment; and a file
// holding only the hash (dl.k8s.io's kubeadm.sha256 and friends), which is
// the checksum of the file beside it. The built-in catalog never carries a
// sha256 it could not check: it points at the upstream checksum files.
//
// # Distro values
//
// The built-in k3s and rke2 packs keep the distro's config file under
// values.config and per-preset drop-in files under values.configDropIns
// (written to config.yaml.d/<name>.yaml). Values merge map by map and a
// list replaces a list, so two presets that each append to k3s's disable
// list would overwrite each other in one file; in drop-ins with the
// distro's own "disable+" append syntax they do not. The external-cni
// preset (PresetExternalCNI) is the seed's default for a profile with a CNI
// layer (k3s: flannel-backend none, disable-network-policy, disable
// metrics-server; rke2: cni none); the renderer switches it on.
package catalog
