package examples

import (
	"fmt"
	"os"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/profile"
)

type builtin map[string]*v1.Pack

func (b builtin) Pack(registry, name string) (*v1.Pack, error) {
	if p, ok := b[name]; ok && (registry == "" || registry == "builtin") {
		return p, nil
	}
	return nil, fmt.Errorf("pack %q not in the built-in catalog", name)
}

func TestStoreEdgeRendersAgainstTheBuiltinCatalog(t *testing.T) {
	packs, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	b := builtin{}
	for i := range packs {
		b[packs[i].Spec.Name] = &packs[i]
	}
	data, err := os.ReadFile("store-edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := profile.Render(p, b, profile.RenderOptions{Resolver: catalog.Resolve, Vars: map[string]string{"siteCode": "de-017"}})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, l := range r.Layers {
		order = append(order, l.Layer)
	}
	if got := strings.Join(order, ","); got != "os,k8s,cni,csi,addon" {
		t.Fatalf("layer order %s", got)
	}
	k3s := r.Layers[1]
	if !strings.HasPrefix(k3s.Version, "1.32.") || k3s.Train != "1.32.x" {
		t.Errorf("k3s resolved to %s on train %q", k3s.Version, k3s.Train)
	}
	if !strings.Contains(k3s.Values, "flannel-backend: none") {
		t.Errorf("k3s values lack the external-cni preset that a CNI layer switches on:\n%s", k3s.Values)
	}
	if !strings.Contains(r.Layers[4].Manifests[len(r.Layers[4].Manifests)-1].Content, `site: "de-017"`) {
		t.Errorf("variable not substituted in the attached manifest: %+v", r.Layers[4].Manifests)
	}
	if _, err := profile.Render(p, b, profile.RenderOptions{Resolver: catalog.Resolve}); err == nil {
		t.Error("rendering without the required siteCode succeeded")
	}
}

// The first profile in docs/profiles.md must render too.
func TestProfilesDocExampleRenders(t *testing.T) {
	packs, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	b := builtin{}
	for i := range packs {
		b[packs[i].Spec.Name] = &packs[i]
	}
	doc, err := os.ReadFile("../docs/profiles.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in docs/profiles.md")
	}
	block, _, _ := strings.Cut(rest, "```")
	p, err := profile.Decode([]byte(block))
	if err != nil {
		t.Fatal(err)
	}
	r, err := profile.Render(p, b, profile.RenderOptions{Resolver: catalog.Resolve, Vars: map[string]string{"siteCode": "de-017"}})
	if err != nil {
		t.Fatalf("docs/profiles.md example: %v", err)
	}
	if len(r.Layers) != 6 || r.Layers[5].Name != "store-apps" {
		t.Errorf("docs example renders %d layers, want 6 ending with the raw store-apps layer", len(r.Layers))
	}
}
