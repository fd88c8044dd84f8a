package catalog

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

const brokenIndex = `apiVersion: outpost.dev/v1
kind: PackIndex
packs:
  - name: fine
    layer: addon
    type: helm
    versions:
      - version: 1.0.0
        chart: {repository: https://charts.example.com, name: fine, version: 1.0.0}
  - name: broken
    layer: addon
    type: helm
    versions:
      - version: 1.0.0
      - version: "1.0"
        chart: {repository: https://charts.example.com, name: broken, version: "1.0"}
`

func packIndexServer(t *testing.T) *httptest.Server {
	t.Helper()
	index, err := os.ReadFile("testdata/packindex/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	serve := func(path string, body []byte) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	}
	serve("/packs/index.yaml", index)
	serve("/custom/acme.yml", index)
	serve("/broken/index.yaml", []byte(brokenIndex))
	serve("/helm/index.yaml", []byte("apiVersion: v1\nentries: {}\n"))
	serve("/dup/index.yaml", []byte("apiVersion: outpost.dev/v1\nkind: PackIndex\npacks:\n"+
		"  - {name: a, layer: addon, type: helm, versions: [{version: 1.0.0, chart: {repository: https://x.example, name: a, version: 1.0.0}}]}\n"+
		"  - {name: a, layer: addon, type: helm, versions: [{version: 2.0.0, chart: {repository: https://x.example, name: a, version: 2.0.0}}]}\n"))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func checkAcmeIndex(t *testing.T, packs []v1.Pack) {
	t.Helper()
	if len(packs) != 2 {
		t.Fatalf("got %d packs, want 2", len(packs))
	}
	agent, osPack := packs[0], packs[1]
	if agent.Metadata.Name != "acme/acme-agent" || osPack.Metadata.Name != "acme/acme-os" {
		t.Errorf("names = %s, %s", agent.Metadata.Name, osPack.Metadata.Name)
	}
	if agent.Spec.Registry != "acme" || osPack.Spec.Registry != "acme" {
		t.Errorf("registry not set to the registry's name: %q, %q", agent.Spec.Registry, osPack.Spec.Registry)
	}
	if v := agent.Spec.Versions; len(v) != 2 || v[0].Version != "2.3.1" || v[0].Presets[0].Name != "debug" || v[0].Constraints.Requires[0].Pack != "cert-manager" {
		t.Errorf("acme-agent versions = %+v", v)
	}
}

func TestFetchPackIndexHTTP(t *testing.T) {
	ts := packIndexServer(t)
	for _, u := range []string{ts.URL + "/packs", ts.URL + "/packs/", ts.URL + "/packs/index.yaml", ts.URL + "/custom/acme.yml"} {
		packs, err := Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, URL: u}, ts.Client())
		if err != nil {
			t.Fatalf("Fetch(%s): %v", u, err)
		}
		checkAcmeIndex(t, packs)
	}
}

func TestFetchPackIndexFailures(t *testing.T) {
	ts := packIndexServer(t)
	url := func(p string) v1.RegistrySpec { return v1.RegistrySpec{Type: v1.RegistryPackIndex, URL: ts.URL + p} }
	tests := []struct {
		name string
		spec v1.RegistrySpec
		want []string
		is   error
	}{
		{"404", url("/nothing"), []string{`registry "acme": fetch ` + ts.URL + `/nothing/index.yaml: the server answered 404 Not Found`}, nil},
		{"a Helm index", url("/helm"), []string{`registry "acme": ` + ts.URL + `/helm/index.yaml: not a pack index: apiVersion is "v1", want outpost.dev/v1`}, nil},
		{"duplicate packs", url("/dup"), []string{`packs[1]: pack "a" is already defined by packs[0]`}, nil},
		{"both", v1.RegistrySpec{Type: v1.RegistryPackIndex, URL: ts.URL, Directory: "/srv"}, []string{"not both"}, errs.ErrInvalid},
		{"neither", v1.RegistrySpec{Type: v1.RegistryPackIndex}, []string{"needs a url or a directory"}, errs.ErrInvalid},
		{"file url", v1.RegistrySpec{Type: v1.RegistryPackIndex, URL: "file:///srv/index.yaml"}, []string{"want an absolute http or https URL"}, errs.ErrInvalid},
		{"missing directory", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: "/nonexistent/packs"}, []string{`registry "acme": directory /nonexistent/packs: `, "no such file"}, nil},
		{"file as directory", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: "testdata/packindex/index.yaml"}, []string{"not a directory"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Fetch(context.Background(), "acme", tt.spec, ts.Client())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

// One invalid pack fails the fetch with its field errors, so that the
// registry keeps its last good catalog.
func TestFetchPackIndexInvalidPack(t *testing.T) {
	ts := packIndexServer(t)
	_, err := Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, URL: ts.URL + "/broken"}, ts.Client())
	if err == nil {
		t.Fatal("an index with an invalid pack was accepted")
	}
	for _, w := range []string{`registry "acme": ` + ts.URL + `/broken/index.yaml: packs[1]: pack "broken": `, "versions[0].chart: a helm pack needs a chart", `versions[1].version: "1.0" is not MAJOR.MINOR.PATCH`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	var fl errs.FieldList
	if !errors.As(err, &fl) || !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("error %T does not carry the field errors", err)
	}
}

