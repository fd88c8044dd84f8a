package cli

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/forge/bundle"
	"github.com/outpost-edge/outpost/forge/oci"
)

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildProviderImage(t *testing.T) {
	dir := t.TempDir()
	agent := writeFile(t, dir, "outpost-agent", "agent", 0o755)
	k3s := writeFile(t, dir, "k3s", "k3s", 0o755)
	images := writeFile(t, dir, "k3s-airgap-images-amd64.tar.zst", "images", 0o644)
	args := func(out string, extra ...string) []string {
		return append([]string{"build", "provider-image", "--distro", "k3s", "--version", "1.30.4+k3s1",
			"--artifact", "k3s=" + k3s, "--artifact", images, "--agent", agent, "-o", out}, extra...)
	}

	layoutDir := filepath.Join(dir, "layout")
	out, errOut, err := run(t, nil, args(layoutDir)...)
	if err != nil {
		t.Fatalf("provider-image: %v\n%s", err, errOut)
	}
	// The agent version defaults to this outpost's.
	const tag = "k3s-1.30.4-k3s1-v9.9.9"
	if !strings.HasPrefix(out, "outpost/provider:"+tag+" sha256:") {
		t.Errorf("stdout = %q", out)
	}
	for _, s := range []string{"provider image: base image scratch\n", "provider image: layer: distro k3s 1.30.4+k3s1\n", "provider image: write " + layoutDir + " (oci)\n"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("progress %q lacks %q", errOut, s)
		}
	}
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[oci.AnnotationRefName] != tag {
		t.Fatalf("layout index = %+v", im.Manifests)
	}
	img, _ := idx.Image(im.Manifests[0].Digest)
	cf, _ := img.ConfigFile()
	if cf.Created.Unix() != 0 {
		t.Errorf("created = %v, want the epoch by default", cf.Created)
	}

	// Same inputs, same digest; SOURCE_DATE_EPOCH and --created move it.
	out2, _, err := run(t, nil, args(filepath.Join(dir, "again"))...)
	if err != nil || out2 != out {
		t.Errorf("rebuild printed %q, want %q (%v)", out2, out, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	out3, _, err := run(t, nil, args(filepath.Join(dir, "dated"))...)
	if err != nil || out3 == out {
		t.Errorf("SOURCE_DATE_EPOCH did not change the digest: %q %v", out3, err)
	}

	// A .tar output is a tarball under the given repository.
	tarFile := filepath.Join(dir, "provider.tar")
	if _, errOut, err := run(t, nil, args(tarFile, "--repository", "registry.example.com/edge/provider", "--agent-version", "v1.0.0", "--created", "2026-01-01T00:00:00Z")...); err != nil {
		t.Fatalf("tarball: %v\n%s", err, errOut)
	}
	ref, _ := name.NewTag("registry.example.com/edge/provider:k3s-1.30.4-k3s1-v1.0.0")
	timg, err := tarball.ImageFromPath(tarFile, &ref)
	if err != nil {
		t.Fatalf("read tarball: %v", err)
	}
	if cf, _ := timg.ConfigFile(); !cf.Created.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || cf.Config.Labels[oci.LabelAgentVersion] != "v1.0.0" {
		t.Errorf("tarball config = %v %v", cf.Created, cf.Config.Labels)
	}

	bad := []struct {
		args []string
		msg  string
	}{
		{[]string{"build", "provider-image", "--distro", "k3s", "--version", "1", "--agent", agent}, "-o OUT is required"},
		{[]string{"build", "provider-image", "--distro", "k3s", "-o", "x", "--agent", agent}, "--distro, --version and --agent are required"},
		{args(filepath.Join(dir, "x"), "--format", "docker"), `--format "docker": want oci or tarball`},
		{args(filepath.Join(dir, "x"), "--created", "yesterday"), `--created "yesterday": want RFC 3339`},
		{args(filepath.Join(dir, "x"), "--artifact", "k3s="+images), `"k3s" is given twice`},
		{args(filepath.Join(dir, "x"), "--base", filepath.Join(dir, "nope")), "base image: stat"},
	}
	for _, b := range bad {
		if _, _, err := run(t, nil, b.args...); err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%q: err = %v, want %q", b.args, err, b.msg)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestBuildBundle(t *testing.T) {
	files := map[string]string{
		"/k3s":                    "k3s binary",
		"/charts/index.yaml":      "entries:\n  hello:\n    - version: 0.1.0\n      urls: [hello-0.1.0.tgz]\n      digest: " + sha("chart") + "\n",
		"/charts/hello-0.1.0.tgz": "chart",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()

	dir := t.TempDir()
	prefix := filepath.Join(dir, "site")
	out, errOut, err := run(t, nil, "build", "bundle", "keygen", "-o", prefix)
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, errOut)
	}
	pubPEM, _ := os.ReadFile(prefix + ".pub")
	pub, err := bundle.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "key "+bundle.KeyID(pub)+":") {
		t.Errorf("keygen stdout = %q", out)
	}
	if st, _ := os.Stat(prefix + ".key"); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode = %v", st)
	}
	if _, _, err := run(t, nil, "build", "bundle", "keygen", "-o", prefix); err == nil || !strings.Contains(err.Error(), "exists; pass --force") {
		t.Errorf("keygen over existing keys: %v", err)
	}
	if _, _, err := run(t, nil, "build", "bundle", "keygen", "-o", prefix, "--force"); err != nil {
		t.Errorf("keygen --force: %v", err)
	}
	pubPEM, _ = os.ReadFile(prefix + ".pub")
	pub, _ = bundle.ParsePublicKey(pubPEM)

	profiles := []v1.RenderedProfile{{
		Profile: "edge-k3s", Version: "1.0.0", Type: v1.ProfileFull,
		Layers: []v1.RenderedLayer{
			{Name: "k3s", Pack: "k3s", Type: v1.PackDistro, Version: "1.30.4+k3s1",
				Artifacts: []v1.Artifact{{Name: "k3s", Arch: "amd64", URL: srv.URL + "/k3s", SHA256: sha("k3s binary")}}},
			{Name: "hello", Type: v1.PackHelm, Version: "0.1.0", Chart: &v1.ChartRef{Repository: srv.URL + "/charts", Name: "hello", Version: "0.1.0"}},
		},
	}}
	asJSON, _ := json.Marshal(profiles)
	listFile := writeFile(t, dir, "Store EU.json", string(asJSON), 0o644)
	objFile := writeFile(t, dir, "cluster.yaml", "profiles:\n"+indentYAML(string(asJSON))+"variables:\n  vip: 10.0.0.10\n", 0o644)

	tests := []struct {
		file, name string
		extra      []string
		vars       map[string]string
	}{
		{listFile, "store-eu", []string{"--var", "vip=10.0.0.99"}, map[string]string{"vip": "10.0.0.99"}},
		{objFile, "custom", []string{"--name", "custom"}, map[string]string{"vip": "10.0.0.10"}},
	}
	for _, tt := range tests {
		outFile := filepath.Join(dir, tt.name+".tar.gz")
		args := append([]string{"build", "bundle", "--definition", tt.file, "--key", prefix + ".key", "-o", outFile}, tt.extra...)
		out, errOut, err := run(t, nil, args...)
		if err != nil {
			t.Fatalf("bundle %s: %v\n%s", tt.file, err, errOut)
		}
		if want := fmt.Sprintf("wrote bundle %q to %s, signed by key %s\n", tt.name, outFile, bundle.KeyID(pub)); out != want {
			t.Errorf("stdout = %q, want %q", out, want)
		}
		for _, s := range []string{"bundle: " + tt.file + ": 1 profile, 2 layers", "bundle: download " + srv.URL + "/k3s", "bundle: download chart hello 0.1.0", "bundle: write " + outFile + " (2 files)"} {
			if !strings.Contains(errOut, s) {
				t.Errorf("progress %q lacks %q", errOut, s)
			}
		}
		b, err := bundle.Open(outFile, []ed25519.PublicKey{pub})
		if err != nil {
			t.Fatalf("open the built bundle: %v", err)
		}
		b.Close()
		m := b.Manifest
		if m.Name != tt.name || len(m.Files) != 2 || len(m.Definition.Profiles) != 1 || m.Definition.Variables["vip"] != tt.vars["vip"] {
			t.Errorf("manifest = %+v", m)
		}
	}

	bad := []struct {
		args []string
		msg  string
	}{
		{[]string{"build", "bundle", "--definition", listFile, "-o", "x.tar"}, "--definition, --key and -o are required"},
		{[]string{"build", "bundle", "--definition", listFile, "--key", prefix + ".pub", "-o", filepath.Join(dir, "x.tar")}, "want a PKCS#8 PRIVATE KEY"},
		{[]string{"build", "bundle", "--definition", writeFile(t, dir, "empty.json", "[]", 0o644), "--key", prefix + ".key", "-o", filepath.Join(dir, "x.tar")}, "holds no profiles"},
		{[]string{"build", "bundle", "--definition", writeFile(t, dir, "hosts.json", `[{"kind":"EdgeHost"}]`, 0o644), "--key", prefix + ".key", "-o", filepath.Join(dir, "x.tar")}, "is it a rendered profile?"},
		{[]string{"build", "bundle", "--definition", listFile, "--key", prefix + ".key", "-o", filepath.Join(dir, "x.tar"), "--var", "novalue"}, `--var "novalue": want NAME=VALUE`},
		{[]string{"build", "bundle", "keygen"}, "-o PREFIX is required"},
	}
	for _, b := range bad {
		if _, _, err := run(t, nil, b.args...); err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%q: err = %v, want %q", b.args, err, b.msg)
		}
	}
	// A failed download leaves no bundle behind.
	files["/k3s"] = "tampered"
	failed := filepath.Join(dir, "failed.tar.gz")
	if _, _, err := run(t, nil, "build", "bundle", "--definition", listFile, "--key", prefix+".key", "-o", failed); err == nil || !strings.Contains(err.Error(), `bundle "store-eu": profile "edge-k3s" layer "k3s": artifact "k3s"`) {
		t.Errorf("tampered download: %v", err)
	}
	if _, err := os.Stat(failed); err == nil {
		t.Error("a bundle was written despite the failed download")
	}
}

func indentYAML(s string) string { return "  " + s + "\n" }

func TestBundleName(t *testing.T) {
	for in, want := range map[string]string{
		"Store EU.json":         "store-eu",
		"/x/cluster.def.yaml":   "cluster",
		"---.json":              "bundle",
		strings.Repeat("a", 80): strings.Repeat("a", 63),
	} {
		if got := bundleName(in); got != want {
			t.Errorf("bundleName(%q) = %q, want %q", in, got, want)
		}
	}
}
