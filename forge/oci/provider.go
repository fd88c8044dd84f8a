package oci

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	gcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// Paths inside a provider image.
const (
	AgentPath            = "/usr/local/bin/outpost-agent"
	DistroRoot           = "/opt/outpost/distro"
	ProviderManifestPath = "/etc/outpost/provider.json"
)

// Scratch is the Base that starts from an empty image.
const Scratch = "scratch"

// Labels set on every provider image, besides the org.opencontainers.image
// ones, so that a host or a registry can tell what an image holds without
// pulling it.
const (
	LabelDistro        = "dev.outpost.distro"
	LabelDistroVersion = "dev.outpost.distro.version"
	LabelAgentVersion  = "dev.outpost.agent.version"
)

var reSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// ProviderImageOptions say what goes into a provider image.
type ProviderImageOptions struct {
	// Base is Scratch (or empty), an OCI layout directory, or a tarball as
	// `docker save` writes it.
	Base    string
	Distro  string
	Version string
	// AgentBinary is the outpost-agent for Arch; AgentVersion names it in
	// the tag.
	AgentBinary  string
	AgentVersion string
	// Artifacts are the distro's files; Files maps each artifact's name to
	// its local copy. An artifact's SHA256, when set, is checked.
	Artifacts []v1.Artifact
	Files     map[string]string
	// Arch is the image's architecture (GOARCH names); default amd64.
	Arch string
	// Created is the image's creation time; zero is the Unix epoch, which
	// keeps builds reproducible (as SOURCE_DATE_EPOCH=0 would).
	Created time.Time
	// Progress, when set, is told about each step.
	Progress func(msg string)
}

// ProviderManifest is /etc/outpost/provider.json: what the image holds, for
// the agent that boots from it.
type ProviderManifest struct {
	Distro       string             `json:"distro"`
	Version      string             `json:"version"`
	Arch         string             `json:"arch"`
	AgentVersion string             `json:"agentVersion"`
	Agent        ProviderFile       `json:"agent"`
	Artifacts    []ProviderArtifact `json:"artifacts"`
}

// ProviderFile is a file in the image with its hash.
type ProviderFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ProviderArtifact is a distro artifact in the image.
type ProviderArtifact struct {
	Name string `json:"name"`
	ProviderFile
	// URL is where the artifact came from, when known.
	URL string `json:"url,omitempty"`
}

// Tag is the provider image tag: {distro}-{version}-{agent version}, with
// every character a tag cannot hold (the "+" of 1.30.4+k3s1) made "-".
func Tag(distro, version, agentVersion string) string {
	t := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '-'
	}, distro+"-"+version+"-"+agentVersion)
	t = strings.TrimLeft(t, ".-")
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// BuildProviderImage layers the distro artifacts, the agent and
// provider.json onto the base image and returns the image and its tag.
// Layers are read lazily: the files must stay in place until the image is
// written.
func BuildProviderImage(ctx context.Context, o ProviderImageOptions) (gcr.Image, string, error) {
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	name := fmt.Sprintf("provider image %s %s", o.Distro, o.Version)
	if err := o.check(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	tag := Tag(o.Distro, o.Version, o.AgentVersion)

	o.progress("base image %s", cmp.Or(o.Base, Scratch))
	base, oci, err := loadBase(o.Base, o.Arch)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}

	pm := ProviderManifest{Distro: o.Distro, Version: o.Version, Arch: o.Arch, AgentVersion: o.AgentVersion}
	distroDir := path.Join(DistroRoot, o.Distro, o.Version)
	var distroFiles []layerFile
	for _, a := range o.Artifacts {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		local := o.Files[a.Name]
		o.progress("hash artifact %s (%s)", a.Name, local)
		f, mode, err := hashFile(local)
		if err != nil {
			return nil, "", fmt.Errorf("%s: artifact %q: %w", name, a.Name, err)
		}
		if a.SHA256 != "" && !strings.EqualFold(a.SHA256, f.SHA256) {
			return nil, "", fmt.Errorf("%s: artifact %q: %s has sha256 %s, the artifact says %s", name, a.Name, local, f.SHA256, a.SHA256)
		}
		f.Path = path.Join(distroDir, a.Name)
		pm.Artifacts = append(pm.Artifacts, ProviderArtifact{Name: a.Name, ProviderFile: f, URL: a.URL})
		distroFiles = append(distroFiles, layerFile{path: f.Path, local: local, mode: mode, size: f.Size})
	}
	o.progress("hash agent %s", o.AgentBinary)
	agent, _, err := hashFile(o.AgentBinary)
	if err != nil {
		return nil, "", fmt.Errorf("%s: agent: %w", name, err)
	}
	agent.Path = AgentPath
	pm.Agent = agent
	manifest, err := json.MarshalIndent(pm, "", "  ")
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	manifest = append(manifest, '\n')

	layerType := types.DockerLayer
	if oci {
		layerType = types.OCILayer
	}
	layers := []struct {
		what  string
		files []layerFile
	}{
		{fmt.Sprintf("distro %s %s", o.Distro, o.Version), distroFiles},
		{"outpost-agent " + o.AgentVersion, []layerFile{{path: AgentPath, local: o.AgentBinary, mode: 0o755, size: agent.Size}}},
		{"provider.json", []layerFile{{path: ProviderManifestPath, data: manifest, mode: 0o644, size: int64(len(manifest))}}},
	}
	var adds []mutate.Addendum
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		o.progress("layer: %s", l.what)
		files := l.files
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return tarStream(files, o.Created), nil
		}, tarball.WithMediaType(layerType))
		if err != nil {
			return nil, "", fmt.Errorf("%s: layer %s: %w", name, l.what, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer: layer,
			History: gcr.History{
				Created:   gcr.Time{Time: o.Created},
				CreatedBy: "outpost build provider-image: " + l.what,
			},
		})
	}

	img, err := o.configure(base, tag)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if img, err = mutate.CreatedAt(img, gcr.Time{Time: o.Created}); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if oci {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		ann, ok := mutate.Annotations(img, o.labels(tag)).(gcr.Image)
		if !ok {
			return nil, "", fmt.Errorf("%s: annotating the manifest failed", name)
		}
		img = ann
	}
	return img, tag, nil
}

