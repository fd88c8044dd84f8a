// Package userdata reads and checks the site settings (user-data) an edge
// host boots with: where the hub is, how to enroll, the host's ID and name,
// network, proxy, CA certificates, NTP, users and the local UI.
//
// It has no runtime dependencies on the agent, so `outpost build validate`
// checks a file with exactly the rules the agent applies at boot.
package userdata
