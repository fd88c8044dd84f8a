// Package e2e holds the end-to-end tests: they build the real outpost and
// outpost-agent binaries, run the hub as a process on loopback and several
// agents as processes with their own host roots, and drive everything through
// the CLI and the APIs over real sockets.
package e2e
