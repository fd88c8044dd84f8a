package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// upstream is a file server that counts what it is asked.
type upstreamServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	etag  map[string]string
	calls map[string]int
	// gate, when set, holds every answer until it is closed.
	gate chan struct{}
	// arrived is told of every request before the gate.
	arrived chan string
}

func newUpstream(t *testing.T) *upstreamServer {
	u := &upstreamServer{files: map[string][]byte{}, etag: map[string]string{}, calls: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.calls[r.URL.Path]++
		data, ok := u.files[r.URL.Path]
		etag := u.etag[r.URL.Path]
		gate, arrived := u.gate, u.arrived
		u.mu.Unlock()
		if arrived != nil {
			arrived <- r.URL.Path
		}
		if gate != nil {
			<-gate
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		if r.URL.Query().Has("chunked") {
			// No Content-Length: the limit must hold while streaming.
			w.(http.Flusher).Flush()
		}
		w.Header().Set("Content-Type", "application/x-test")
		w.Write(data)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstreamServer) put(path string, data []byte, etag string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[path], u.etag[path] = data, etag
	return u.URL + path
}

func (u *upstreamServer) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[path]
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testCache allows loopback, which the tests' upstreams are on.
func testCache(t *testing.T) (*Cache, *httptest.Server) {
	c := &Cache{
		Dir:   t.TempDir(),
		Allow: func(string) bool { return true },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return c, srv
}

type answer struct {
	status int
	body   string
	header http.Header
}

func get(t *testing.T, srv *httptest.Server, upstreamURL, pin string) answer {
	t.Helper()
	q := url.Values{"url": {upstreamURL}}
	if pin != "" {
		q.Set("sha256", pin)
	}
	resp, err := http.Get(srv.URL + Path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, string(b), resp.Header}
}

func requests(c *Cache, result string) int {
	return int(testutil.ToFloat64(c.requests.WithLabelValues(result)))
}

func TestMissThenHit(t *testing.T) {
	up := newUpstream(t)
	data := []byte("k3s binary")
	u := up.put("/k3s", data, "")
	c, srv := testCache(t)

	for i := range 3 {
		a := get(t, srv, u, "")
		if a.status != http.StatusOK || a.body != string(data) {
			t.Fatalf("request %d: %d %q", i, a.status, a.body)
		}
		if got := a.header.Get(HeaderSHA256); got != sum(data) {
			t.Errorf("request %d: %s = %q, want %s", i, HeaderSHA256, got, sum(data))
		}
		if ct := a.header.Get("Content-Type"); ct != "application/x-test" {
			t.Errorf("request %d: Content-Type %q, want upstream's", i, ct)
		}
	}
	if n := up.count("/k3s"); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
	if requests(c, "miss") != 1 || requests(c, "hit") != 2 {
		t.Errorf("metrics: %d misses, %d hits; want 1, 2", requests(c, "miss"), requests(c, "hit"))
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir, "blobs", "sha256", sum(data))); err != nil || string(b) != string(data) {
		t.Errorf("blob on disk: %q, %v", b, err)
	}
	e, ok := c.lookup(urlKey(u))
	if !ok || e.Size != int64(len(data)) || e.SHA256 != sum(data) || e.URL != u {
		t.Errorf("record = %+v, %v", e, ok)
	}

	// A restarted hub (a new Cache on the same directory) still has it.
	c2 := &Cache{Dir: c.Dir, Allow: c.Allow, Log: c.Log}
	srv2 := httptest.NewServer(c2.Handler())
	defer srv2.Close()
	if a := get(t, srv2, u, sum(data)); a.status != http.StatusOK || a.body != string(data) {
		t.Fatalf("after restart: %d %q", a.status, a.body)
	}
	if n := up.count("/k3s"); n != 1 {
		t.Errorf("after restart: upstream asked %d times, want 1", n)
	}
}

func TestConcurrentRequestsDownloadOnce(t *testing.T) {
	up := newUpstream(t)
	data := []byte(strings.Repeat("chart ", 10000))
	u := up.put("/chart.tgz", data, "")
	up.gate, up.arrived = make(chan struct{}), make(chan string, 100)
	c, srv := testCache(t)

	const n = 20
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := get(t, srv, u, sum(data)); a.status == http.StatusOK && a.body == string(data) {
				ok.Add(1)
			}
		}()
	}
	<-up.arrived
	// Release upstream only once every request waits for the download.
	deadline := time.Now().Add(10 * time.Second)
	for c.waiting.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if w := c.waiting.Load(); w != n {
		t.Errorf("%d requests wait for the download, want %d", w, n)
	}
	close(up.gate)
	wg.Wait()
	if ok.Load() != n {
		t.Errorf("%d of %d requests got the file", ok.Load(), n)
	}
	if got := up.count("/chart.tgz"); got != 1 {
		t.Errorf("upstream asked %d times for %d concurrent requests, want 1", got, n)
	}
	if got := requests(c, "miss"); got != n {
		t.Errorf("metrics count %d misses, want %d (all waited for the one download)", got, n)
	}
}

