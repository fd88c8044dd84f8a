package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	sigsyaml "sigs.k8s.io/yaml"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// HubArtifactsPath is the hub's artifact cache on its agent listener
// (internal/hub/artifacts.Path, which the agent does not import).
const HubArtifactsPath = v1.AgentPathArtifacts

// HeaderArtifactSHA256 is the hub cache's digest of what it serves.
const HeaderArtifactSHA256 = "Outpost-Artifact-SHA256"

// Default limits of an HTTPFetcher.
const (
	DefaultMaxChartBytes = 64 << 20
	defaultMaxIndexBytes = 32 << 20
)

var reSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// HTTPFetcher gets chart archives over HTTP(S): the artifact the catalog
// recorded for the chart (no architecture, its URL and sha256), else the
// chart's entry in <repository>/index.yaml. The archive is verified against
// the sha256 the layer pins (artifact or chart digest), else the one the
// index lists; an archive with no digest anywhere is taken as is, as Helm
// would. Archives are kept in Dir by digest, so applying a layer again does
// not download it again.
type HTTPFetcher struct {
	// Client makes the requests; default one with a 10 minute timeout.
	// Through the hub it must be the agent's mTLS client.
	Client *http.Client
	// Dir keeps verified archives; default <os.TempDir()>/outpost-charts.
	Dir string
	// Rewrite maps an upstream URL to the one to download from, with the
	// sha256 it must have when known: ViaHub sends everything through the
	// hub's artifact cache. Nil downloads from upstream.
	Rewrite func(upstream, sha256 string) string
	// MaxBytes caps an archive; default DefaultMaxChartBytes.
	MaxBytes int64
}

// ViaHub returns a Rewrite that fetches through the artifact cache of the
// hub at hubURL (its agent API base URL, "https://hub:8443").
func ViaHub(hubURL string) func(upstream, sha256 string) string {
	base := strings.TrimSuffix(hubURL, "/") + HubArtifactsPath
	return func(upstream, sum string) string {
		q := url.Values{"url": {upstream}}
		if sum != "" {
			q.Set("sha256", sum)
		}
		return base + "?" + q.Encode()
	}
}

// Fetch implements Fetcher.
func (f *HTTPFetcher) Fetch(ctx context.Context, l v1.RenderedLayer) (string, error) {
	if l.Chart == nil || l.Chart.Name == "" || l.Chart.Version == "" {
		return "", engine.Permanent(errors.New("layer has no chart (name and version)"))
	}
	ref := *l.Chart
	dir := f.Dir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "outpost-charts")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("chart directory: %w", err)
	}
	chartURL, want := chartArtifact(l)
	if want == "" {
		want = normDigest(ref.Digest)
	}
	if want != "" && !reSHA256.MatchString(want) {
		return "", engine.Permanent(fmt.Errorf("chart %s %s: digest %q is not a sha256", ref.Name, ref.Version, want))
	}
	if want != "" {
		if p, ok := cached(dir, want); ok {
			return p, nil
		}
	}
	if chartURL == "" {
		u, digest, err := f.resolve(ctx, ref)
		if err != nil {
			return "", err
		}
		chartURL = u
		if want == "" {
			want = digest
		}
		if want != "" {
			if p, ok := cached(dir, want); ok {
				return p, nil
			}
		}
	}
	return f.download(ctx, chartURL, want, dir)
}

// chartArtifact is the chart archive the catalog recorded for a Helm pack:
// the artifact without an architecture.
func chartArtifact(l v1.RenderedLayer) (string, string) {
	for _, a := range l.Artifacts {
		if a.Arch == "" && a.URL != "" {
			return a.URL, normDigest(a.SHA256)
		}
	}
	return "", ""
}

// cached returns the kept archive with that digest, if it is intact.
func cached(dir, sum string) (string, bool) {
	p := filepath.Join(dir, sum+".tgz")
	got, err := fileSHA256(p)
	if err != nil || got != sum {
		return "", false
	}
	return p, true
}

