// Package oci builds provider images: OCI images that carry a Kubernetes
// distro's artifacts and the outpost agent on top of a base OS image, for
// hosts that install from an image instead of downloading artifacts.
//
// Everything is done in-process with go-containerregistry: no Docker
// daemon, no privileges. Images are reproducible: the same inputs and
// creation time give the same digest, so a rebuild can be checked against
// what was shipped.
//
// Layout of the added layers:
//
//	/opt/outpost/distro/<distro>/<version>/<artifact>   one per artifact
//	/usr/local/bin/outpost-agent                         the agent
//	/etc/outpost/provider.json                           what the image holds
package oci
