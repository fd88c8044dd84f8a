package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
)

func sum(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// upstream serves files by path and counts the requests for each.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string]string
	hits  map[string]int
}

func newUpstream(t *testing.T, files map[string]string) *upstream {
	u := &upstream{files: files, hits: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits[r.URL.EscapedPath()]++
		body, ok := u.files[r.URL.EscapedPath()]
		u.mu.Unlock()
		if !ok {
			http.Error(w, "no such release asset", http.StatusNotFound)
			return
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) hitsOf(p string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[p]
}

const k3sBin = "#!/bin/sh\necho fake k3s\n"

func TestFetchVerifiesGivenSHA256(t *testing.T) {
	up := newUpstream(t, map[string]string{"/k3s": k3sBin})
	root := hostos.Root{Dir: t.TempDir()}
	f := &Fetcher{Client: up.Client(), Root: root}
	a := v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", SHA256: strings.ToUpper(sum(k3sBin))}
	p, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, root.Path(DefaultDir)+"/") || !strings.HasSuffix(p, "-k3s") {
		t.Errorf("path %s is not in the cache under the root", p)
	}
	if got, _ := os.ReadFile(p); string(got) != k3sBin {
		t.Errorf("content %q", got)
	}
	// Again: from the cache, no second download.
	if _, err := f.Fetch(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if n := up.hitsOf("/k3s"); n != 1 {
		t.Errorf("downloaded %d times", n)
	}
}

func TestFetchChecksumFileFormats(t *testing.T) {
	kubeadm := "kubeadm binary"
	up := newUpstream(t, map[string]string{
		"/v1.32.3%2Bk3s1/k3s-arm64": k3sBin,
		// k3s's list: "<sha256>  <file name>" for every asset.
		"/v1.32.3%2Bk3s1/sha256sum-arm64.txt": sum("other") + "  k3s-airgap-images-arm64.tar\n" + sum(k3sBin) + "  k3s-arm64\n",
		// dl.k8s.io: the bare hash of the file beside it.
		"/bin/linux/amd64/kubeadm":        kubeadm,
		"/bin/linux/amd64/kubeadm.sha256": sum(kubeadm),
	})
	for _, tc := range []struct{ name, url, checksum, want string }{
		{"list", "/v1.32.3%2Bk3s1/k3s-arm64", "/v1.32.3%2Bk3s1/sha256sum-arm64.txt", k3sBin},
		{"bare", "/bin/linux/amd64/kubeadm", "/bin/linux/amd64/kubeadm.sha256", kubeadm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := hostos.Root{Dir: t.TempDir()}
			f := &Fetcher{Client: up.Client(), Root: root, Dir: "/var/cache/outpost"}
			a := v1.Artifact{Name: tc.name, URL: up.URL + tc.url, ChecksumURL: up.URL + tc.checksum}
			p, err := f.Fetch(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(p); string(got) != tc.want {
				t.Errorf("content %q", got)
			}
			if rec, _ := os.ReadFile(p + ".sha256"); strings.TrimSpace(string(rec)) != sum(tc.want) {
				t.Errorf("recorded sum %q", rec)
			}
			// With the WAN down, the verified file is still good.
			f.Client = &http.Client{Transport: failing{}}
			if _, err := f.Fetch(context.Background(), a); err != nil {
				t.Errorf("offline fetch of a cached artifact: %v", err)
			}
		})
	}
}

type failing struct{}

func (failing) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, io.ErrUnexpectedEOF
}

func TestFetchMismatchIsPermanentAndLeavesNothing(t *testing.T) {
	up := newUpstream(t, map[string]string{
		"/k3s":                 k3sBin + "tampered",
		"/sha256sum-amd64.txt": sum(k3sBin) + "  k3s\n",
	})
	for _, tc := range []struct {
		name string
		a    v1.Artifact
	}{
		{"given", v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", SHA256: sum(k3sBin)}},
		{"checksum file", v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", ChecksumURL: up.URL + "/sha256sum-amd64.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := hostos.Root{Dir: t.TempDir()}
			f := &Fetcher{Client: up.Client(), Root: root}
			_, err := f.Fetch(context.Background(), tc.a)
			if err == nil {
				t.Fatal("a tampered artifact was accepted")
			}
			want := "artifact k3s: sha256 mismatch: got " + sum(k3sBin+"tampered") + ", want " + sum(k3sBin) + " (from " + up.URL + "/k3s)"
			if err.Error() != want {
				t.Errorf("error:\n got %s\nwant %s", err, want)
			}
			if !engine.IsPermanent(err) {
				t.Error("a mismatch is not permanent")
			}
			entries, _ := os.ReadDir(root.Path(DefaultDir))
			if len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestFetchReplacesACorruptedCacheFile(t *testing.T) {
	up := newUpstream(t, map[string]string{"/k3s": k3sBin})
	root := hostos.Root{Dir: t.TempDir()}
	f := &Fetcher{Client: up.Client(), Root: root}
	a := v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", SHA256: sum(k3sBin)}
	p, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != k3sBin || up.hitsOf("/k3s") != 2 {
		t.Errorf("content %q after %d downloads", got, up.hitsOf("/k3s"))
	}
}

// hubCache stands for the hub's artifact cache: it takes ?url=, downloads
// each URL from upstream once and serves it from memory after that.
func hubCache(t *testing.T, client *http.Client) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var mu sync.Mutex
	stored := map[string][]byte{}
	var requests atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path != CachePath {
			http.NotFound(w, r)
			return
		}
		u := r.URL.Query().Get("url")
		if want := r.URL.Query().Get("sha256"); !strings.Contains(u, "sha256sum") && want != sum(k3sBin) {
			// The agent pins what it asks for, so the hub can refuse a
			// bad upstream file instead of caching it.
			t.Errorf("artifact request for %s pins sha256 %q", u, want)
		}
		mu.Lock()
		defer mu.Unlock()
		body, ok := stored[u]
		if !ok {
			resp, err := client.Get(u)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				http.Error(w, "upstream: "+resp.Status, http.StatusBadGateway)
				return
			}
			body, _ = io.ReadAll(resp.Body)
			stored[u] = body
		}
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s, &requests
}

func TestFetchThroughTheHubCache(t *testing.T) {
	up := newUpstream(t, map[string]string{
		"/v1.32.3%2Bk3s1/k3s":                 k3sBin,
		"/v1.32.3%2Bk3s1/sha256sum-amd64.txt": sum(k3sBin) + "  k3s\n",
	})
	hub, requests := hubCache(t, up.Client())
	a := v1.Artifact{Name: "k3s", URL: up.URL + "/v1.32.3%2Bk3s1/k3s", ChecksumURL: up.URL + "/v1.32.3%2Bk3s1/sha256sum-amd64.txt"}
	// Two hosts of one site: the first makes the hub download, the second
	// gets it from the hub.
	for i := range 2 {
		f := &Fetcher{
			// The upstream client must not be used: only the cache's.
			Client:      &http.Client{Transport: failing{}},
			CacheClient: hub.Client(),
			CacheURL:    hub.URL + CachePath,
			Root:        hostos.Root{Dir: t.TempDir()},
		}
		p, err := f.Fetch(context.Background(), a)
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		if got, _ := os.ReadFile(p); string(got) != k3sBin {
			t.Errorf("host %d: content %q", i, got)
		}
	}
	if n := up.hitsOf("/v1.32.3%2Bk3s1/k3s"); n != 1 {
		t.Errorf("upstream served the binary %d times, want once", n)
	}
	if n := up.hitsOf("/v1.32.3%2Bk3s1/sha256sum-amd64.txt"); n != 1 {
		t.Errorf("upstream served the checksum file %d times, want once", n)
	}
	if n := requests.Load(); n != 4 {
		t.Errorf("the hub answered %d requests, want 4 (binary and checksum file, twice)", n)
	}
}

func TestFetchMismatchThroughTheCacheSaysSo(t *testing.T) {
	up := newUpstream(t, map[string]string{"/k3s": "evil"})
	hub, _ := hubCache(t, up.Client())
	f := &Fetcher{Client: hub.Client(), CacheURL: hub.URL + CachePath, Root: hostos.Root{Dir: t.TempDir()}}
	_, err := f.Fetch(context.Background(), v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", SHA256: sum(k3sBin)})
	if err == nil || !strings.Contains(err.Error(), "(from "+up.URL+"/k3s via the hub's artifact cache)") {
		t.Errorf("err = %v", err)
	}
}

func TestFetchRefusals(t *testing.T) {
	up := newUpstream(t, map[string]string{
		"/big":      strings.Repeat("x", 100),
		"/sums.txt": sum("x") + "  other-file\n",
		"/k3s":      k3sBin,
	})
	root := hostos.Root{Dir: t.TempDir()}
	f := &Fetcher{Client: up.Client(), Root: root, MaxSize: 50}
	for _, tc := range []struct {
		name      string
		a         v1.Artifact
		permanent bool
		msg       string
	}{
		{"unverified", v1.Artifact{Name: "k3s", URL: up.URL + "/k3s"}, true, "neither sha256 nor checksumURL"},
		{"not listed", v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", ChecksumURL: up.URL + "/sums.txt"}, true, `lists no sha256 for "k3s"`},
		{"too big", v1.Artifact{Name: "big", URL: up.URL + "/big", SHA256: sum(strings.Repeat("x", 100))}, true, "100 bytes is more than the 50 allowed"},
		{"bad sha", v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", SHA256: "abc"}, true, "not 64 hex digits"},
		{"bad url", v1.Artifact{Name: "k3s", URL: "ftp://example.com/k3s", SHA256: sum(k3sBin)}, true, "not an http(s) URL"},
		{"missing", v1.Artifact{Name: "gone", URL: up.URL + "/gone", SHA256: sum(k3sBin)}, false, "404 Not Found: no such release asset"},
		{"checksum missing", v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", ChecksumURL: up.URL + "/nope.txt"}, false, "artifact k3s: checksum file: get"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), tc.a)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			if engine.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v (%v)", engine.IsPermanent(err), tc.permanent, err)
			}
		})
	}
	entries, _ := os.ReadDir(root.Path(DefaultDir))
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestRemove(t *testing.T) {
	up := newUpstream(t, map[string]string{"/k3s": k3sBin, "/sums": sum(k3sBin) + "  k3s\n"})
	root := hostos.Root{Dir: t.TempDir()}
	f := &Fetcher{Client: up.Client(), Root: root}
	a := v1.Artifact{Name: "k3s", URL: up.URL + "/k3s", ChecksumURL: up.URL + "/sums"}
	p, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(a); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(a); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if m, _ := filepath.Glob(p + "*"); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}
