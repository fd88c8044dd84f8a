package helm

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// chartRepo is a Helm chart repository served by the test: chart archives
// and the index.yaml that lists them, as `helm repo index` writes it.
type chartRepo struct {
	srv *httptest.Server
	dir string

	mu   sync.Mutex
	hits map[string]int
}

// Templates of the test chart "demo". The ConfigMap shows what the chart
// was given; the Deployment never becomes available (there is no kubelet).
const (
	tplConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
  chartVersion: {{ .Chart.Version | quote }}
  sawPrivateKey: {{ hasKey .Values "outpost" | quote }}
`
	tplDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-app
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: registry.invalid/app:1
`
	// tplFailRender makes the chart fail to render.
	tplFailRender = `{{ fail "the demo chart refuses to render" }}`
	// tplCreated is an object only the broken chart 1.3.0 has, which Helm
	// creates before it reaches tplInvalid.
	tplCreated = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-new
data: {}
`
	// tplInvalid renders, passes Helm's schema check and is refused by the
	// API server (a ConfigMap key may not hold a space). Its name sorts
	// after the good ConfigMap, which Helm has updated by the time this one
	// fails: the rollback must undo that.
	tplInvalid = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-zz-invalid
data:
  "not a valid key": "x"
`
)

// demoChart is chart "demo" at version with the named templates.
func demoChart(version string, templates ...string) *chart.Chart {
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "demo", Version: version, AppVersion: "1", Type: "application"},
		Raw:      []*chart.File{{Name: chartutil.ValuesfileName, Data: []byte("greeting: hello\n")}},
		Values:   map[string]any{"greeting": "hello"},
	}
	for i, tpl := range templates {
		ch.Templates = append(ch.Templates, &chart.File{Name: "templates/t" + string(rune('a'+i)) + ".yaml", Data: []byte(tpl)})
	}
	return ch
}

// newChartRepo packages charts into a repository served over HTTP.
func newChartRepo(t testing.TB, charts ...*chart.Chart) *chartRepo {
	t.Helper()
	r := &chartRepo{dir: t.TempDir(), hits: map[string]int{}}
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits[req.URL.Path]++
		r.mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	for _, ch := range charts {
		if _, err := chartutil.Save(ch, r.dir); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := repo.IndexDirectory(r.dir, r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(r.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *chartRepo) requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[path]
}

// digest is the sha256 of a chart archive in the repository.
func (r *chartRepo) digest(t testing.TB, version string) string {
	t.Helper()
	sum, err := fileSHA256(filepath.Join(r.dir, "demo-"+version+".tgz"))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// layer is a helm layer of chart demo at version, as the hub renders it.
// With artifact, the chart archive is pinned the way the catalog records
// it for a Helm registry; without, the fetcher resolves it in the index,
// as for the built-in packs.
func (r *chartRepo) layer(t testing.TB, name, version, values string, artifact bool) v1.RenderedLayer {
	l := v1.RenderedLayer{
		Name: name, Layer: v1.LayerAddon, Type: v1.PackHelm, Pack: "demo", Registry: "test", Version: version,
		Values: values, Chart: &v1.ChartRef{Repository: r.srv.URL, Name: "demo", Version: version},
	}
	if artifact {
		d := r.digest(t, version)
		l.Chart.Digest = d
		l.Artifacts = []v1.Artifact{{Name: "demo-" + version + ".tgz", URL: r.srv.URL + "/demo-" + version + ".tgz", SHA256: d}}
	}
	return l
}

func initApply(key string, l v1.RenderedLayer) engine.LayerAction {
	return engine.LayerAction{Op: engine.LayerApply, Layer: l, Key: key, Distro: "k3s", Role: v1.RoleInit}
}

func initRemove(key string, l v1.RenderedLayer) engine.LayerAction {
	a := initApply(key, l)
	a.Op = engine.LayerRemove
	return a
}
