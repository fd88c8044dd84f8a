package oci

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	gcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

var created = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// inputs writes a fake agent and distro artifacts.
func inputs(t *testing.T) ProviderImageOptions {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return ProviderImageOptions{
		Distro:       "k3s",
		Version:      "1.30.4+k3s1",
		AgentBinary:  write("outpost-agent", "\x7fELF fake agent", 0o755),
		AgentVersion: "v0.3.0",
		Artifacts: []v1.Artifact{
			{Name: "k3s", Arch: "amd64", URL: "https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s", SHA256: sha([]byte("\x7fELF fake k3s"))},
			{Name: "k3s-airgap-images-amd64.tar.zst", Arch: "amd64"},
		},
		Files: map[string]string{
			"k3s":                             write("k3s", "\x7fELF fake k3s", 0o755),
			"k3s-airgap-images-amd64.tar.zst": write("images", "fake images", 0o644),
		},
		Arch:    "amd64",
		Created: created,
	}
}

func build(t *testing.T, o ProviderImageOptions) (gcr.Image, string) {
	t.Helper()
	img, tag, err := BuildProviderImage(context.Background(), o)
	if err != nil {
		t.Fatalf("BuildProviderImage: %v", err)
	}
	return img, tag
}

// files reads an image's flattened file system: path → (mode, content).
func files(t *testing.T, img gcr.Image) map[string]fileInfo {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]fileInfo{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[hdr.Name] = fileInfo{mode: hdr.Mode, content: string(data), dir: hdr.Typeflag == tar.TypeDir, uid: hdr.Uid, mtime: hdr.ModTime}
	}
	return out
}

type fileInfo struct {
	mode    int64
	content string
	dir     bool
	uid     int
	mtime   time.Time
}

func TestBuildFromScratch(t *testing.T) {
	o := inputs(t)
	var steps []string
	o.Progress = func(s string) { steps = append(steps, s) }
	img, tag := build(t, o)
	if tag != "k3s-1.30.4-k3s1-v0.3.0" {
		t.Errorf("tag = %q", tag)
	}
	if len(steps) < 4 {
		t.Errorf("progress = %q", steps)
	}

	// Write it as a layout and read it back, as another tool would.
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, img, "", tag); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index holds %d manifests", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.Annotations[AnnotationRefName] != tag || desc.Annotations[AnnotationContainerdName] != "outpost/provider:"+tag {
		t.Errorf("index annotations = %v", desc.Annotations)
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("media type = %s", desc.MediaType)
	}
	back, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}

	layers, err := back.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	for i, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("layer %d media type %s", i, mt)
		}
	}

	fs := files(t, back)
	want := map[string]fileInfo{
		"usr/local/bin/outpost-agent":                                        {mode: 0o755, content: "\x7fELF fake agent"},
		"opt/outpost/distro/k3s/1.30.4+k3s1/k3s":                             {mode: 0o755, content: "\x7fELF fake k3s"},
		"opt/outpost/distro/k3s/1.30.4+k3s1/k3s-airgap-images-amd64.tar.zst": {mode: 0o644, content: "fake images"},
	}
	for p, w := range want {
		got, ok := fs[p]
		if !ok {
			t.Errorf("%s missing from the image", p)
			continue
		}
		if got.mode != w.mode || got.content != w.content || got.uid != 0 || !got.mtime.Equal(created) {
			t.Errorf("%s = mode %o content %q uid %d mtime %v", p, got.mode, got.content, got.uid, got.mtime)
		}
	}
	if d := fs["opt/outpost/distro"]; !d.dir || d.mode != 0o755 {
		t.Errorf("parent directory = %+v", d)
	}

	var pm ProviderManifest
	if err := json.Unmarshal([]byte(fs["etc/outpost/provider.json"].content), &pm); err != nil {
		t.Fatalf("provider.json: %v", err)
	}
	wantPM := ProviderManifest{
		Distro: "k3s", Version: "1.30.4+k3s1", Arch: "amd64", AgentVersion: "v0.3.0",
		Agent: ProviderFile{Path: AgentPath, Size: 15, SHA256: sha([]byte("\x7fELF fake agent"))},
		Artifacts: []ProviderArtifact{
			{Name: "k3s", ProviderFile: ProviderFile{Path: "/opt/outpost/distro/k3s/1.30.4+k3s1/k3s", Size: 13, SHA256: sha([]byte("\x7fELF fake k3s"))}, URL: o.Artifacts[0].URL},
			{Name: "k3s-airgap-images-amd64.tar.zst", ProviderFile: ProviderFile{Path: "/opt/outpost/distro/k3s/1.30.4+k3s1/k3s-airgap-images-amd64.tar.zst", Size: 11, SHA256: sha([]byte("fake images"))}},
		},
	}
	if !reflect.DeepEqual(pm, wantPM) {
		t.Errorf("provider.json =\n%+v\nwant\n%+v", pm, wantPM)
	}

	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "amd64" || cf.OS != "linux" || !cf.Created.Time.Equal(created) {
		t.Errorf("config platform/created = %s/%s %v", cf.OS, cf.Architecture, cf.Created)
	}
	labels := cf.Config.Labels
	for k, v := range map[string]string{
		"org.opencontainers.image.version": tag,
		"org.opencontainers.image.created": "2026-02-03T04:05:06Z",
		"org.opencontainers.image.title":   "outpost-provider-k3s",
		LabelDistro:                        "k3s",
		LabelDistroVersion:                 "1.30.4+k3s1",
		LabelAgentVersion:                  "v0.3.0",
	} {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	if len(cf.History) != 3 || !strings.Contains(cf.History[1].CreatedBy, "outpost-agent v0.3.0") {
		t.Errorf("history = %+v", cf.History)
	}
	m, err := back.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.opencontainers.image.version"] != tag || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest annotations %v config %s", m.Annotations, m.Config.MediaType)
	}
}

