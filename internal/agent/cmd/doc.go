// Package cmd is the command line of outpost-agent (run, id, version),
// kept out of package main so it can be tested and main stays a few lines.
package cmd
