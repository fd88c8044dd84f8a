package initramfs

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// lookTool returns a Debian tool the test checks with: a skip on a
// developer's machine without it, a failure under CI, which installs it.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found; CI must install it (apt-get install -y %s)", name, pkg)
		}
		t.Skipf("%s not found (apt-get install -y %s)", name, pkg)
	}
	return p
}

func regexpMatch(expr, s string) bool { return regexp.MustCompile(expr).MatchString(s) }