// The same inputs give the same digest, and a second write replaces the
// image of that tag in a layout instead of adding one.
func TestBuildIsReproducible(t *testing.T) {
	o := inputs(t)
	a, tag := build(t, o)
	b, _ := build(t, o)
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("digests differ: %s %s", da, db)
	}

	o2 := o
	o2.Created = created.Add(time.Hour)
	c, _ := build(t, o2)
	if dc, _ := c.Digest(); dc == da {
		t.Error("a different creation time gave the same digest")
	}

	dir := t.TempDir()
	for _, img := range []gcr.Image{a, b} {
		if err := WriteLayout(dir, img, "", tag); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := build(t, func() ProviderImageOptions { o3 := o; o3.AgentVersion = "v0.4.0"; return o3 }())
	if err := WriteLayout(dir, other, "", "k3s-1.30.4-k3s1-v0.4.0"); err != nil {
		t.Fatal(err)
	}
	idx, _ := layout.ImageIndexFromPath(dir)
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Digest != da {
		t.Errorf("layout manifests = %+v", im.Manifests)
	}

	// Zero creation time is the epoch, not now.
	o.Created = time.Time{}
	d1, _ := build(t, o)
	time.Sleep(1100 * time.Millisecond)
	d2, _ := build(t, o)
	h1, _ := d1.Digest()
	h2, _ := d2.Digest()
	cf, _ := d1.ConfigFile()
	if h1 != h2 || cf.Created.Unix() != 0 {
		t.Errorf("default creation time: %s %s created %v", h1, h2, cf.Created)
	}
}

func TestWriteTarball(t *testing.T) {
	img, tag := build(t, inputs(t))
	file := filepath.Join(t.TempDir(), "provider.tar")
	if err := WriteTarball(file, img, "registry.example.com/edge/provider", tag); err != nil {
		t.Fatalf("WriteTarball: %v", err)
	}
	ref, _ := name.NewTag("registry.example.com/edge/provider:" + tag)
	back, err := tarball.ImageFromPath(file, &ref)
	if err != nil {
		t.Fatalf("read tarball back: %v", err)
	}
	want, _ := img.ConfigName()
	if got, _ := back.ConfigName(); got != want {
		t.Errorf("config digest %s, want %s", got, want)
	}
	if fs := files(t, back); fs["usr/local/bin/outpost-agent"].content != "\x7fELF fake agent" {
		t.Error("agent missing from the tarball image")
	}
	if _, err := os.Stat(file + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Error("temporary file left behind")
	}
}

