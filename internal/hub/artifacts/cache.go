package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	v1 "github.com/outpost-edge/outpost/api/v1"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpproxy"
	"golang.org/x/sync/singleflight"

	"github.com/outpost-edge/outpost/pki"
)

// Path is the cache's route on the hub's agent listener.
const Path = v1.AgentPathArtifacts

// HeaderSHA256 carries the sha256 (hex) of the file served.
const HeaderSHA256 = "Outpost-Artifact-SHA256"

// Defaults of a Cache.
const (
	DefaultMaxBytes        = 4 << 30
	DefaultTTL             = time.Hour
	DefaultDownloadTimeout = 30 * time.Minute
)

var reSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Cache is the artifact cache. Dir is required; set the fields before the
// first request and do not change them after.
type Cache struct {
	// Dir holds the cache (see the package documentation).
	Dir string
	// Client downloads from upstream. Default: a client that refuses to
	// dial internal addresses when Allow is nil, a plain one otherwise.
	Client *http.Client
	// MaxBytes caps one file; default DefaultMaxBytes.
	MaxBytes int64
	// Allow says whether a URL may be fetched; default DefaultAllow.
	Allow func(url string) bool
	// TTL is how long a file that no request pinned by sha256 is served
	// before it is revalidated upstream; default DefaultTTL.
	TTL time.Duration
	// DownloadTimeout bounds one upstream download; default
	// DefaultDownloadTimeout.
	DownloadTimeout time.Duration
	Log             *slog.Logger

	once       sync.Once
	client     *http.Client
	allow      func(string) bool
	flight     singleflight.Group
	requests   *prometheus.CounterVec
	downloaded prometheus.Counter
	now        func() time.Time
	// waiting counts requests waiting for a download, for tests.
	waiting atomic.Int32
}

