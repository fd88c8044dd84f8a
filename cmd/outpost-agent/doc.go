// Command outpost-agent runs on every edge host: it enrolls the host with
// the Outpost hub and keeps it at the spec the hub computes for it. The
// command line lives in internal/agent/cmd.
package main
