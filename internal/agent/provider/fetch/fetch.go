package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/catalog"
)

// Defaults of a Fetcher.
const (
	// DefaultDir is the local artifact cache on the host, next to the
	// agent's state.
	DefaultDir = "/var/lib/outpost-agent/artifacts"
	// DefaultMaxSize bounds one artifact; the largest built-in one (the
	// kubelet) is about 80 MB.
	DefaultMaxSize = 1 << 30
	// maxChecksumFile bounds a checksum file: they list a few dozen files.
	maxChecksumFile = 1 << 20
	// CachePath is the hub's artifact cache on its agent listener (the
	// hub's artifacts.Path, which the agent may not import): CacheURL is
	// the hub's agent URL and this.
	CachePath = v1.AgentPathArtifacts
)

// Fetcher downloads and verifies artifacts.
type Fetcher struct {
	// Client downloads from upstream, and from the cache unless
	// CacheClient is set; nil is http.DefaultClient. The agent gives it the
	// site's proxy and extra CA certificates.
	Client *http.Client
	// CacheClient talks to the hub's artifact cache (the agent's mTLS
	// client, which trusts the hub's CA rather than the public roots).
	CacheClient *http.Client
	// CacheURL is the hub's artifact cache endpoint; empty downloads from
	// upstream directly.
	CacheURL string
	Root     hostos.Root
	// Dir is the local cache, a host path under Root; default DefaultDir.
	Dir string
	// MaxSize bounds one download; default DefaultMaxSize.
	MaxSize int64
}

var reSHA256 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// Path is where the artifact is kept, as a host path: the URL's file name
// behind a short hash of the whole URL, because every k3s release calls
// its binary "k3s".
func (f *Fetcher) Path(a v1.Artifact) (string, error) {
	name, err := catalog.ArtifactFileName(a.URL)
	if err != nil {
		return "", engine.Permanent(fmt.Errorf("artifact %s: %w", label(a), err))
	}
	sum := sha256.Sum256([]byte(a.URL))
	return path.Join(f.dir(), hex.EncodeToString(sum[:6])+"-"+name), nil
}

func (f *Fetcher) dir() string {
	if f.Dir == "" {
		return DefaultDir
	}
	return f.Dir
}

// Fetch returns the verified artifact's path on the local file system
// (under Root), downloading it unless the cache already has it.
func (f *Fetcher) Fetch(ctx context.Context, a v1.Artifact) (string, error) {
	hostPath, err := f.Path(a)
	if err != nil {
		return "", err
	}
	local := f.Root.Path(hostPath)
	want := strings.ToLower(a.SHA256)
	if want != "" && !reSHA256.MatchString(want) {
		return "", engine.Permanent(fmt.Errorf("artifact %s: sha256 %q is not 64 hex digits", label(a), a.SHA256))
	}
	if ok, err := f.cached(local, want); err != nil {
		return "", err
	} else if ok {
		return local, nil
	}
	if want == "" {
		if want, err = f.checksum(ctx, a); err != nil {
			return "", err
		}
	}
	if err := f.download(ctx, a, hostPath, want); err != nil {
		return "", err
	}
	return local, nil
}

// cached reports whether local holds the artifact: its sum equals want, or
// without want the sum recorded when it was verified.
func (f *Fetcher) cached(local, want string) (bool, error) {
	got, err := fileSHA256(local)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if want == "" {
		rec, err := os.ReadFile(local + ".sha256")
		if err != nil {
			return false, nil
		}
		want = strings.TrimSpace(string(rec))
	}
	return got == want, nil
}

// checksum reads the artifact's sum from its upstream checksum file.
func (f *Fetcher) checksum(ctx context.Context, a v1.Artifact) (string, error) {
	if a.ChecksumURL == "" {
		return "", engine.Permanent(fmt.Errorf("artifact %s: neither sha256 nor checksumURL is set: refusing to install an unverified download", label(a)))
	}
	body, src, err := f.get(ctx, a.ChecksumURL, "", maxChecksumFile)
	if err != nil {
		return "", fmt.Errorf("artifact %s: checksum file: %w", label(a), err)
	}
	defer body.Close()
	content, err := io.ReadAll(io.LimitReader(body, maxChecksumFile+1))
	if err != nil {
		return "", fmt.Errorf("artifact %s: read checksum file %s: %w", label(a), src, err)
	}
	if len(content) > maxChecksumFile {
		return "", engine.Permanent(fmt.Errorf("artifact %s: checksum file %s is larger than %d bytes", label(a), src, maxChecksumFile))
	}
	name, err := catalog.ArtifactFileName(a.URL)
	if err != nil {
		return "", engine.Permanent(fmt.Errorf("artifact %s: %w", label(a), err))
	}
	sum, err := catalog.ChecksumFor(content, name)
	if err != nil {
		return "", engine.Permanent(fmt.Errorf("artifact %s: checksum file %s: %w", label(a), src, err))
	}
	return sum, nil
}