// Entry is what the cache holds for a URL.
type Entry struct {
	URL         string `json:"url"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType,omitempty"`
	// ETag and LastModified are upstream's validators, for revalidation.
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"lastModified,omitempty"`
	Fetched      time.Time `json:"fetched"`
	// Pinned: a request named this sha256, so the content is what some
	// pack expects and never goes stale.
	Pinned bool `json:"pinned,omitempty"`
}

func (c *Cache) init() {
	c.once.Do(func() {
		if c.Log == nil {
			c.Log = slog.Default()
		}
		if c.MaxBytes <= 0 {
			c.MaxBytes = DefaultMaxBytes
		}
		if c.TTL <= 0 {
			c.TTL = DefaultTTL
		}
		if c.DownloadTimeout <= 0 {
			c.DownloadTimeout = DefaultDownloadTimeout
		}
		c.allow = c.Allow
		if c.allow == nil {
			c.allow = DefaultAllow
		}
		c.client = c.Client
		if c.client == nil {
			c.client = defaultClient(c.Allow == nil)
		}
		if c.now == nil {
			c.now = time.Now
		}
		c.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_artifact_cache_requests_total",
			Help: "Artifact cache requests by result: hit (served from disk), miss (downloaded, or waited for a download), stale (upstream unreachable, old copy served), error.",
		}, []string{"result"})
		for _, r := range []string{"hit", "miss", "stale", "error"} {
			c.requests.WithLabelValues(r)
		}
		c.downloaded = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outpost_artifact_cache_downloaded_bytes_total",
			Help: "Bytes the artifact cache downloaded from upstream.",
		})
		c.cleanTmp()
	})
}

// Collector returns the cache's metrics, for the hub's registry.
func (c *Cache) Collector() prometheus.Collector {
	c.init()
	return collectors{c.requests, c.downloaded}
}

type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// Handler serves GET and HEAD Path?url=…[&sha256=…]. Mount it behind the
// agent listener's client-certificate check.
func (c *Cache) Handler() http.Handler {
	c.init()
	return http.HandlerFunc(c.serve)
}

// requestError is an error with the HTTP status it is answered with.
type requestError struct {
	status int
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func statusOf(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.status
	}
	return http.StatusInternalServerError
}

func (c *Cache) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "artifact cache: method "+r.Method+" is not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	raw, want := q.Get("url"), strings.ToLower(q.Get("sha256"))
	e, result, err := c.fetch(r.Context(), raw, want)
	if err != nil {
		c.requests.WithLabelValues("error").Inc()
		status := statusOf(err)
		if status >= 500 {
			c.Log.Warn("artifact cache", "url", redact(raw), "status", status, "error", err)
		}
		http.Error(w, "artifact cache: "+err.Error(), status)
		return
	}
	f, err := os.Open(c.blobPath(e.SHA256))
	if err != nil {
		c.requests.WithLabelValues("error").Inc()
		http.Error(w, "artifact cache: open cached file: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	c.requests.WithLabelValues(result).Inc()
	h := w.Header()
	h.Set(HeaderSHA256, e.SHA256)
	h.Set("ETag", `"`+e.SHA256+`"`)
	ct := e.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	http.ServeContent(w, r, "", e.Fetched, f)
}

// Fetch makes sure the cache holds the file at rawURL, downloading it if
// needed, and returns its entry. sum, when set, pins the content (hex
// sha256). It is what the handler does before streaming, for pre-warming
// the cache from the hub itself.
func (c *Cache) Fetch(ctx context.Context, rawURL, sum string) (Entry, error) {
	c.init()
	e, _, err := c.fetch(ctx, rawURL, strings.ToLower(sum))
	if err != nil {
		return Entry{}, err
	}
	return *e, nil
}

func (c *Cache) fetch(ctx context.Context, raw, want string) (*Entry, string, error) {
	if err := c.check(raw, want); err != nil {
		return nil, "", err
	}
	key := urlKey(raw)
	if e, ok := c.lookup(key); ok && c.fresh(e, want) {
		return e, "hit", nil
	}
	ch := c.flight.DoChan(key+" "+want, func() (any, error) {
		// A flight that just ended may have stored it.
		old, ok := c.lookup(key)
		if ok && c.fresh(old, want) {
			return flightResult{old, "hit"}, nil
		}
		if !ok {
			old = nil
		}
		return c.download(raw, key, want, old)
	})
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case <-ctx.Done():
		// The download goes on for the others waiting, and for the cache.
		return nil, "", ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, "", res.Err
		}
		fr := res.Val.(flightResult)
		return fr.entry, fr.result, nil
	}
}

type flightResult struct {
	entry  *Entry
	result string
}

func (c *Cache) check(raw, want string) error {
	if raw == "" {
		return &requestError{http.StatusBadRequest, errors.New("no url parameter")}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return &requestError{http.StatusBadRequest, fmt.Errorf("url %q is not an absolute URL", redact(raw))}
	}
	if want != "" && !reSHA256.MatchString(want) {
		return &requestError{http.StatusBadRequest, fmt.Errorf("sha256 %q is not 64 hex digits", want)}
	}
	if !c.allow(raw) {
		return &requestError{http.StatusForbidden, fmt.Errorf("url %s is not allowed on this hub", redact(raw))}
	}
	return nil
}

// fresh says whether a cached entry can be served without asking upstream.
func (c *Cache) fresh(e *Entry, want string) bool {
	if want != "" {
		return e.SHA256 == want
	}
	return e.Pinned || c.now().Sub(e.Fetched) < c.TTL
}

// download fetches raw from upstream into the cache. old is the entry held
// now, if any: its validators make the request conditional, and it is
// served stale when upstream cannot be reached and nothing pins the
// content. It runs detached from any one request: others may be waiting.
func (c *Cache) download(raw, key, want string, old *Entry) (flightResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.DownloadTimeout)
	defer cancel()
	e, err := c.get(ctx, raw, want, old)
	var ue *upstreamError
	switch {
	case err == nil:
		return flightResult{e, "miss"}, nil
	case errors.Is(err, errNotModified):
		// Upstream still has what the cache holds.
		touched := *old
		touched.Fetched = c.now()
		if err := c.writeEntry(key, &touched); err != nil {
			return flightResult{}, err
		}
		return flightResult{&touched, "hit"}, nil
	case old != nil && want == "" && errors.As(err, &ue) && ue.unreachable:
		c.Log.Warn("artifact cache: upstream unreachable, serving the cached copy", "url", redact(raw), "fetched", old.Fetched, "error", err)
		return flightResult{old, "stale"}, nil
	}
	return flightResult{}, err
}

var errNotModified = errors.New("not modified")

// upstreamError is a failure of upstream, answered 502; unreachable marks
// the ones a stale copy may stand in for.
type upstreamError struct {
	url         string
	err         error
	unreachable bool
}

func (e *upstreamError) Error() string { return "upstream " + redact(e.url) + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

func upstream(raw string, unreachable bool, format string, a ...any) error {
	return &requestError{http.StatusBadGateway, &upstreamError{url: raw, err: fmt.Errorf(format, a...), unreachable: unreachable}}
}

func (c *Cache) get(ctx context.Context, raw, want string, old *Entry) (*Entry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, &requestError{http.StatusBadRequest, fmt.Errorf("url %s: %w", redact(raw), err)}
	}
	if old != nil && want == "" {
		if old.ETag != "" {
			req.Header.Set("If-None-Match", old.ETag)
		}
		if old.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.LastModified)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, upstream(raw, true, "%w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && old != nil && want == "":
		return nil, errNotModified
	case resp.StatusCode != http.StatusOK:
		return nil, upstream(raw, resp.StatusCode >= 500, "%s", resp.Status)
	case resp.ContentLength > c.MaxBytes:
		return nil, upstream(raw, false, "%d bytes is more than the limit of %d", resp.ContentLength, c.MaxBytes)
	}
	e := &Entry{
		URL:          raw,
		ContentType:  resp.Header.Get("Content-Type"),
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		Pinned:       want != "",
	}
	sum, size, err := c.writeBlob(resp.Body, raw, want)
	if err != nil {
		return nil, err
	}
	e.SHA256, e.Size, e.Fetched = sum, size, c.now()
	if err := c.writeEntry(urlKey(raw), e); err != nil {
		return nil, err
	}
	c.Log.Info("artifact cached", "url", redact(raw), "sha256", sum, "bytes", size)
	return e, nil
}

// writeBlob stores r under its sha256 and returns the digest and size; with
// want set, content with another digest is not stored at all.
func (c *Cache) writeBlob(r io.Reader, raw, want string) (string, int64, error) {
	tmpDir := filepath.Join(c.Dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return "", 0, fmt.Errorf("cache directory: %w", err)
	}
	tmp, err := os.CreateTemp(tmpDir, ".part-*")
	if err != nil {
		return "", 0, fmt.Errorf("cache directory: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, c.MaxBytes+1))
	c.downloaded.Add(float64(n))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", 0, fmt.Errorf("write %s: %w", tmp.Name(), err)
		}
		return "", 0, upstream(raw, true, "reading the body: %w", err)
	}
	if n > c.MaxBytes {
		return "", 0, upstream(raw, false, "more than the limit of %d bytes", c.MaxBytes)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return "", 0, upstream(raw, false, "sha256 is %s, want %s", sum, want)
	}
	dst := c.blobPath(sum)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", 0, fmt.Errorf("cache directory: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store %s: %w", dst, err)
	}
	return sum, n, nil
}

func (c *Cache) writeEntry(key string, e *Entry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(c.Dir, "urls", key+".json"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record %s: %w", redact(e.URL), err)
	}
	return nil
}

// lookup returns the entry for key when its blob is there at its size.
func (c *Cache) lookup(key string) (*Entry, bool) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "urls", key+".json"))
	if err != nil {
		return nil, false
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil || !reSHA256.MatchString(e.SHA256) {
		return nil, false
	}
	st, err := os.Stat(c.blobPath(e.SHA256))
	if err != nil || st.Size() != e.Size {
		return nil, false
	}
	return &e, true
}

func (c *Cache) blobPath(sum string) string {
	return filepath.Join(c.Dir, "blobs", "sha256", sum)
}

// cleanTmp removes downloads a crashed or killed hub left behind.
func (c *Cache) cleanTmp() {
	ents, err := os.ReadDir(filepath.Join(c.Dir, "tmp"))
	if err != nil {
		return
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			os.Remove(filepath.Join(c.Dir, "tmp", e.Name()))
		}
	}
}

// urlKey names a URL's record: the hex sha256 of the URL as requested.
func urlKey(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// DefaultAllow accepts http and https URLs without credentials whose host
// is a name other than localhost, or a public IP address.
func DefaultAllow(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return publicAddr(ip)
	}
	return true
}

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() &&
		!ip.IsLinkLocalMulticast() && !ip.IsInterfaceLocalMulticast() && !ip.IsMulticast() && !ip.IsUnspecified() &&
		!sharedAddrSpace.Contains(ip)
}

// sharedAddrSpace is carrier-grade NAT space (RFC 6598), internal in
// practice though not private by netip's reckoning.
var sharedAddrSpace = netip.MustParsePrefix("100.64.0.0/10")

// defaultClient is the upstream client; guarded, it refuses to connect to
// internal addresses whatever name led there (DNS rebinding, redirects).
// Through an HTTP proxy from the environment the address dialled is the
// proxy's, which is internal as a rule: the guard is then left to the URL
// check and the proxy's own policy.
func defaultClient(guarded bool) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	pc := httpproxy.FromEnvironment()
	if guarded && pc.HTTPProxy == "" && pc.HTTPSProxy == "" {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			if !publicAddr(ap.Addr()) {
				return fmt.Errorf("refusing to connect to internal address %s", ap.Addr())
			}
			return nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	tr.Proxy = http.ProxyFromEnvironment
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if guarded && !DefaultAllow(req.URL.String()) {
				return fmt.Errorf("redirect to %s is not allowed", redact(req.URL.String()))
			}
			return nil
		},
	}
}

// redact drops credentials and the query (a signed URL's token) from a URL
// for messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}
