// Package agent is the edge agent's runtime: it enrolls the host with the
// hub (registration token or approval), keeps its client certificate
// renewed, sends heartbeats with the inventory when it changes, and
// long-polls for the HostSpec, which it writes to disk before acting on it so
// the host keeps its last known spec through reboots and WAN outages.
//
// Everything is agent-initiated and outbound, through the site's proxy, over
// one HTTP/2 client; after enrollment the hub's CA is pinned.
package agent