func TestUpstreamErrors(t *testing.T) {
	up := newUpstream(t)
	c, srv := testCache(t)

	a := get(t, srv, up.URL+"/missing", "")
	if a.status != http.StatusBadGateway || !strings.Contains(a.body, "upstream "+up.URL+"/missing: 404 Not Found") {
		t.Errorf("404 upstream: %d %q", a.status, a.body)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/gone"
	dead.Close()
	if a := get(t, srv, deadURL, ""); a.status != http.StatusBadGateway || !strings.Contains(a.body, "upstream "+deadURL) {
		t.Errorf("unreachable upstream: %d %q", a.status, a.body)
	}
	if requests(c, "error") != 2 {
		t.Errorf("%d errors counted, want 2", requests(c, "error"))
	}
	// Credentials and tokens stay out of messages.
	if a := get(t, srv, strings.Replace(up.URL, "://", "://user:secret@", 1)+"/missing?token=secret", ""); strings.Contains(a.body, "secret") {
		t.Errorf("message leaks a secret: %q", a.body)
	}
}

func TestSizeLimit(t *testing.T) {
	up := newUpstream(t)
	data := []byte(strings.Repeat("x", 100))
	u := up.put("/big", data, "")
	c, srv := testCache(t)
	c.MaxBytes = 99
	for _, target := range []string{u, u + "?chunked=1"} {
		a := get(t, srv, target, "")
		if a.status != http.StatusBadGateway || !strings.Contains(a.body, "limit of 99") {
			t.Errorf("%s: %d %q", target, a.status, a.body)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Dir, "urls")); len(ents) != 0 {
		t.Errorf("an oversized file was recorded: %v", ents)
	}
	c2, srv2 := testCache(t)
	c2.MaxBytes = 100
	if a := get(t, srv2, u+"?chunked=1", ""); a.status != http.StatusOK {
		t.Errorf("a file of exactly the limit: %d %q", a.status, a.body)
	}
}

func TestPinnedDigest(t *testing.T) {
	up := newUpstream(t)
	data := []byte("rke2 tarball")
	u := up.put("/rke2", data, "")
	c, srv := testCache(t)
	wrong := strings.Repeat("0", 64)

	a := get(t, srv, u, wrong)
	if a.status != http.StatusBadGateway || !strings.Contains(a.body, "sha256 is "+sum(data)+", want "+wrong) {
		t.Fatalf("mismatch: %d %q", a.status, a.body)
	}
	if _, ok := c.lookup(urlKey(u)); ok {
		t.Fatal("a mismatching download was recorded")
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Dir, "blobs", "sha256")); len(ents) != 0 {
		t.Fatalf("a mismatching download was stored: %v", ents)
	}
	if a := get(t, srv, u, strings.ToUpper(sum(data))); a.status != http.StatusOK || a.body != string(data) {
		t.Fatalf("match: %d %q", a.status, a.body)
	}
	// Upstream changed the file: a pin on the new content fetches it
	// again, and the record moves on to it.
	newData := []byte("rke2 tarball, rebuilt")
	up.put("/rke2", newData, "")
	if a := get(t, srv, u, sum(newData)); a.status != http.StatusOK || a.body != string(newData) {
		t.Fatalf("new pin: %d %q", a.status, a.body)
	}
	if n := up.count("/rke2"); n != 3 {
		t.Errorf("upstream asked %d times, want 3", n)
	}
	// Pinned content never goes stale.
	c.now = func() time.Time { return time.Now().Add(100 * DefaultTTL) }
	if a := get(t, srv, u, ""); a.status != http.StatusOK || a.body != string(newData) {
		t.Fatalf("unpinned request for pinned content: %d %q", a.status, a.body)
	}
	if n := up.count("/rke2"); n != 3 {
		t.Errorf("pinned content was revalidated: upstream asked %d times", n)
	}
}

