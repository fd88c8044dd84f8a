package bundle

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// fakeUpstream serves distro artifacts, a checksum file and a tiny Helm
// repository, and counts requests.
type fakeUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newUpstream(t *testing.T, files map[string]string) *fakeUpstream {
	u := &fakeUpstream{hits: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits[r.URL.Path]++
		u.mu.Unlock()
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, strings.ReplaceAll(body, "{{URL}}", u.URL))
	}))
	t.Cleanup(u.Close)
	return u
}

const (
	k3sAMD64 = "k3s amd64 binary"
	k3sARM64 = "k3s arm64 binary"
	images   = "airgap images tarball"
	chart    = "hello chart archive"
)

func upstreamFiles() map[string]string {
	return map[string]string{
		"/k3s/v1.30.4+k3s1/k3s":           k3sAMD64,
		"/k3s/v1.30.4+k3s1/k3s-arm64":     k3sARM64,
		"/k3s/v1.30.4+k3s1/images.tar":    images,
		"/k3s/v1.30.4+k3s1/sha256sum.txt": sha(k3sARM64) + "  k3s-arm64\n" + sha(images) + " *images.tar\n",
		"/charts/index.yaml": `apiVersion: v1
entries:
  hello:
    - name: hello
      version: 0.2.0
      urls: [hello-0.2.0.tgz]
      digest: ` + sha("newer") + `
    - name: hello
      version: 0.1.0
      urls: [hello-0.1.0.tgz]
      digest: ` + sha(chart) + `
  abs:
    - name: abs
      version: 1.0.0
      urls: ["{{URL}}/elsewhere/abs-1.0.0.tgz"]
`,
		"/charts/hello-0.1.0.tgz":  chart,
		"/elsewhere/abs-1.0.0.tgz": "abs chart",
	}
}

func definition(base string) []v1.RenderedProfile {
	return []v1.RenderedProfile{
		{Profile: "infra", Version: "1.0.0", Layers: []v1.RenderedLayer{
			{Name: "k3s", Pack: "k3s", Type: v1.PackDistro, Version: "1.30.4+k3s1", Artifacts: []v1.Artifact{
				{Name: "k3s", Arch: "amd64", URL: base + "/k3s/v1.30.4+k3s1/k3s", SHA256: sha(k3sAMD64)},
				{Name: "k3s", Arch: "arm64", URL: base + "/k3s/v1.30.4+k3s1/k3s-arm64", ChecksumURL: base + "/k3s/v1.30.4+k3s1/sha256sum.txt"},
				{Name: "images.tar", Arch: "amd64", URL: base + "/k3s/v1.30.4+k3s1/images.tar", ChecksumURL: base + "/k3s/v1.30.4+k3s1/sha256sum.txt"},
			}},
			{Name: "hello", Type: v1.PackHelm, Version: "0.1.0", Chart: &v1.ChartRef{Repository: base + "/charts/", Name: "hello", Version: "0.1.0"}},
		}},
		// A second profile with the same chart and an absolute chart URL.
		{Profile: "apps", Version: "2.0.0", Layers: []v1.RenderedLayer{
			{Name: "hello", Type: v1.PackHelm, Version: "0.1.0", Chart: &v1.ChartRef{Repository: base + "/charts", Name: "hello", Version: "0.1.0", Digest: "sha256:" + sha(chart)}},
			{Name: "abs", Type: v1.PackHelm, Version: "1.0.0", Chart: &v1.ChartRef{Repository: base + "/charts", Name: "abs", Version: "v1.0.0"}},
		}},
	}
}

