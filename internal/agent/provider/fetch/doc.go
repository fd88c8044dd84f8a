// Package fetch downloads the pinned artifacts of a distro layer (the k3s
// binary, the rke2 tarball, kubeadm and its runtime) into a local cache
// directory and verifies each one before a provider may use it.
//
// An artifact is verified against its sha256: the one the pack gives, or the
// one the upstream checksum file at its checksumURL lists for it (both
// checksum-file formats, read by catalog.ChecksumFor). A file whose sum does
// not match is deleted and the error is permanent: retrying would only
// download the same wrong bytes, and a person has to look at the pack or
// the mirror.
//
// With CacheURL set, everything (artifacts and checksum files) comes
// through the hub's artifact cache as CacheURL?url=<upstream URL>: the hub
// downloads from upstream once and every host of the site gets it from
// there, so a site needs no direct internet access. There is no fallback
// to upstream when the cache fails; the hub is the site's way out.
//
// The local cache survives restarts: a file already there with the sum it
// was verified with is used again without any download, which is what lets
// an agent re-apply its spec after a reboot while the WAN is down. The sum
// found in a checksum file is kept next to the file (<file>.sha256) for
// that reason.
package fetch