func TestRevalidation(t *testing.T) {
	up := newUpstream(t)
	u := up.put("/index.yaml", []byte("apiVersion: v1\nentries: {}\n"), `"v1"`)
	c, srv := testCache(t)
	now := time.Now()
	c.now = func() time.Time { return now }

	get(t, srv, u, "")
	get(t, srv, u, "")
	if n := up.count("/index.yaml"); n != 1 {
		t.Fatalf("within the TTL: upstream asked %d times, want 1", n)
	}
	// After the TTL: a conditional request, answered 304.
	now = now.Add(DefaultTTL + time.Second)
	if a := get(t, srv, u, ""); a.status != http.StatusOK || !strings.Contains(a.body, "entries: {}") {
		t.Fatalf("revalidated: %d %q", a.status, a.body)
	}
	if n := up.count("/index.yaml"); n != 2 {
		t.Fatalf("after the TTL: upstream asked %d times, want 2", n)
	}
	get(t, srv, u, "")
	if n := up.count("/index.yaml"); n != 2 {
		t.Fatalf("a 304 must restart the TTL: upstream asked %d times", n)
	}
	// Upstream changed: the new index is served.
	up.put("/index.yaml", []byte("apiVersion: v1\nentries: {demo: []}\n"), `"v2"`)
	now = now.Add(DefaultTTL + time.Second)
	if a := get(t, srv, u, ""); !strings.Contains(a.body, "demo") {
		t.Fatalf("changed upstream: %q", a.body)
	}
	// Upstream gone: the stale copy is served.
	up.Close()
	now = now.Add(DefaultTTL + time.Second)
	if a := get(t, srv, u, ""); a.status != http.StatusOK || !strings.Contains(a.body, "demo") {
		t.Fatalf("upstream gone: %d %q", a.status, a.body)
	}
	if requests(c, "stale") != 1 {
		t.Errorf("%d stale answers counted, want 1", requests(c, "stale"))
	}
}