func TestBuildOnBase(t *testing.T) {
	base, err := random.Image(64, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Env = []string{"PATH=/usr/bin"}
	cf.Config.Labels = map[string]string{"os": "ubuntu"}
	base, _ = mutate.ConfigFile(base, cf)
	baseLayers, _ := base.Layers()

	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	p, _ := layout.Write(layoutDir, empty.Index)
	if err := p.AppendImage(base); err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(dir, "base.tar")
	ref, _ := name.NewTag("ubuntu:22.04")
	if err := tarball.WriteToFile(tarFile, ref, base); err != nil {
		t.Fatal(err)
	}

	for _, b := range []string{layoutDir, tarFile} {
		o := inputs(t)
		o.Base = b
		img, _ := build(t, o)
		layers, _ := img.Layers()
		if len(layers) != len(baseLayers)+3 {
			t.Fatalf("%s: %d layers, want %d", b, len(layers), len(baseLayers)+3)
		}
		for i, l := range baseLayers {
			want, _ := l.DiffID()
			if got, _ := layers[i].DiffID(); got != want {
				t.Errorf("%s: base layer %d changed", b, i)
			}
		}
		// A Docker-typed base gets Docker-typed layers, not a mix.
		if mt, _ := layers[len(layers)-1].MediaType(); mt != types.DockerLayer {
			t.Errorf("%s: added layer media type %s", b, mt)
		}
		got, _ := img.ConfigFile()
		if got.Config.Labels["os"] != "ubuntu" || got.Config.Labels[LabelDistro] != "k3s" || len(got.Config.Env) != 1 {
			t.Errorf("%s: base config not kept: %+v", b, got.Config)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	armBase, _ := random.Image(16, 1)
	cf, _ := armBase.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "arm64", "linux"
	armBase, _ = mutate.ConfigFile(armBase, cf)
	armDir := filepath.Join(t.TempDir(), "arm")
	p, _ := layout.Write(armDir, empty.Index)
	p.AppendImage(armBase)
	notImage := filepath.Join(t.TempDir(), "junk.tar")
	os.WriteFile(notImage, []byte("junk"), 0o644)

	tests := []struct {
		name string
		edit func(*ProviderImageOptions)
		msg  string
	}{
		{"hash mismatch", func(o *ProviderImageOptions) { o.Artifacts[0].SHA256 = sha([]byte("other")) },
			`artifact "k3s": `},
		{"artifact for another arch", func(o *ProviderImageOptions) { o.Artifacts[1].Arch = "arm64" },
			`artifact "k3s-airgap-images-amd64.tar.zst" is for arm64, the image for amd64`},
		{"artifact without a file", func(o *ProviderImageOptions) { delete(o.Files, "k3s") }, `artifact "k3s" has no local file`},
		{"file without an artifact", func(o *ProviderImageOptions) { o.Files["extra"] = o.AgentBinary }, `file for "extra" matches no artifact`},
		{"unsafe artifact name", func(o *ProviderImageOptions) {
			o.Artifacts[0].Name = "../../etc/shadow"
			o.Files["../../etc/shadow"] = o.Files["k3s"]
		}, "must be a plain file name"},
		{"missing agent", func(o *ProviderImageOptions) { o.AgentBinary = "/nonexistent/agent" }, "agent: open /nonexistent/agent"},
		{"no agent version", func(o *ProviderImageOptions) { o.AgentVersion = "" }, `agent version "" must be`},
		{"base for another arch", func(o *ProviderImageOptions) { o.Base = armDir }, "holds no image for linux/amd64"},
		{"base that is not an image", func(o *ProviderImageOptions) { o.Base = notImage }, "is neither an OCI layout directory nor an image tarball"},
		{"missing base", func(o *ProviderImageOptions) { o.Base = "/nonexistent/base" }, "base image: stat /nonexistent/base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := inputs(t)
			tt.edit(&o)
			_, _, err := BuildProviderImage(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "provider image k3s 1.30.4+k3s1: ") {
				t.Errorf("err %q does not name the image", err)
			}
		})
	}
}

func TestTag(t *testing.T) {
	tests := []struct{ distro, version, agent, want string }{
		{"k3s", "1.30.4+k3s1", "v0.3.0", "k3s-1.30.4-k3s1-v0.3.0"},
		{"rke2", "1.30.4+rke2r1", "v0.3.0-4-gabcdef+dirty", "rke2-1.30.4-rke2r1-v0.3.0-4-gabcdef-dirty"},
		{"k3s", strings.Repeat("9", 200), "v1", "k3s-" + strings.Repeat("9", 124)},
	}
	for _, tt := range tests {
		got := Tag(tt.distro, tt.version, tt.agent)
		if got != tt.want {
			t.Errorf("Tag(%q, %q, %q) = %q, want %q", tt.distro, tt.version, tt.agent, got, tt.want)
		}
		if _, err := name.NewTag("x/y:" + got); err != nil {
			t.Errorf("tag %q is not valid: %v", got, err)
		}
	}
}
