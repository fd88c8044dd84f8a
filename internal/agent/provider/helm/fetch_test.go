package helm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

func TestFetchArtifact(t *testing.T) {
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	f := &HTTPFetcher{Dir: t.TempDir()}
	l := r.layer(t, "demo", "1.0.0", "", true)
	p, err := f.Fetch(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.Dir, l.Chart.Digest+".tgz"); p != want {
		t.Errorf("path %s, want %s", p, want)
	}
	if ch, err := loader.LoadFile(p); err != nil || ch.Metadata.Version != "1.0.0" {
		t.Fatalf("load %s: %v", p, err)
	}
	// Kept by digest: no second download, and no index needed at all.
	if _, err := f.Fetch(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if n := r.requests("/demo-1.0.0.tgz"); n != 1 {
		t.Errorf("archive downloaded %d times, want 1", n)
	}
	if n := r.requests("/index.yaml"); n != 0 {
		t.Errorf("index read %d times, want 0 (the artifact names the archive)", n)
	}
	// A damaged kept copy is downloaded again.
	if err := os.WriteFile(p, []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if n := r.requests("/demo-1.0.0.tgz"); n != 2 {
		t.Errorf("archive downloaded %d times, want 2", n)
	}
}

func TestFetchFromIndex(t *testing.T) {
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap), demoChart("1.1.0", tplConfigMap))
	f := &HTTPFetcher{Dir: t.TempDir()}
	// The repository URL as people write it: with index.yaml, or a slash.
	for _, repoURL := range []string{r.srv.URL, r.srv.URL + "/", r.srv.URL + "/index.yaml"} {
		l := r.layer(t, "demo", "1.1.0", "", false)
		l.Chart.Repository = repoURL
		p, err := f.Fetch(context.Background(), l)
		if err != nil {
			t.Fatalf("%s: %v", repoURL, err)
		}
		if filepath.Base(p) != r.digest(t, "1.1.0")+".tgz" {
			t.Errorf("%s: fetched %s, not the archive the index lists", repoURL, p)
		}
	}
	if n := r.requests("/demo-1.1.0.tgz"); n != 1 {
		t.Errorf("archive downloaded %d times, want 1 (kept by the index's digest)", n)
	}
	l := r.layer(t, "demo", "9.9.9", "", false)
	if _, err := f.Fetch(context.Background(), l); err == nil || !strings.Contains(err.Error(), "no chart demo version 9.9.9") || engine.IsPermanent(err) {
		t.Errorf("missing version: %v; want a retryable error naming it", err)
	}
}

func TestFetchRefusesMismatch(t *testing.T) {
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	f := &HTTPFetcher{Dir: t.TempDir()}
	l := r.layer(t, "demo", "1.0.0", "", true)
	bad := strings.Repeat("0", 64)
	l.Artifacts[0].SHA256 = bad
	_, err := f.Fetch(context.Background(), l)
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "sha256 is "+r.digest(t, "1.0.0")+", want "+bad) {
		t.Fatalf("Fetch = %v; want a permanent mismatch error", err)
	}
	if ents, _ := os.ReadDir(f.Dir); len(ents) != 0 {
		t.Errorf("a refused archive was kept: %v", ents)
	}
	// The chart digest counts when there is no artifact.
	l = r.layer(t, "demo", "1.0.0", "", false)
	l.Chart.Digest = "sha256:" + bad
	if _, err := f.Fetch(context.Background(), l); err == nil || !strings.Contains(err.Error(), "want "+bad) {
		t.Errorf("chart digest mismatch: %v", err)
	}
	l.Chart.Digest = "not-hex"
	if _, err := f.Fetch(context.Background(), l); err == nil || !engine.IsPermanent(err) {
		t.Errorf("malformed digest: %v", err)
	}
}

func TestFetchErrors(t *testing.T) {
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	ctx := context.Background()
	l := r.layer(t, "demo", "1.0.0", "", true)

	small := &HTTPFetcher{Dir: t.TempDir(), MaxBytes: 100}
	if _, err := small.Fetch(ctx, l); err == nil || !strings.Contains(err.Error(), "limit of 100") {
		t.Errorf("over the size limit: %v", err)
	}
	// A server that does not say the length is cut off while reading.
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.(http.Flusher).Flush()
		http.ServeFile(w, req, filepath.Join(r.dir, "demo-1.0.0.tgz"))
	}))
	defer chunked.Close()
	l2 := l
	l2.Artifacts = []v1.Artifact{{URL: chunked.URL + "/x.tgz", SHA256: l.Chart.Digest}}
	if _, err := small.Fetch(ctx, l2); err == nil || !strings.Contains(err.Error(), "limit of 100") {
		t.Errorf("streamed over the size limit: %v", err)
	}

	f := &HTTPFetcher{Dir: t.TempDir()}
	l3 := l
	l3.Artifacts = []v1.Artifact{{URL: r.srv.URL + "/missing.tgz", SHA256: l.Chart.Digest}}
	if _, err := f.Fetch(ctx, l3); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "/missing.tgz") {
		t.Errorf("404: %v", err)
	}
	oci := l
	oci.Artifacts, oci.Chart = nil, &v1.ChartRef{Repository: "oci://registry.example/charts", Name: "demo", Version: "1.0.0"}
	if _, err := f.Fetch(ctx, oci); err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "OCI") {
		t.Errorf("oci: %v", err)
	}
	if _, err := f.Fetch(ctx, v1.RenderedLayer{Name: "x"}); err == nil || !engine.IsPermanent(err) {
		t.Errorf("no chart: %v", err)
	}
}