func TestRangeAndHead(t *testing.T) {
	up := newUpstream(t)
	u := up.put("/file", []byte("0123456789"), "")
	_, srv := testCache(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+Path+"?url="+url.QueryEscape(u), nil)
	req.Header.Set("Range", "bytes=4-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(b) != "456789" {
		t.Errorf("range: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Head(srv.URL + Path + "?url=" + url.QueryEscape(u))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 10 || resp.Header.Get(HeaderSHA256) == "" {
		t.Errorf("head: %d, %d bytes, digest %q", resp.StatusCode, resp.ContentLength, resp.Header.Get(HeaderSHA256))
	}
}

func TestBadRequests(t *testing.T) {
	up := newUpstream(t)
	u := up.put("/f", []byte("f"), "")
	c := &Cache{Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		query  string
		status int
		msg    string
	}{
		{"", http.StatusBadRequest, "no url parameter"},
		{"url=relative/path", http.StatusBadRequest, "not an absolute URL"},
		{"url=" + url.QueryEscape("https://example.com/f") + "&sha256=abc", http.StatusBadRequest, "not 64 hex digits"},
		// The default policy: no loopback (the test upstream), http(s) only.
		{"url=" + url.QueryEscape(u), http.StatusForbidden, "is not allowed on this hub"},
		{"url=" + url.QueryEscape("ftp://example.com/f"), http.StatusForbidden, "is not allowed"},
		{"url=" + url.QueryEscape("file:///etc/passwd"), http.StatusBadRequest, "not an absolute URL"},
	} {
		resp, err := http.Get(srv.URL + Path + "?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%q: %d %q, want %d %q", tc.query, resp.StatusCode, b, tc.status, tc.msg)
		}
	}
	if up.count("/f") != 0 {
		t.Error("a refused URL reached upstream")
	}
	resp, err := http.Post(srv.URL+Path+"?url="+url.QueryEscape("https://example.com/"), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestDefaultAllow(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s": true,
		"http://charts.example.com/index.yaml":                               true,
		"https://8.8.8.8/x":                                                  true,
		"https://[2001:4860:4860::8888]/x":                                   true,
		"http://127.0.0.1/x":                                                 false,
		"http://localhost:8080/x":                                            false,
		"http://metadata.localhost/x":                                        false,
		"http://10.1.2.3/x":                                                  false,
		"http://192.168.0.1/x":                                               false,
		"http://172.16.5.4/x":                                                false,
		"http://169.254.169.254/latest/meta-data":                            false,
		"http://100.64.0.1/x":                                                false,
		"http://[::1]/x":                                                     false,
		"http://[fd00::1]/x":                                                 false,
		"http://[::ffff:127.0.0.1]/x":                                        false,
		"http://0.0.0.0/x":                                                   false,
		"https://user:pw@example.com/x":                                      false,
		"ftp://example.com/x":                                                false,
		"file:///etc/passwd":                                                 false,
	} {
		if got := DefaultAllow(raw); got != want {
			t.Errorf("DefaultAllow(%q) = %v, want %v", raw, got, want)
		}
	}
}

// The default client refuses to dial an internal address even when the
// name looked public (here: a name that resolves to loopback).
func TestDefaultClientGuard(t *testing.T) {
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("HTTPS_PROXY", "")
	t.Setenv("http_proxy", "")
	t.Setenv("https_proxy", "")
	up := newUpstream(t)
	up.put("/f", []byte("f"), "")
	port := up.URL[strings.LastIndex(up.URL, ":")+1:]
	c := &Cache{Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c.init()
	// localtest.me would resolve to 127.0.0.1, but tests must not need
	// DNS: dial the loopback address through the guarded client directly.
	_, err := c.client.Get("http://127.0.0.1:" + port + "/f")
	if err == nil || !strings.Contains(err.Error(), "refusing to connect to internal address 127.0.0.1") {
		t.Errorf("guarded client: %v", err)
	}
	if up.count("/f") != 0 {
		t.Error("the guarded client reached a loopback server")
	}
}

func TestCollector(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	reg := prometheus.NewRegistry()
	if err := reg.Register(c.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if got := fmt.Sprint(names); got != "[outpost_artifact_cache_downloaded_bytes_total outpost_artifact_cache_requests_total]" {
		t.Errorf("metrics %s", got)
	}
}

func TestCleanTmp(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	os.MkdirAll(tmp, 0o700)
	old, fresh := filepath.Join(tmp, ".part-old"), filepath.Join(tmp, ".part-new")
	os.WriteFile(old, nil, 0o600)
	os.WriteFile(fresh, nil, 0o600)
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	(&Cache{Dir: dir}).init()
	if _, err := os.Stat(old); err == nil {
		t.Error("an abandoned download was kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a download that may be in progress (another process) was removed")
	}
}
