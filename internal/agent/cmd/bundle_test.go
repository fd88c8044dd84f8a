package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/forge/bundle"
)

// bundleFixture writes a signed bundle, its public key, another key and a
// tampered copy of the bundle.
type bundleFixture struct {
	dir, bundle, tampered, pub, otherPub string
	pubPEM                               []byte
}

func newBundleFixture(t *testing.T) bundleFixture {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := bundle.GenerateKey()
	f := bundleFixture{dir: dir, bundle: filepath.Join(dir, "site.tar"), tampered: filepath.Join(dir, "tampered.tar"),
		pub: filepath.Join(dir, "site.pub"), otherPub: filepath.Join(dir, "other.pub")}
	f.pubPEM, _ = bundle.EncodePublicKey(pub)
	otherPEM, _ := bundle.EncodePublicKey(other)
	os.WriteFile(f.pub, f.pubPEM, 0o644)
	os.WriteFile(f.otherPub, otherPEM, 0o644)

	art := filepath.Join(dir, "k3s")
	os.WriteFile(art, []byte("k3s binary"), 0o755)
	m := bundle.Manifest{
		Name:    "store-eu",
		Created: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Definition: bundle.ClusterDefinition{Profiles: []v1.RenderedProfile{
			{Profile: "edge-k3s", Version: "1.2.0", Type: v1.ProfileFull},
		}},
	}
	if err := bundle.WriteFile(f.bundle, m, map[string]string{"artifacts/k3s/1.30.4+k3s1/amd64/k3s": art}, priv); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f.bundle)
	os.WriteFile(f.tampered, bytes.Replace(data, []byte("k3s binary"), []byte("evil binar"), 1), 0o644)
	return f
}

func TestBundleCommands(t *testing.T) {
	f := newBundleFixture(t)
	emptyRoot := t.TempDir()
	// A host whose installed user-data trusts the key.
	keyRoot := t.TempDir()
	os.MkdirAll(filepath.Join(keyRoot, "etc/outpost"), 0o700)
	ud := "hub: {url: https://hub:7443}\nbundleKeys:\n  - |\n" + indent(string(f.pubPEM), "    ")
	os.WriteFile(filepath.Join(keyRoot, "etc/outpost/user-data.yaml"), []byte(ud), 0o600)
	badUD := filepath.Join(f.dir, "bad-ud.yaml")
	os.WriteFile(badUD, []byte("hub: {url: https://hub:7443}\nbundleKeys: [nonsense]\n"), 0o600)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"verify with --key", []string{"bundle", "verify", f.bundle, "--key", f.pub, "--root", emptyRoot}, 0,
			[]string{`bundle "store-eu" verified: signed by key `, "profiles  edge-k3s 1.2.0", "files     1 (10 bytes)"}, nil},
		{"verify with the user-data's key", []string{"bundle", "verify", f.bundle, "--root", keyRoot}, 0,
			[]string{"verified"}, nil},
		{"verify with a user-data file", []string{"bundle", "verify", f.bundle, "--user-data", filepath.Join(keyRoot, "etc/outpost/user-data.yaml")}, 0,
			[]string{"verified"}, nil},
		{"wrong key", []string{"bundle", "verify", f.bundle, "--key", f.otherPub, "--root", emptyRoot}, 1, nil,
			[]string{`outpost-agent: bundle "` + f.bundle + `": signature does not verify with any trusted key`}},
		{"tampered content", []string{"bundle", "verify", f.tampered, "--key", f.pub, "--root", emptyRoot}, 1, nil,
			[]string{"corrupt bundle: artifacts/k3s/1.30.4+k3s1/amd64/k3s: sha256"}},
		{"no keys anywhere", []string{"bundle", "verify", f.bundle, "--root", emptyRoot}, 1, nil,
			[]string{"no trusted bundle keys: pass --key PUB.pem or set bundleKeys in the user-data"}},
		{"bad key in user-data", []string{"bundle", "verify", f.bundle, "--user-data", badUD}, 1, nil,
			[]string{"invalid user-data:", "bundleKeys[0]: holds no PEM public key"}},
		{"key file that is not a key", []string{"bundle", "verify", f.bundle, "--key", f.bundle}, 1, nil,
			[]string{"--key " + f.bundle + ": bundle public key: no PEM public key found"}},
		{"missing file", []string{"bundle", "verify", filepath.Join(f.dir, "nope.tar"), "--key", f.pub, "--root", emptyRoot}, 1, nil,
			[]string{"no such file"}},
		{"import refuses a tampered bundle", []string{"bundle", "import", f.tampered, "--key", f.pub, "--root", emptyRoot}, 1, nil,
			[]string{"corrupt bundle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Execute("v1", tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stdout %q stderr %q)", code, tt.code, out.String(), errOut.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout %q lacks %q", out.String(), s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr %q lacks %q", errOut.String(), s)
				}
			}
		})
	}
	// The refused import left nothing in the content directory.
	if entries, _ := os.ReadDir(filepath.Join(emptyRoot, "var/lib/outpost-agent/content")); len(entries) != 0 {
		t.Errorf("content after a refused import: %v", entries)
	}
}

func TestBundleImport(t *testing.T) {
	f := newBundleFixture(t)
	root := t.TempDir()
	content := filepath.Join(root, "var/lib/outpost-agent/content")
	for i := range 2 { // the second import replaces the first
		var out, errOut bytes.Buffer
		code := Execute("v1", []string{"bundle", "import", f.bundle, "--key", f.pub, "--root", root}, &out, &errOut)
		if code != 0 {
			t.Fatalf("import %d: exit %d: %s", i, code, errOut.String())
		}
		if !strings.Contains(out.String(), "imported into "+filepath.Join(content, "store-eu")) {
			t.Errorf("output %q", out.String())
		}
		got, err := os.ReadFile(filepath.Join(content, "store-eu/artifacts/k3s/1.30.4+k3s1/amd64/k3s"))
		if err != nil || string(got) != "k3s binary" {
			t.Errorf("imported artifact = %q, %v", got, err)
		}
		if _, err := os.Stat(filepath.Join(content, "store-eu", bundle.ManifestPath)); err != nil {
			t.Errorf("manifest not imported: %v", err)
		}
		entries, _ := os.ReadDir(content)
		if len(entries) != 1 {
			t.Errorf("content holds %v, want only store-eu", entries)
		}
	}

	// --state-dir moves it.
	state := t.TempDir()
	var out, errOut bytes.Buffer
	if code := Execute("v1", []string{"bundle", "import", f.bundle, "--key", f.pub, "--root", root, "--state-dir", state}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(state, "content/store-eu/bundle.json")); err != nil {
		t.Errorf("--state-dir ignored: %v", err)
	}
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}