func TestViaHub(t *testing.T) {
	rw := ViaHub("https://hub.example:8443/")
	up := "https://charts.example/demo-1.0.0.tgz?token=a&b=c"
	got, err := url.Parse(rw(up, "abc"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Host != "hub.example:8443" || got.Path != HubArtifactsPath || got.Query().Get("url") != up || got.Query().Get("sha256") != "abc" {
		t.Errorf("ViaHub = %s", got)
	}
	if q := must(url.Parse(rw(up, ""))).Query(); q.Has("sha256") {
		t.Errorf("sha256 sent without one: %v", q)
	}

	// Every download goes through the rewrite, index included.
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	var seen []string
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u := req.URL.Query().Get("url")
		seen = append(seen, req.URL.Path+" "+strings.TrimPrefix(u, r.srv.URL))
		http.Redirect(w, req, u, http.StatusFound)
	}))
	defer hub.Close()
	f := &HTTPFetcher{Dir: t.TempDir(), Rewrite: ViaHub(hub.URL)}
	if _, err := f.Fetch(context.Background(), r.layer(t, "demo", "1.0.0", "", false)); err != nil {
		t.Fatal(err)
	}
	want := []string{HubArtifactsPath + " /index.yaml", HubArtifactsPath + " /demo-1.0.0.tgz"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("hub saw %q, want %q", seen, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRedact(t *testing.T) {
	if got := redact("https://user:pw@host/x.tgz?sig=secret"); strings.Contains(got, "pw") || strings.Contains(got, "secret") {
		t.Errorf("redact leaks: %s", got)
	}
}

func TestContentFetcherAndChain(t *testing.T) {
	r := newChartRepo(t, demoChart("1.0.0", tplConfigMap))
	content := t.TempDir()
	archive, err := os.ReadFile(filepath.Join(r.dir, "demo-1.0.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"old-site", "store-eu", ".store-eu.import-123"} {
		os.MkdirAll(filepath.Join(content, b, "charts"), 0o755)
	}
	// A bundle with another build of the chart, one with the pinned one.
	os.WriteFile(filepath.Join(content, "old-site", "charts", "demo-1.0.0.tgz"), []byte("other build"), 0o644)
	os.WriteFile(filepath.Join(content, "store-eu", "charts", "demo-1.0.0.tgz"), archive, 0o644)

	l := r.layer(t, "demo", "1.0.0", "", true)
	local := ContentFetcher(content)
	p, err := local(context.Background(), l)
	if err != nil || p != filepath.Join(content, "store-eu", "charts", "demo-1.0.0.tgz") {
		t.Fatalf("ContentFetcher = %s, %v", p, err)
	}
	// Chain: the bundle answers, no download.
	f := Chain(local, (&HTTPFetcher{Dir: t.TempDir()}).Fetch)
	if _, err := f(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if n := r.requests("/demo-1.0.0.tgz"); n != 0 {
		t.Errorf("downloaded %d times although a bundle has it", n)
	}
	// Not in any bundle: the next fetcher downloads it.
	os.Remove(filepath.Join(content, "store-eu", "charts", "demo-1.0.0.tgz"))
	if _, err := local(context.Background(), l); !errors.Is(err, ErrNoChart) || !strings.Contains(err.Error(), "old-site") {
		t.Errorf("only a mismatching bundle: %v", err)
	}
	if _, err := f(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if n := r.requests("/demo-1.0.0.tgz"); n != 1 {
		t.Errorf("downloaded %d times, want 1", n)
	}
	if _, err := ContentFetcher(filepath.Join(content, "nope"))(context.Background(), l); !errors.Is(err, ErrNoChart) {
		t.Errorf("no content directory: %v", err)
	}
	if _, err := Chain(local)(context.Background(), l); !errors.Is(err, ErrNoChart) {
		t.Errorf("chain of one that finds nothing: %v", err)
	}
}
