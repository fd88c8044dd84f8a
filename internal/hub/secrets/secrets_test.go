package secrets

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	b, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal("K10abc::server:xyz", "cluster/p/c1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "K10abc") {
		t.Fatal("plaintext visible in sealed form")
	}
	again, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := again.Open(sealed, "cluster/p/c1")
	if err != nil || got != "K10abc::server:xyz" {
		t.Fatalf("open with the reloaded key: %q %v", got, err)
	}
	if _, err := again.Open(sealed, "cluster/p/c2"); err == nil {
		t.Fatal("opened under another context")
	}
	other, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "other.key"))
	if _, err := other.Open(sealed, "cluster/p/c1"); err == nil {
		t.Fatal("opened with another key")
	}
	s2, _ := b.Seal("K10abc::server:xyz", "cluster/p/c1")
	if s2 == sealed {
		t.Fatal("sealing is deterministic: nonces repeat")
	}
}
