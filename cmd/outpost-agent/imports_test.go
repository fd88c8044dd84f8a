package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent runs on small edge hosts and must stay free of the hub: no hub
// packages, no database drivers, no CLI. This reads the real dependency graph
// of the binary, so a new import anywhere below it is caught.
func TestAgentDoesNotImportHubCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages; the check would prove nothing", len(deps))
	}
	forbidden := []string{
		"github.com/outpost-edge/outpost/internal/hub",
		"github.com/outpost-edge/outpost/internal/cli",
		"github.com/jackc/pgx",
		"modernc.org/sqlite",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("outpost-agent depends on %s", d)
			}
		}
	}
}