func TestCollect(t *testing.T) {
	up := newUpstream(t, upstreamFiles())
	dir := t.TempDir()
	var progress []string
	c := &Collector{Client: up.Client(), Dir: dir, Progress: func(m string) { progress = append(progress, m) }}
	got, err := c.Collect(context.Background(), definition(up.URL))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	want := map[string]string{
		"artifacts/k3s/1.30.4+k3s1/amd64/k3s":        k3sAMD64,
		"artifacts/k3s/1.30.4+k3s1/arm64/k3s":        k3sARM64,
		"artifacts/k3s/1.30.4+k3s1/amd64/images.tar": images,
		"charts/hello-0.1.0.tgz":                     chart,
		"charts/abs-v1.0.0.tgz":                      "abs chart",
	}
	if len(got) != len(want) {
		t.Errorf("collected %v", got)
	}
	for p, content := range want {
		local, ok := got[p]
		if !ok {
			t.Errorf("%s not collected", p)
			continue
		}
		if local != filepath.Join(dir, p) {
			t.Errorf("%s is at %s, want under the dir at its bundle path", p, local)
		}
		if b, err := os.ReadFile(local); err != nil || string(b) != content {
			t.Errorf("%s = %q, %v", p, b, err)
		}
	}
	// The chart both profiles use is fetched once, and so is the index.
	if up.hits["/charts/hello-0.1.0.tgz"] != 1 || up.hits["/charts/index.yaml"] != 1 {
		t.Errorf("hits = %v", up.hits)
	}
	if len(progress) == 0 {
		t.Error("no progress reported")
	}

	// What was collected makes a bundle that verifies.
	pub, priv := keys(t)
	out := filepath.Join(t.TempDir(), "b.tgz")
	if err := WriteFile(out, Manifest{Name: "site", Definition: ClusterDefinition{Profiles: definition(up.URL)}}, got, priv); err != nil {
		t.Fatal(err)
	}
	b, err := Open(out, []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if len(b.Manifest.Files) != len(want) {
		t.Errorf("bundle has %d files", len(b.Manifest.Files))
	}
}

func TestCollectArchFilter(t *testing.T) {
	up := newUpstream(t, upstreamFiles())
	c := &Collector{Client: up.Client(), Dir: t.TempDir(), Arch: []string{"arm64"}}
	got, err := c.Collect(context.Background(), definition(up.URL)[:1])
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p := range got {
		paths = append(paths, p)
	}
	if want := map[string]bool{"artifacts/k3s/1.30.4+k3s1/arm64/k3s": true, "charts/hello-0.1.0.tgz": true}; len(got) != 2 || !want[paths[0]] || !want[paths[1]] {
		t.Errorf("collected %v", paths)
	}
	if up.hits["/k3s/v1.30.4+k3s1/k3s"] != 0 {
		t.Error("an amd64 artifact was downloaded for an arm64 bundle")
	}
}

func TestCollectRefuses(t *testing.T) {
	files := upstreamFiles()
	files["/bad/sha256sum.txt"] = sha("x") + "  other-file\n"
	files["/charts/hello-0.2.0.tgz"] = "re-published"
	up := newUpstream(t, files)
	base := up.URL
	layer := func(l v1.RenderedLayer) []v1.RenderedProfile {
		return []v1.RenderedProfile{{Profile: "p", Layers: []v1.RenderedLayer{l}}}
	}
	tests := []struct {
		name string
		defs []v1.RenderedProfile
		msg  string
	}{
		{"artifact hash mismatch", layer(v1.RenderedLayer{Name: "k3s", Version: "1", Artifacts: []v1.Artifact{
			{Name: "k3s", Arch: "amd64", URL: base + "/k3s/v1.30.4+k3s1/k3s", SHA256: sha("something else")}}}),
			`profile "p" layer "k3s": artifact "k3s": download ` + base + `/k3s/v1.30.4+k3s1/k3s: sha256 ` + sha(k3sAMD64) + `, want ` + sha("something else")},
		{"artifact not found", layer(v1.RenderedLayer{Name: "k3s", Version: "1", Artifacts: []v1.Artifact{
			{Name: "k3s", URL: base + "/missing"}}}), "get " + base + "/missing: 404 Not Found"},
		{"checksum file without the artifact", layer(v1.RenderedLayer{Name: "k3s", Version: "1", Artifacts: []v1.Artifact{
			{Name: "k3s", URL: base + "/k3s/v1.30.4+k3s1/k3s", ChecksumURL: base + "/bad/sha256sum.txt"}}}), "lists no sha256 for k3s"},
		{"chart version not in the index", layer(v1.RenderedLayer{Name: "hello", Version: "9", Chart: &v1.ChartRef{Repository: base + "/charts", Name: "hello", Version: "9.9.9"}}),
			"chart \"hello\" version 9.9.9 is not in " + base + "/charts/index.yaml"},
		{"chart digest differs from the index", layer(v1.RenderedLayer{Name: "hello", Version: "0.1.0", Chart: &v1.ChartRef{Repository: base + "/charts", Name: "hello", Version: "0.1.0", Digest: sha("old")}}),
			"the profile's digest " + sha("old") + " differs from the repository's"},
		{"chart archive does not match the index", layer(v1.RenderedLayer{Name: "hello", Version: "0.2.0", Chart: &v1.ChartRef{Repository: base + "/charts", Name: "hello", Version: "0.2.0"}}),
			"sha256 " + sha("re-published") + ", want " + sha("newer")},
		{"chart repository down", layer(v1.RenderedLayer{Name: "hello", Version: "0.1.0", Chart: &v1.ChartRef{Repository: base + "/nothing", Name: "hello", Version: "0.1.0"}}),
			"get " + base + "/nothing/index.yaml: 404 Not Found"},
		{"OCI charts", layer(v1.RenderedLayer{Name: "x", Version: "1", Chart: &v1.ChartRef{Repository: "oci://registry.example.com/charts", Name: "x", Version: "1.0.0"}}),
			"OCI chart repositories (oci://registry.example.com/charts) are not supported"},
		{"unsafe artifact name", layer(v1.RenderedLayer{Name: "k3s", Version: "1", Artifacts: []v1.Artifact{{Name: "../../etc/passwd", URL: base + "/k3s/v1.30.4+k3s1/k3s"}}}),
			"cannot be a path segment"},
		{"two sources for one path", []v1.RenderedProfile{
			{Profile: "a", Layers: []v1.RenderedLayer{{Name: "k3s", Version: "1", Artifacts: []v1.Artifact{{Name: "k3s", URL: base + "/k3s/v1.30.4+k3s1/k3s"}}}}},
			{Profile: "b", Layers: []v1.RenderedLayer{{Name: "k3s", Version: "1", Artifacts: []v1.Artifact{{Name: "k3s", URL: base + "/k3s/v1.30.4+k3s1/k3s-arm64"}}}}},
		}, "comes from both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Collect(context.Background(), tt.defs, up.Client(), dir)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v\nwant %q", err, tt.msg)
			}
			// A failed download leaves no file that looks complete.
			var left []string
			filepath.Walk(dir, func(p string, info os.FileInfo, _ error) error {
				if info != nil && !info.IsDir() && !strings.HasPrefix(info.Name(), ".") {
					left = append(left, p)
				}
				return nil
			})
			if tt.name != "two sources for one path" && len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	p, err := ArtifactPath(v1.RenderedLayer{Name: "kube", Pack: "builtin/k3s", Version: "1.30.4+k3s1"}, v1.Artifact{Name: "k3s"})
	if err != nil || p != "artifacts/k3s/1.30.4+k3s1/all/k3s" {
		t.Errorf("ArtifactPath = %q, %v", p, err)
	}
	if _, err := ChartPath(v1.ChartRef{Name: "x/y", Version: "1"}); err == nil {
		t.Error("ChartPath accepted a name with a slash")
	}
	if got, _ := ChartPath(v1.ChartRef{Name: "hello", Version: "0.1.0"}); !reflect.DeepEqual(got, "charts/hello-0.1.0.tgz") {
		t.Errorf("ChartPath = %q", got)
	}
}
