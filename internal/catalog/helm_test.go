package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

func digestOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// helmServer serves testdata/helm/index.yaml as the repository /charts,
// and a few broken repositories next to it.
func helmServer(t *testing.T) *httptest.Server {
	t.Helper()
	index, err := os.ReadFile("testdata/helm/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /charts/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-yaml")
		w.Write(index)
	})
	serve := func(path, body string) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
	}
	serve("/empty/index.yaml", "apiVersion: v1\nentries: {}\n")
	serve("/broken/index.yaml", "apiVersion: v1\nentries:\n  nginx: [ {name: nginx\n")
	serve("/html/index.yaml", "<!DOCTYPE html>\n<html><body>Moved</body></html>\n")
	serve("/noversion/index.yaml", "entries: {}\n")
	serve("/v2/index.yaml", "apiVersion: v2\nentries: {}\n")
	serve("/json/index.yaml", `{"apiVersion":"v1","entries":{"redis":[{"name":"redis","version":"20.1.0","urls":["https://charts.example.com/redis-20.1.0.tgz"],"digest":"`+digestOf("redis")+`"}]}}`)
	mux.HandleFunc("GET /big/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		// Streamed without a Content-Length, so only reading tells.
		chunk := []byte(strings.Repeat("# padding\n", 1<<16))
		w.Write([]byte("apiVersion: v1\n"))
		for written := int64(0); written <= maxIndexBytes; written += int64(len(chunk)) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /announced-big/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(maxIndexBytes+1, 10))
		w.Write([]byte("apiVersion: v1\n"))
	})
	mux.HandleFunc("GET /private/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "robot" || p != "s3cret" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("apiVersion: v1\nentries:\n  app:\n  - name: app\n    version: 1.0.0\n    urls: [app-1.0.0.tgz]\n    digest: " + digestOf("app") + "\n"))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestFetchHelm(t *testing.T) {
	ts := helmServer(t)
	repo := ts.URL + "/charts"
	packs, err := Fetch(context.Background(), "bitnami", v1.RegistrySpec{Type: v1.RegistryHelm, URL: repo}, ts.Client())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	var names []string
	byName := map[string]v1.PackSpec{}
	for _, p := range packs {
		names = append(names, p.Metadata.Name)
		byName[p.Spec.Name] = p.Spec
		if p.Spec.Registry != "bitnami" || p.Spec.Layer != v1.LayerAddon || p.Spec.Type != v1.PackHelm || p.Kind != v1.KindPack {
			t.Errorf("%s: %+v", p.Metadata.Name, p.Spec)
		}
	}
	// common is a library chart, nourls cannot be downloaded, odd has no
	// usable version: all left out.
	want := []string{"bitnami/badkube", "bitnami/nginx", "bitnami/subdir", "bitnami/tigera-operator"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("packs = %v, want %v", names, want)
	}

	nginx := byName["nginx"]
	wantNginx := []v1.PackVersion{
		{
			Version:     "18.1.11",
			Constraints: &v1.Constraints{Kubernetes: ">=1.23.0-0"},
			Chart:       &v1.ChartRef{Repository: repo, Name: "nginx", Version: "18.1.11", Digest: digestOf("nginx-18.1.11")},
			Artifacts:   []v1.Artifact{{Name: "nginx-18.1.11.tgz", URL: repo + "/nginx-18.1.11.tgz", SHA256: digestOf("nginx-18.1.11")}},
		},
		{
			Version:     "18.1.10",
			Constraints: &v1.Constraints{Kubernetes: ">=1.23.0-0"},
			Chart:       &v1.ChartRef{Repository: repo, Name: "nginx", Version: "18.1.10", Digest: digestOf("nginx-18.1.10")},
			Artifacts:   []v1.Artifact{{Name: "nginx-18.1.10.tgz", URL: "https://mirror.example.com/archive/nginx-18.1.10.tgz", SHA256: digestOf("nginx-18.1.10")}},
		},
		{
			Version:    "17.3.3",
			Deprecated: true,
			Chart:      &v1.ChartRef{Repository: repo, Name: "nginx", Version: "17.3.3", Digest: digestOf("nginx-17.3.3")},
			Artifacts:  []v1.Artifact{{Name: "nginx-17.3.3.tgz", URL: repo + "/nginx-17.3.3.tgz", SHA256: digestOf("nginx-17.3.3")}},
		},
	}
	if !reflect.DeepEqual(nginx.Versions, wantNginx) {
		t.Errorf("nginx versions:\n got %+v\nwant %+v", nginx.Versions, wantNginx)
	}
	if !strings.HasPrefix(nginx.Description, "NGINX Open Source is a web server") {
		t.Errorf("nginx description = %q, want the newest version's", nginx.Description)
	}

	// Helm's v stays on the chart ref; the pack version goes without it.
	tigera := byName["tigera-operator"]
	if v := tigera.Versions; len(v) != 2 || v[0].Version != "3.29.1" || v[0].Chart.Version != "v3.29.1" || v[0].Constraints.Kubernetes != ">= 1.24.0-0" {
		t.Errorf("tigera-operator versions = %+v", v)
	}
	// No digest: no digest, and no artifact that could not be verified.
	if v := tigera.Versions[1]; v.Chart.Digest != "" || v.Artifacts != nil || v.Constraints != nil {
		t.Errorf("tigera-operator v3.28.2 = %+v", v)
	}

	// A subdirectory URL resolves under the repository; a sha256: prefix
	// and upper case are normalized; a prerelease is kept (trains skip it).
	subdir := byName["subdir"]
	if v := subdir.Versions[0]; v.Version != "2.1.0-rc.1" || v.Chart.Digest != digestOf("subdir-2.1.0-rc.1") || v.Artifacts[0].URL != repo+"/charts/subdir-2.1.0-rc.1.tgz" {
		t.Errorf("subdir 2.1.0-rc.1 = %+v", v)
	}
	if pv, err := ResolvePack(&subdir, "latest"); err != nil || pv.Version != "2.0.0" {
		t.Errorf("subdir latest = %v, %v", pv, err)
	}

	// A version whose kubeVersion does not parse is left out, not the chart.
	if v := byName["badkube"].Versions; len(v) != 1 || v[0].Version != "0.9.0" {
		t.Errorf("badkube versions = %+v", v)
	}

	// The repository may be given with a slash or as its index's URL.
	for _, u := range []string{repo + "/", repo + "/index.yaml"} {
		again, err := Fetch(context.Background(), "bitnami", v1.RegistrySpec{Type: v1.RegistryHelm, URL: u}, ts.Client())
		if err != nil {
			t.Fatalf("Fetch(%s): %v", u, err)
		}
		if !reflect.DeepEqual(again, packs) {
			t.Errorf("Fetch(%s) differs from Fetch(%s)", u, repo)
		}
	}
}

