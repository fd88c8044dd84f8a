// Command outpost is the Outpost CLI (hosts, tokens, projects, events) and,
// as "outpost server", the hub itself. The command tree lives in
// internal/cli; this package only sets the version at link time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/outpost
package main