func TestFetchPackIndexDirectory(t *testing.T) {
	// A directory with an index.yaml reads just that.
	dir := t.TempDir()
	index, err := os.ReadFile("testdata/packindex/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	// This one would fail; the index wins.
	if err := os.WriteFile(filepath.Join(dir, "stray.yaml"), []byte("not a pack"), 0o644); err != nil {
		t.Fatal(err)
	}
	packs, err := Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: dir}, nil)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	checkAcmeIndex(t, packs)

	// Without one, every pack file (.yaml and .yml; not hidden files, not
	// other files).
	packs, err = Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: "testdata/packfiles"}, nil)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	var names []string
	for _, p := range packs {
		names = append(names, p.Metadata.Name)
	}
	if !reflect.DeepEqual(names, []string{"acme/acme-k3s", "acme/acme-policies"}) {
		t.Errorf("packs = %v", names)
	}

	// An empty directory is an error, not an empty catalog.
	_, err = Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: t.TempDir()}, nil)
	if err == nil || !strings.Contains(err.Error(), "has neither an index.yaml nor any *.yaml pack file") {
		t.Errorf("empty directory: %v", err)
	}

	// A pack file with a typo names the file and the key.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "mine.yaml"), []byte("name: mine\nlayer: addon\ntyp: helm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: bad}, nil)
	if err == nil || !strings.Contains(err.Error(), "mine.yaml: ") || !strings.Contains(err.Error(), "field typ not found") {
		t.Errorf("pack file with a typo: %v", err)
	}

	// An invalid pack names the file and the field.
	if err := os.WriteFile(filepath.Join(bad, "mine.yaml"), []byte("name: mine\nlayer: addon\ntype: helm\nversions: [{version: 1.0.0}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: bad}, nil)
	if err == nil || !strings.Contains(err.Error(), `mine.yaml: pack "mine": versions[0].chart`) {
		t.Errorf("invalid pack file: %v", err)
	}

	// An oversized index file is refused.
	big := t.TempDir()
	defer func(old int64) { maxIndexBytes = old }(maxIndexBytes)
	maxIndexBytes = 100
	if err := os.WriteFile(filepath.Join(big, "index.yaml"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(context.Background(), "acme", v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: big}, nil)
	if err == nil || !strings.Contains(err.Error(), "index.yaml: larger than") {
		t.Errorf("oversized index file: %v", err)
	}
}

func TestFetchCustomCA(t *testing.T) {
	index, err := os.ReadFile("testdata/packindex/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(index) }))
	defer ts.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}))
	spec := v1.RegistrySpec{Type: v1.RegistryPackIndex, URL: ts.URL + "/index.yaml"}

	if _, err := Fetch(context.Background(), "acme", spec, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unknown CA was trusted: %v", err)
	}
	spec.CACert = caPEM
	packs, err := Fetch(context.Background(), "acme", spec, nil)
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	checkAcmeIndex(t, packs)
	// The caller's client (and its transport settings) is kept.
	packs, err = Fetch(context.Background(), "acme", spec, &http.Client{Transport: &http.Transport{}})
	if err != nil || len(packs) != 2 {
		t.Errorf("with the CA and a client: %d packs, %v", len(packs), err)
	}
	if _, err := Fetch(context.Background(), "acme", spec, &http.Client{Transport: roundTripFunc(nil)}); err == nil || !strings.Contains(err.Error(), "needs an *http.Transport") {
		t.Errorf("custom round tripper: %v", err)
	}
	spec.CACert = "-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n"
	if _, err := Fetch(context.Background(), "acme", spec, nil); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), `registry "acme": caCert: no PEM certificate`) {
		t.Errorf("a broken CA: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFetchBuiltin(t *testing.T) {
	want, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Fetch(context.Background(), "builtin", v1.RegistrySpec{Type: v1.RegistryBuiltin}, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Fetch(builtin) = %d packs, %v; want Builtin()", len(got), err)
	}
	// Served under another name, the packs carry that name.
	got, err = Fetch(context.Background(), "core", v1.RegistrySpec{Type: v1.RegistryBuiltin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p.Spec.Registry != "core" || p.Metadata.Name != "core/"+p.Spec.Name {
			t.Errorf("pack %s in registry %s", p.Metadata.Name, p.Spec.Registry)
		}
	}
}

func TestFetchBadArguments(t *testing.T) {
	if _, err := Fetch(context.Background(), "My_Registry", v1.RegistrySpec{Type: v1.RegistryBuiltin}, nil); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := Fetch(context.Background(), "x", v1.RegistrySpec{Type: "oci"}, nil); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), `type "oci" is not one of builtin, pack-index, helm`) {
		t.Errorf("bad type: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, "x", v1.RegistrySpec{Type: v1.RegistryBuiltin}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
	ts := packIndexServer(t)
	if _, err := Fetch(ctx, "x", v1.RegistrySpec{Type: v1.RegistryPackIndex, URL: ts.URL + "/packs"}, ts.Client()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context over HTTP: %v", err)
	}
}
