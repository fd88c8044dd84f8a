package hostos

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	tests := []struct {
		dir, p, want string
	}{
		{"", "/etc/hostname", "/etc/hostname"},
		{"/", "/etc/hostname", "/etc/hostname"},
		{"", "etc/hostname", "/etc/hostname"},
		{"/tmp/h1", "/etc/hostname", "/tmp/h1/etc/hostname"},
		{"/tmp/h1", "etc/hostname", "/tmp/h1/etc/hostname"},
		{"/tmp/h1", "/../../etc/shadow", "/tmp/h1/etc/shadow"},
		{"/tmp/h1/", "/sys/block/../class", "/tmp/h1/sys/class"},
		{"/tmp/h1", "/", "/tmp/h1"},
	}
	for _, tt := range tests {
		if got := (Root{Dir: tt.dir}).Path(tt.p); got != tt.want {
			t.Errorf("Root{%q}.Path(%q) = %q, want %q", tt.dir, tt.p, got, tt.want)
		}
	}
}

func TestIsHost(t *testing.T) {
	for dir, want := range map[string]bool{"": true, "/": true, "//": true, "/tmp/x": false, ".": false} {
		if got := (Root{Dir: dir}).IsHost(); got != want {
			t.Errorf("Root{%q}.IsHost() = %v, want %v", dir, got, want)
		}
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	r := Root{Dir: dir}
	if err := r.WriteFileAtomic("/etc/outpost/a.conf", []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file must land under the root, not on the real host.
	fi, err := os.Stat(filepath.Join(dir, "etc/outpost/a.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := r.WriteFileAtomic("/etc/outpost/a.conf", []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadFile("/etc/outpost/a.conf")
	if err != nil || string(got) != "two" {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
	if err := r.MkdirAll("/var/lib/x", 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := r.ReadDir("/etc/outpost")
	if err != nil || len(entries) != 1 || entries[0].Name() != "a.conf" {
		t.Errorf("ReadDir = %v, %v (temporary files left behind?)", entries, err)
	}
	if fi, err := r.Stat("/var/lib/x"); err != nil || !fi.IsDir() {
		t.Errorf("Stat = %v, %v", fi, err)
	}
}