func TestFetchHelmFailures(t *testing.T) {
	ts := helmServer(t)
	spec := func(path string) v1.RegistrySpec {
		return v1.RegistrySpec{Type: v1.RegistryHelm, URL: ts.URL + path}
	}
	tests := []struct {
		name string
		spec v1.RegistrySpec
		want string
		is   error
	}{
		{"404", spec("/gone"), `registry "bitnami": fetch ` + ts.URL + `/gone/index.yaml: the server answered 404 Not Found`, nil},
		{"not YAML", spec("/broken"), `registry "bitnami": ` + ts.URL + `/broken/index.yaml: not a Helm repository index: `, nil},
		{"an HTML page", spec("/html"), "not a Helm repository index", nil},
		{"no apiVersion", spec("/noversion"), "not a Helm repository index: it has no apiVersion", nil},
		{"other apiVersion", spec("/v2"), `apiVersion is "v2", want v1`, nil},
		{"streamed too large", spec("/big"), `registry "bitnami": fetch ` + ts.URL + `/big/index.yaml: the index is larger than 32 MiB`, nil},
		{"announced too large", spec("/announced-big"), "the index is larger than 32 MiB", nil},
		{"wrong password", v1.RegistrySpec{Type: v1.RegistryHelm, URL: strings.Replace(ts.URL, "http://", "http://robot:wrong@", 1) + "/private"}, "401 Unauthorized", nil},
		{"oci", v1.RegistrySpec{Type: v1.RegistryHelm, URL: "oci://ghcr.io/acme/charts"}, "is an OCI registry", errs.ErrInvalid},
		{"no url", v1.RegistrySpec{Type: v1.RegistryHelm}, "needs a url", errs.ErrInvalid},
		{"directory", v1.RegistrySpec{Type: v1.RegistryHelm, Directory: "/srv/charts"}, "not a directory", errs.ErrInvalid},
		{"ftp", v1.RegistrySpec{Type: v1.RegistryHelm, URL: "ftp://charts.example.com"}, "want an absolute http or https URL", errs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			packs, err := Fetch(context.Background(), "bitnami", tt.spec, ts.Client())
			if err == nil {
				t.Fatalf("Fetch = %d packs, want an error", len(packs))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestFetchHelmSmallCases(t *testing.T) {
	ts := helmServer(t)
	fetch := func(u string) []v1.Pack {
		t.Helper()
		packs, err := Fetch(context.Background(), "repo", v1.RegistrySpec{Type: v1.RegistryHelm, URL: u}, ts.Client())
		if err != nil {
			t.Fatalf("Fetch(%s): %v", u, err)
		}
		return packs
	}
	if packs := fetch(ts.URL + "/empty"); len(packs) != 0 {
		t.Errorf("an empty repository gave %d packs", len(packs))
	}
	if packs := fetch(ts.URL + "/json"); len(packs) != 1 || packs[0].Metadata.Name != "repo/redis" {
		t.Errorf("a JSON index gave %+v", packs)
	}
	// Credentials in the URL are used, and kept out of the packs, which
	// every project can read.
	packs := fetch(strings.Replace(ts.URL, "http://", "http://robot:s3cret@", 1) + "/private")
	if len(packs) != 1 {
		t.Fatalf("private repository gave %d packs", len(packs))
	}
	pv := packs[0].Spec.Versions[0]
	if pv.Chart.Repository != ts.URL+"/private" || pv.Artifacts[0].URL != ts.URL+"/private/app-1.0.0.tgz" {
		t.Errorf("private chart = %+v, %+v", pv.Chart, pv.Artifacts)
	}
}

func TestResolveChartURL(t *testing.T) {
	tests := []struct{ base, ref, want string }{
		{"https://charts.example.com", "nginx-1.0.0.tgz", "https://charts.example.com/nginx-1.0.0.tgz"},
		{"https://charts.example.com/", "nginx-1.0.0.tgz", "https://charts.example.com/nginx-1.0.0.tgz"},
		{"https://example.com/helm/stable", "nginx-1.0.0.tgz", "https://example.com/helm/stable/nginx-1.0.0.tgz"},
		{"https://example.com/helm/stable", "../archive/x.tgz", "https://example.com/helm/archive/x.tgz"},
		{"https://example.com/helm", "/abs/x.tgz", "https://example.com/abs/x.tgz"},
		{"https://example.com/helm?token=abc", "x.tgz", "https://example.com/helm/x.tgz?token=abc"},
		{"https://example.com/helm?token=abc", "x.tgz?sig=1", "https://example.com/helm/x.tgz?sig=1"},
		{"https://example.com/helm", "https://u:p@cdn.example.com/x.tgz", "https://cdn.example.com/x.tgz"},
	}
	for _, tt := range tests {
		base, err := parseHTTPURL(tt.base)
		if err != nil {
			t.Fatal(err)
		}
		got, err := resolveChartURL(base, tt.ref)
		if err != nil || got.String() != tt.want {
			t.Errorf("resolveChartURL(%s, %s) = %v, %v; want %s", tt.base, tt.ref, got, err, tt.want)
		}
	}
}
