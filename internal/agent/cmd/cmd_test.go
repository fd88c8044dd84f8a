package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("hub: {url: https://hub:7443}\nhost: {idPrefix: shop-}\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("hub: {url: http://hub}\nnetwork:\n  interfaces:\n    eth0: {type: static}\n"), 0o644)

	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrIn []string
	}{
		{"version", []string{"version"}, 0, "v9.9.9\n", nil},
		{"id without user-data", []string{"id", "--root", root}, 0, "edge-0123456789abcdef0123456789abcdef\n", nil},
		{"id with prefix", []string{"id", "--root", root, "--user-data", good}, 0, "shop-0123456789abcdef0123456789abcdef\n", nil},
		{"id without any source", []string{"id", "--root", dir}, 1, "", []string{"no host ID"}},
		{"run needs user-data", []string{"run"}, 1, "", []string{`"user-data" not set`}},
		{"run with bad user-data lists every field", []string{"run", "--user-data", bad, "--root", root}, 1, "", []string{
			"invalid user-data:",
			"\n  hub.url: must be an https:// URL",
			"\n  network.interfaces.eth0: static needs address, mask and gateway",
		}},
		{"bad log level", []string{"run", "--user-data", good, "--log-level", "loud"}, 1, "", []string{"--log-level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Execute("v9.9.9", tt.args, &out, &errOut)
			if code != tt.code || out.String() != tt.stdout {
				t.Errorf("exit %d stdout %q, want %d %q (stderr %q)", code, out.String(), tt.code, tt.stdout, errOut.String())
			}
			for _, s := range tt.stderrIn {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr %q lacks %q", errOut.String(), s)
				}
			}
		})
	}
}
