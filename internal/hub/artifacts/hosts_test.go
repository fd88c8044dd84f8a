package artifacts_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/provider/helm"
	"github.com/outpost-edge/outpost/internal/hub/artifacts"
)

// Two hosts of a site fetch the same chart through their hub, the way the
// agent's Helm applier does (helm.ViaHub): upstream serves it once.
func TestHostsFetchThroughHub(t *testing.T) {
	archive := []byte("not really a chart archive, but the fetcher only verifies")
	sum := sha256.Sum256(archive)
	digest := hex.EncodeToString(sum[:])
	var mu sync.Mutex
	calls := map[string]int{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/charts/index.yaml":
			io.WriteString(w, "apiVersion: v1\nentries:\n  demo:\n    - version: 1.0.0\n      urls: [demo-1.0.0.tgz]\n      digest: "+digest+"\n")
		case "/charts/demo-1.0.0.tgz":
			w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()

	cache := &artifacts.Cache{Dir: t.TempDir(), Allow: func(string) bool { return true }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mux := http.NewServeMux()
	mux.Handle("GET "+artifacts.Path, cache.Handler())
	hub := httptest.NewServer(mux)
	defer hub.Close()
	if helm.HubArtifactsPath != artifacts.Path || helm.HeaderArtifactSHA256 != artifacts.HeaderSHA256 {
		t.Fatal("the agent's idea of the hub's artifact route differs from the hub's")
	}

	pinned := v1.RenderedLayer{
		Name: "demo", Type: v1.PackHelm,
		Chart:     &v1.ChartRef{Repository: up.URL + "/charts", Name: "demo", Version: "1.0.0", Digest: digest},
		Artifacts: []v1.Artifact{{Name: "demo-1.0.0.tgz", URL: up.URL + "/charts/demo-1.0.0.tgz", SHA256: digest}},
	}
	fromIndex := pinned
	fromIndex.Artifacts = nil
	fromIndex.Chart = &v1.ChartRef{Repository: up.URL + "/charts", Name: "demo", Version: "1.0.0"}

	for host := range 3 {
		for _, l := range []v1.RenderedLayer{pinned, fromIndex} {
			f := &helm.HTTPFetcher{Dir: t.TempDir(), Rewrite: helm.ViaHub(hub.URL)}
			p, err := f.Fetch(context.Background(), l)
			if err != nil {
				t.Fatalf("host %d: %v", host, err)
			}
			if b, _ := os.ReadFile(p); string(b) != string(archive) {
				t.Fatalf("host %d: fetched %q", host, b)
			}
		}
	}
	mu.Lock()
	if calls["/charts/demo-1.0.0.tgz"] != 1 || calls["/charts/index.yaml"] != 1 {
		t.Errorf("upstream calls %v; want each file once for six fetches", calls)
	}
	mu.Unlock()

	// A hub that cannot get the file: the agent's error names upstream.
	f := &helm.HTTPFetcher{Dir: t.TempDir(), Rewrite: helm.ViaHub(hub.URL)}
	missing := pinned
	missing.Artifacts = []v1.Artifact{{URL: up.URL + "/charts/nope.tgz", SHA256: digest}}
	_, err := f.Fetch(context.Background(), missing)
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "upstream "+up.URL+"/charts/nope.tgz: 404 Not Found") {
		t.Errorf("missing upstream file: %v", err)
	}
}