func (o ProviderImageOptions) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

func (o ProviderImageOptions) check() error {
	for _, f := range []struct{ what, v string }{{"distro", o.Distro}, {"version", o.Version}, {"agent version", o.AgentVersion}, {"arch", o.Arch}} {
		if !reSegment.MatchString(f.v) {
			return fmt.Errorf("%s %q must be letters, digits, '.', '_', '+' and '-'", f.what, f.v)
		}
	}
	if o.AgentBinary == "" {
		return errors.New("no agent binary")
	}
	seen := map[string]bool{}
	for _, a := range o.Artifacts {
		switch {
		case !reSegment.MatchString(a.Name):
			return fmt.Errorf("artifact name %q must be a plain file name", a.Name)
		case seen[a.Name]:
			return fmt.Errorf("artifact %q is given twice", a.Name)
		case a.Arch != "" && a.Arch != o.Arch:
			return fmt.Errorf("artifact %q is for %s, the image for %s", a.Name, a.Arch, o.Arch)
		case o.Files[a.Name] == "":
			return fmt.Errorf("artifact %q has no local file", a.Name)
		}
		seen[a.Name] = true
	}
	for n := range o.Files {
		if !seen[n] {
			return fmt.Errorf("file for %q matches no artifact", n)
		}
	}
	return nil
}

func (o ProviderImageOptions) labels(tag string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "outpost-provider-" + o.Distro,
		"org.opencontainers.image.description": fmt.Sprintf("Outpost provider image: %s %s with outpost-agent %s", o.Distro, o.Version, o.AgentVersion),
		"org.opencontainers.image.version":     tag,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
		"org.opencontainers.image.vendor":      "Outpost",
		LabelDistro:                            o.Distro,
		LabelDistroVersion:                     o.Version,
		LabelAgentVersion:                      o.AgentVersion,
	}
}

// configure sets the platform, creation time and labels on the base's
// config, keeping the base's own settings (env, entrypoint, labels).
func (o ProviderImageOptions) configure(base gcr.Image, tag string) (gcr.Image, error) {
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("base config: %w", err)
	}
	cf = cf.DeepCopy()
	if cf.Architecture != "" && cf.Architecture != o.Arch {
		return nil, fmt.Errorf("base image is for %s, not %s", cf.Architecture, o.Arch)
	}
	cf.Architecture, cf.OS = o.Arch, "linux"
	cf.Created = gcr.Time{Time: o.Created}
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range o.labels(tag) {
		cf.Config.Labels[k] = v
	}
	return mutate.ConfigFile(base, cf)
}

// layerFile is one file of a layer: a local file or bytes.
type layerFile struct {
	path  string // absolute path in the image
	local string
	data  []byte
	mode  int64
	size  int64
}

// tarStream writes a layer's tar on the fly, so that large artifacts are
// never held in memory or copied to a temporary file. Every header is fixed
// (owner root, mtime the creation time, parent directories 0755) so the same
// files always give the same bytes, which the layer digest depends on:
// go-containerregistry opens a layer several times and expects the same
// content each time.
func tarStream(files []layerFile, mtime time.Time) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeTar(pw, files, mtime))
	}()
	return pr
}

func writeTar(w io.Writer, files []layerFile, mtime time.Time) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b layerFile) int { return strings.Compare(a.path, b.path) })
	for _, f := range sorted {
		rel := strings.TrimPrefix(f.path, "/")
		var parents []string
		for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		slices.Reverse(parents)
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: f.mode, Size: f.size, ModTime: mtime}); err != nil {
			return err
		}
		if f.data != nil {
			if _, err := tw.Write(f.data); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(tw, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(w io.Writer, f layerFile) error {
	r, err := os.Open(f.local)
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := io.Copy(w, io.LimitReader(r, f.size))
	if err != nil {
		return err
	}
	if n != f.size {
		return fmt.Errorf("%s shrank while the image was built", f.local)
	}
	return nil
}

// hashFile returns a local file's size, sha256 and the mode it gets in the
// image: 0755 if it is executable (the k3s binary), else 0644.
func hashFile(local string) (ProviderFile, int64, error) {
	r, err := os.Open(local)
	if err != nil {
		return ProviderFile{}, 0, err
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		return ProviderFile{}, 0, err
	}
	if !st.Mode().IsRegular() {
		return ProviderFile{}, 0, fmt.Errorf("%s is not a regular file", local)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return ProviderFile{}, 0, err
	}
	mode := int64(0o644)
	if st.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	return ProviderFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, mode, nil
}