// download writes the artifact to a temporary file next to local, checks
// it, and renames it into place: a crash or a bad download never leaves a
// file the cache would take for good.
func (f *Fetcher) download(ctx context.Context, a v1.Artifact, hostPath, want string) error {
	local := f.Root.Path(hostPath)
	limit := f.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	body, src, err := f.get(ctx, a.URL, want, limit)
	if err != nil {
		return fmt.Errorf("artifact %s: %w", label(a), err)
	}
	defer body.Close()
	dir := filepath.Dir(local)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("artifact %s: %w", label(a), err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(local)+".part*")
	if err != nil {
		return fmt.Errorf("artifact %s: %w", label(a), err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, limit+1))
	if err == nil && n > limit {
		err = engine.Permanent(fmt.Errorf("larger than %d bytes", limit))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("artifact %s: download %s: %w", label(a), src, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return engine.Permanent(fmt.Errorf("artifact %s: sha256 mismatch: got %s, want %s (from %s)", label(a), got, want, src))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("artifact %s: %w", label(a), err)
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return fmt.Errorf("artifact %s: %w", label(a), err)
	}
	if a.SHA256 == "" {
		// The checksum file may be out of reach next time (WAN down).
		if err := f.Root.WriteFileAtomic(hostPath+".sha256", []byte(got+"\n"), 0o644); err != nil {
			return fmt.Errorf("artifact %s: record its sha256: %w", label(a), err)
		}
	}
	return nil
}

// get opens u, through the hub's cache when there is one. The expected
// sum goes along, so that the hub refuses (and does not keep) a file that
// does not match. src says where the bytes came from, for messages; it
// never carries credentials.
func (f *Fetcher) get(ctx context.Context, u, sum string, limit int64) (io.ReadCloser, string, error) {
	up, err := url.Parse(u)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return nil, u, engine.Permanent(fmt.Errorf("%q is not an http(s) URL", u))
	}
	src := up.Redacted()
	target, client := u, f.Client
	if f.CacheURL != "" {
		sep := "?"
		if strings.Contains(f.CacheURL, "?") {
			sep = "&"
		}
		target = f.CacheURL + sep + "url=" + url.QueryEscape(u)
		if sum != "" {
			target += "&sha256=" + sum
		}
		src += " via the hub's artifact cache"
		if f.CacheClient != nil {
			client = f.CacheClient
		}
	}
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, src, err
	}
	req.Header.Set("User-Agent", "outpost-agent")
	resp, err := client.Do(req)
	if err != nil {
		return nil, src, fmt.Errorf("get %s: %w", src, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		line, _, _ := strings.Cut(strings.TrimSpace(string(msg)), "\n")
		if line != "" {
			line = ": " + line
		}
		return nil, src, fmt.Errorf("get %s: %s%s", src, resp.Status, line)
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, src, engine.Permanent(fmt.Errorf("get %s: %d bytes is more than the %d allowed", src, resp.ContentLength, limit))
	}
	return resp.Body, src, nil
}

// Remove deletes the cached artifact and its recorded sum; one that is not
// there is not an error.
func (f *Fetcher) Remove(a v1.Artifact) error {
	hostPath, err := f.Path(a)
	if err != nil {
		return err
	}
	local := f.Root.Path(hostPath)
	for _, p := range []string{local, local + ".sha256"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("artifact %s: %w", label(a), err)
		}
	}
	return nil
}

func fileSHA256(p string) (string, error) {
	fh, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func label(a v1.Artifact) string {
	if a.Name != "" {
		return a.Name
	}
	return a.URL
}
