package main

import (
	"os"

	"github.com/outpost-edge/outpost/internal/agent/cmd"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(cmd.Execute(version, os.Args[1:], os.Stdout, os.Stderr))
}
