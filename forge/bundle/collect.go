package bundle

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// reSegment is what a pack, version, architecture or file name may be as a
// path segment in a bundle.
var reSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// ArtifactPath is where a layer's artifact lives in a bundle:
// artifacts/<pack>/<version>/<arch>/<name>. The agent finds it by the same
// function when it installs from a bundle.
func ArtifactPath(l v1.RenderedLayer, a v1.Artifact) (string, error) {
	pack := l.Pack
	if pack == "" {
		pack = l.Name
	}
	// A pack may be named "<registry>/<pack>": its last part is enough, the
	// version and architecture keep paths apart.
	pack = path.Base(pack)
	arch := a.Arch
	if arch == "" {
		arch = "all"
	}
	for _, s := range []string{pack, l.Version, arch, a.Name} {
		if !reSegment.MatchString(s) {
			return "", fmt.Errorf("artifact %q of layer %q: %q cannot be a path segment", a.Name, l.Name, s)
		}
	}
	return path.Join("artifacts", pack, l.Version, arch, a.Name), nil
}

// ChartPath is where a chart archive lives in a bundle:
// charts/<name>-<version>.tgz, as Helm names them.
func ChartPath(c v1.ChartRef) (string, error) {
	if !reSegment.MatchString(c.Name) || !reSegment.MatchString(c.Version) {
		return "", fmt.Errorf("chart %q version %q: not usable as a file name", c.Name, c.Version)
	}
	return path.Join("charts", c.Name+"-"+c.Version+".tgz"), nil
}

// Collector downloads the artifacts and charts of a cluster definition.
type Collector struct {
	Client *http.Client
	// Dir receives the files, each at its bundle path under Dir.
	Dir string
	// Arch, when set, limits artifacts to these architectures (and those
	// that name none): a site's bundle need not carry every platform.
	Arch []string
	// Progress, when set, is told about each download.
	Progress func(msg string)

	indexes map[string]*helmIndex
}

// Collect downloads the artifacts and charts of defs into dir with client
// (nil: http.DefaultClient) and returns bundle path → local file, ready for
// Write.
func Collect(ctx context.Context, defs []v1.RenderedProfile, client *http.Client, dir string) (map[string]string, error) {
	return (&Collector{Client: client, Dir: dir}).Collect(ctx, defs)
}

// Collect downloads everything defs need; see the package function.
// Artifacts are checked against their sha256 or their checksum file, charts
// against their digest (the profile's, else the repository index's).
// Content that has no hash to check against is still hashed into the
// bundle's manifest, which the signature then vouches for.
func (c *Collector) Collect(ctx context.Context, defs []v1.RenderedProfile) (map[string]string, error) {
	if c.Client == nil {
		c.Client = http.DefaultClient
	}
	out := map[string]string{}
	source := map[string]string{} // bundle path → URL, to catch two sources for one path
	add := func(p, src string) (bool, error) {
		if prev, ok := source[p]; ok {
			if prev != src {
				return false, fmt.Errorf("%s comes from both %s and %s", p, prev, src)
			}
			return false, nil
		}
		source[p] = src
		return true, nil
	}
	for _, prof := range defs {
		for _, l := range prof.Layers {
			for _, a := range l.Artifacts {
				if len(c.Arch) > 0 && a.Arch != "" && !slices.Contains(c.Arch, a.Arch) {
					continue
				}
				p, err := ArtifactPath(l, a)
				if err != nil {
					return nil, fmt.Errorf("profile %q: %w", prof.Profile, err)
				}
				fresh, err := add(p, a.URL)
				if err != nil {
					return nil, fmt.Errorf("profile %q layer %q: %w", prof.Profile, l.Name, err)
				}
				if !fresh {
					continue
				}
				local, err := c.artifact(ctx, a, p)
				if err != nil {
					return nil, fmt.Errorf("profile %q layer %q: %w", prof.Profile, l.Name, err)
				}
				out[p] = local
			}
			if l.Chart == nil {
				continue
			}
			p, err := ChartPath(*l.Chart)
			if err != nil {
				return nil, fmt.Errorf("profile %q layer %q: %w", prof.Profile, l.Name, err)
			}
			fresh, err := add(p, strings.TrimSuffix(l.Chart.Repository, "/"))
			if err != nil {
				return nil, fmt.Errorf("profile %q layer %q: %w", prof.Profile, l.Name, err)
			}
			if !fresh {
				continue
			}
			local, err := c.chart(ctx, *l.Chart, p)
			if err != nil {
				return nil, fmt.Errorf("profile %q layer %q: %w", prof.Profile, l.Name, err)
			}
			out[p] = local
		}
	}
	return out, nil
}

func (c *Collector) progress(format string, args ...any) {
	if c.Progress != nil {
		c.Progress(fmt.Sprintf(format, args...))
	}
}

func (c *Collector) artifact(ctx context.Context, a v1.Artifact, p string) (string, error) {
	want := strings.ToLower(a.SHA256)
	if want == "" && a.ChecksumURL != "" {
		var err error
		if want, err = c.checksumFor(ctx, a); err != nil {
			return "", fmt.Errorf("artifact %q: %w", a.Name, err)
		}
	}
	c.progress("download %s", a.URL)
	local, err := c.download(ctx, a.URL, p, want)
	if err != nil {
		return "", fmt.Errorf("artifact %q: %w", a.Name, err)
	}
	return local, nil
}

