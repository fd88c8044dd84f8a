// Package artifacts is the hub's artifact cache: agents download the files
// their packs pin (distro binaries, checksum files, chart archives, chart
// indexes) from their hub instead of from the internet, so that a site
// needs only its hub to reach upstream, and a file is fetched from upstream
// once however many hosts install it.
//
// The cache answers GET Path?url=<upstream URL>[&sha256=<hex>]. A file it
// has is streamed from disk (Range requests work, so a host can resume a
// large download); one it has not is downloaded from upstream once — every
// request for the same URL that arrives meanwhile waits for that one
// download — verified, stored and streamed. Every answer carries the
// file's sha256 in the Outpost-Artifact-SHA256 header. Agents still verify
// what they receive against their own pins: the cache saves bandwidth, it
// is not what they trust.
//
// With sha256 the request pins the content: a download that does not match
// is refused (502, nothing stored) and a cached file that does not match is
// downloaded again. A file pinned once is served without asking upstream
// again. A file never pinned (a chart repository's index.yaml, which
// changes) is revalidated upstream after TTL, with a conditional request
// when upstream gave an ETag or Last-Modified; when upstream cannot be
// reached the stale copy is served, since a site cut off from the internet
// must keep working from what its hub has.
//
// On disk, under Dir:
//
//	blobs/sha256/<hex>     the files, by content (two URLs with the same
//	                       content share one)
//	urls/<sha256(url)>.json  what each URL resolved to: digest, size,
//	                       content type, validators, when it was fetched
//	tmp/                   downloads in progress
//
// A blob is in place before the record pointing at it is written, both by
// rename, so a crash leaves the old entry or the new one. Nothing is
// evicted: operators prune blobs/ and urls/ by hand, or let the cache fill
// again after deleting the directory.
//
// Only URLs Allow accepts are fetched. The default, DefaultAllow, takes
// http and https URLs without credentials whose host is not a loopback,
// private, link-local or otherwise internal address, and the default
// client re-checks the address it dials, so a public name that resolves
// to an internal address is refused too: the cache must not become a way
// for a host to probe the hub's network. A hub whose chart repositories
// or mirrors are internal sets Allow (and Client).
package artifacts
