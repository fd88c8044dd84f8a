// Package bundle makes and checks content bundles: everything an air-gapped
// site needs to build a cluster without reaching the hub or the internet.
//
// A bundle is a tar archive, optionally gzip-compressed:
//
//	bundle.json   the manifest: name, creation time, the cluster definition
//	              (rendered profiles and variables) and every file's path,
//	              size and sha256
//	bundle.sig    an ed25519 signature of bundle.json
//	artifacts/…   distro artifacts (binaries, images tarballs)
//	charts/…      Helm chart archives
//
// The signature covers bundle.json and bundle.json holds the hash of every
// other file, so one signature covers all content. Open checks the
// signature before it trusts anything in the manifest, then checks every
// file, and refuses the bundle on the first mismatch: a site never acts on
// content its operator's key did not sign.
//
// Keys are standard ed25519 keys in PEM: PKCS#8 for the private key, PKIX
// for the public key, as openssl and Go's x509 read and write them.
package bundle