// checksumFor finds the artifact's hash in its checksum file, which lists
// "<sha256>  <file name>" per line as sha256sum writes it; a file with a
// single bare hash is that hash.
func (c *Collector) checksumFor(ctx context.Context, a v1.Artifact) (string, error) {
	body, err := c.get(ctx, a.ChecksumURL, 16<<20)
	if err != nil {
		return "", err
	}
	name := path.Base(a.URL)
	if u, err := url.Parse(a.URL); err == nil {
		name = path.Base(u.Path)
	}
	var lines [][]string
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			lines = append(lines, f)
		}
	}
	for _, f := range lines {
		if len(f) >= 2 && strings.TrimPrefix(f[1], "*") == name && isSHA256(f[0]) {
			return strings.ToLower(f[0]), nil
		}
	}
	if len(lines) == 1 && len(lines[0]) == 1 && isSHA256(lines[0][0]) {
		return strings.ToLower(lines[0][0]), nil
	}
	return "", fmt.Errorf("checksum file %s lists no sha256 for %s", a.ChecksumURL, name)
}

func isSHA256(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && len(s) == sha256.Size*2
}

// helmIndex is the part of a Helm repository's index.yaml needed to find a
// chart version's archive.
type helmIndex struct {
	Entries map[string][]struct {
		Version string   `yaml:"version"`
		URLs    []string `yaml:"urls"`
		Digest  string   `yaml:"digest"`
	} `yaml:"entries"`
}

func (c *Collector) chart(ctx context.Context, ref v1.ChartRef, p string) (string, error) {
	if strings.HasPrefix(ref.Repository, "oci://") {
		return "", fmt.Errorf("chart %q: OCI chart repositories (%s) are not supported in bundles yet", ref.Name, ref.Repository)
	}
	repo := strings.TrimSuffix(ref.Repository, "/") + "/"
	idx, err := c.index(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("chart %q: %w", ref.Name, err)
	}
	var chartURL, digest string
	for _, e := range idx.Entries[ref.Name] {
		if e.Version == ref.Version || strings.TrimPrefix(e.Version, "v") == strings.TrimPrefix(ref.Version, "v") {
			if len(e.URLs) == 0 {
				return "", fmt.Errorf("chart %q %s: the repository index lists no URL", ref.Name, ref.Version)
			}
			chartURL, digest = e.URLs[0], strings.ToLower(e.Digest)
			break
		}
	}
	if chartURL == "" {
		return "", fmt.Errorf("chart %q version %s is not in %sindex.yaml", ref.Name, ref.Version, repo)
	}
	// Chart URLs in an index may be relative to the repository.
	base, err := url.Parse(repo)
	if err != nil {
		return "", fmt.Errorf("chart %q: repository %q: %w", ref.Name, ref.Repository, err)
	}
	u, err := base.Parse(chartURL)
	if err != nil {
		return "", fmt.Errorf("chart %q: URL %q: %w", ref.Name, chartURL, err)
	}
	want := strings.ToLower(strings.TrimPrefix(ref.Digest, "sha256:"))
	if want != "" && digest != "" && want != digest {
		// The profile pinned a digest the repository no longer serves: the
		// chart was re-published under the same version.
		return "", fmt.Errorf("chart %q %s: the profile's digest %s differs from the repository's %s", ref.Name, ref.Version, want, digest)
	}
	if want == "" {
		want = digest
	}
	c.progress("download chart %s %s", ref.Name, ref.Version)
	local, err := c.download(ctx, u.String(), p, want)
	if err != nil {
		return "", fmt.Errorf("chart %q: %w", ref.Name, err)
	}
	return local, nil
}

func (c *Collector) index(ctx context.Context, repo string) (*helmIndex, error) {
	if idx, ok := c.indexes[repo]; ok {
		return idx, nil
	}
	c.progress("read chart repository %s", repo)
	body, err := c.get(ctx, repo+"index.yaml", 256<<20)
	if err != nil {
		return nil, err
	}
	idx := &helmIndex{}
	if err := yaml.Unmarshal(body, idx); err != nil {
		return nil, fmt.Errorf("%sindex.yaml: %w", repo, err)
	}
	if c.indexes == nil {
		c.indexes = map[string]*helmIndex{}
	}
	c.indexes[repo] = idx
	return idx, nil
}

func (c *Collector) request(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("get %s: %s", u, resp.Status)
	}
	return resp, nil
}

func (c *Collector) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	resp, err := c.request(ctx, u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("get %s: more than %d bytes", u, limit)
	}
	return body, nil
}

// download fetches u to Dir/p, checking its sha256 when want is set. The
// file appears only when complete and checked.
func (c *Collector) download(ctx context.Context, u, p, want string) (string, error) {
	dst := filepath.Join(c.Dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	resp, err := c.request(ctx, u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && want != "" {
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			err = fmt.Errorf("sha256 %s, want %s", got, want)
		}
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("download %s: %w", u, err)
	}
	return dst, nil
}