func fileSHA256(p string) (string, error) {
	fh, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// repoIndex is the part of a chart repository index needed to find a
// chart's archive.
type repoIndex struct {
	APIVersion string `json:"apiVersion"`
	Entries    map[string][]struct {
		Version string   `json:"version"`
		URLs    []string `json:"urls"`
		Digest  string   `json:"digest"`
	} `json:"entries"`
}

// resolve finds a chart's archive URL and digest in its repository's index.
func (f *HTTPFetcher) resolve(ctx context.Context, ref v1.ChartRef) (string, string, error) {
	if strings.HasPrefix(ref.Repository, "oci://") {
		return "", "", engine.Permanent(fmt.Errorf("chart %s %s: OCI repositories (%s) are not supported; record the chart archive as an artifact of the pack", ref.Name, ref.Version, ref.Repository))
	}
	repo, err := url.Parse(ref.Repository)
	if err != nil || (repo.Scheme != "http" && repo.Scheme != "https") || repo.Host == "" {
		return "", "", engine.Permanent(fmt.Errorf("chart %s %s: repository %q is not an http(s) URL", ref.Name, ref.Version, ref.Repository))
	}
	repo.Path = strings.TrimSuffix(strings.TrimSuffix(repo.Path, "/index.yaml"), "/")
	repo.RawPath = ""
	indexURL := repo.JoinPath("index.yaml")
	indexURL.RawQuery = repo.RawQuery
	body, err := f.get(ctx, indexURL.String(), "", defaultMaxIndexBytes)
	if err != nil {
		return "", "", err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", redact(indexURL.String()), err)
	}
	var idx repoIndex
	if err := sigsyaml.Unmarshal(data, &idx); err != nil {
		return "", "", fmt.Errorf("%s: not a chart repository index: %w", redact(indexURL.String()), err)
	}
	for _, e := range idx.Entries[ref.Name] {
		if e.Version != ref.Version && !sameVersion(e.Version, ref.Version) {
			continue
		}
		if len(e.URLs) == 0 {
			return "", "", fmt.Errorf("%s: chart %s %s has no download URL", redact(indexURL.String()), ref.Name, ref.Version)
		}
		u, err := resolveChartURL(repo, e.URLs[0])
		if err != nil {
			return "", "", fmt.Errorf("%s: chart %s %s: url %q: %w", redact(indexURL.String()), ref.Name, ref.Version, e.URLs[0], err)
		}
		d := normDigest(e.Digest)
		if d != "" && !reSHA256.MatchString(d) {
			d = ""
		}
		return u, d, nil
	}
	// Not permanent: a new version may reach the index (or a cache of it)
	// a little after the hub's catalog saw it.
	return "", "", fmt.Errorf("%s: no chart %s version %s", redact(indexURL.String()), ref.Name, ref.Version)
}

// resolveChartURL resolves an index's chart URL against the repository the
// way Helm does: the repository is a directory, and its query string (a
// signed URL's token) is kept unless the reference has its own.
func resolveChartURL(base *url.URL, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	if !r.IsAbs() {
		b := *base
		b.Path = strings.TrimSuffix(b.Path, "/") + "/"
		b.RawPath = ""
		q := r.RawQuery
		r = b.ResolveReference(r)
		if q == "" {
			r.RawQuery = base.RawQuery
		}
	}
	return r.String(), nil
}

// download stores the archive at u in dir, verified against want when it
// is set, and returns its path.
func (f *HTTPFetcher) download(ctx context.Context, u, want, dir string) (string, error) {
	limit := f.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxChartBytes
	}
	body, err := f.get(ctx, u, want, limit)
	if err != nil {
		return "", err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(dir, ".chart-*")
	if err != nil {
		return "", fmt.Errorf("chart directory: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download %s: %w", redact(u), err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return "", engine.Permanent(fmt.Errorf("download %s: sha256 is %s, want %s: refusing the chart", redact(u), got, want))
	}
	p := filepath.Join(dir, got+".tgz")
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("chart directory: %w", err)
	}
	return p, nil
}

// get opens upstream (through Rewrite) and returns a body that fails once
// more than limit bytes were read.
func (f *HTTPFetcher) get(ctx context.Context, upstream, want string, limit int64) (io.ReadCloser, error) {
	from := upstream
	if f.Rewrite != nil {
		from = f.Rewrite(upstream, want)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, from, nil)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("download %s: %w", redact(upstream), err))
	}
	c := f.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Minute}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", redact(upstream), err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		detail := strings.TrimSpace(string(msg))
		if detail != "" {
			detail = ": " + detail
		}
		return nil, fmt.Errorf("download %s: %s%s", redact(upstream), resp.Status, detail)
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, fmt.Errorf("download %s: %d bytes is more than the limit of %d", redact(upstream), resp.ContentLength, limit)
	}
	return &limitedBody{rc: resp.Body, left: limit, limit: limit, url: upstream}, nil
}

type limitedBody struct {
	rc          io.ReadCloser
	left, limit int64
	url         string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a file of exactly limit bytes from a
		// longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%s is more than the limit of %d bytes", redact(b.url), b.limit)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// redact drops credentials and query (a signed URL's token) from a URL for
// messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return path.Base(s)
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}
