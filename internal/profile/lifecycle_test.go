package profile

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func TestNormalize(t *testing.T) {
	p := &v1.ClusterProfile{Spec: v1.ClusterProfileSpec{Layers: []v1.ProfileLayer{{Pack: "k3s"}, {Name: "cni", Pack: "calico"}, {Manifests: []v1.Manifest{{Name: "a"}}}}}}
	Normalize(p)
	if p.APIVersion != v1.APIVersion || p.Kind != v1.KindClusterProfile {
		t.Errorf("type meta = %+v", p.TypeMeta)
	}
	for i, want := range []string{"k3s", "cni", ""} {
		if got := p.Spec.Layers[i].Name; got != want {
			t.Errorf("layer %d name = %q, want %q", i, got, want)
		}
	}
}

func TestDeepCopy(t *testing.T) {
	p := fullProfile(t)
	p.Metadata.Labels = map[string]string{"team": "stores"}
	c := DeepCopy(p)
	c.Metadata.Labels["team"] = "x"
	c.Spec.Layers[1].Presets[0] = "x"
	c.Spec.Layers[4].Manifests[0].Content = "x"
	c.Spec.Variables[0].Default = "x"
	if p.Metadata.Labels["team"] != "stores" || p.Spec.Layers[1].Presets[0] != "secrets-encryption" ||
		p.Spec.Layers[4].Manifests[0].Content == "x" || p.Spec.Variables[0].Default == "x" {
		t.Error("the copy shares memory with the original")
	}
}

func published(t testing.TB) *v1.ClusterProfile {
	p := fullProfile(t)
	p.Spec.Published = true
	return p
}

func TestCheckUpdate(t *testing.T) {
	tests := []struct {
		name   string
		old    func(t testing.TB) *v1.ClusterProfile
		mutate func(p *v1.ClusterProfile)
		field  string // "" for allowed
		msg    string
	}{
		{name: "unpublished can change", old: fullProfile, mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Version = "3.27.3"; p.Spec.Version = "2.0.0" }},
		{name: "publishing", old: fullProfile, mutate: func(p *v1.ClusterProfile) { p.Spec.Published = true }},
		{name: "published, unchanged", old: published, mutate: func(p *v1.ClusterProfile) {}},
		{name: "published, status and bookkeeping change", old: published, mutate: func(p *v1.ClusterProfile) {
			p.Status.Resolved = []v1.ResolvedLayerVersion{{Layer: "k3s", Version: "1.30.4+k3s1"}}
			p.Status.ResolvedHash = "abc"
			p.Metadata.Revision = 7
			p.Metadata.UpdatedAt = time.Now()
		}},
		{name: "published, defaulted layer names are no change", old: published, mutate: func(p *v1.ClusterProfile) { layer(p, "k3s").Name = "k3s" }},
		{name: "published, empty lists are no change", old: published, mutate: func(p *v1.ClusterProfile) { layer(p, "ubuntu").Presets = []string{} }},
		{
			name: "published, a layer changes", old: published,
			mutate: func(p *v1.ClusterProfile) { layer(p, "calico").Values = "" },
			field:  "spec.layers[calico]", msg: "profile store-edge 1.0.0 is published and cannot change; bump or clone it",
		},
		{name: "published, a layer is added", old: published, mutate: func(p *v1.ClusterProfile) { p.Spec.Layers = append(p.Spec.Layers, rawLayer("x")) }, field: "spec.layers", msg: "is published"},
		{name: "published, description", old: published, mutate: func(p *v1.ClusterProfile) { p.Spec.Description = "better" }, field: "spec.description", msg: "is published"},
		{name: "published, version", old: published, mutate: func(p *v1.ClusterProfile) { p.Spec.Version = "1.0.1" }, field: "spec.version", msg: "is published"},
		{name: "published, type", old: published, mutate: func(p *v1.ClusterProfile) { p.Spec.Type = v1.ProfileInfra }, field: "spec.type", msg: "is published"},
		{name: "published, variables", old: published, mutate: func(p *v1.ClusterProfile) { p.Spec.Variables[0].Default = "10.0.0.0/8" }, field: "spec.variables", msg: "is published"},
		{name: "unpublishing", old: published, mutate: func(p *v1.ClusterProfile) { p.Spec.Published = false }, field: "spec.published", msg: "cannot be unpublished"},
		{name: "renaming", old: fullProfile, mutate: func(p *v1.ClusterProfile) { p.Metadata.Name = "other" }, field: "metadata.name", msg: "cannot change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := tt.old(t)
			upd := DeepCopy(old)
			tt.mutate(upd)
			err := CheckUpdate(old, upd)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("CheckUpdate: %v", err)
				}
				return
			}
			wantFieldError(t, err, tt.field, tt.msg)
		})
	}
}

func TestBump(t *testing.T) {
	p := published(t)
	p.Spec.Version = "1.4.2"
	p.Metadata.Project, p.Metadata.Revision, p.Metadata.CreatedAt = "stores", 12, time.Now()
	p.Metadata.Labels = map[string]string{"team": "edge"}
	p.Status.ResolvedHash = "abc"
	for part, want := range map[string]string{"major": "2.0.0", "minor": "1.5.0", "patch": "1.4.3"} {
		b, err := Bump(p, part)
		if err != nil {
			t.Fatalf("Bump %s: %v", part, err)
		}
		if b.Spec.Version != want || b.Spec.Published || b.Metadata.Revision != 0 || !b.Metadata.CreatedAt.IsZero() || b.Status.ResolvedHash != "" {
			t.Errorf("Bump %s = version %s published %v meta %+v status %+v", part, b.Spec.Version, b.Spec.Published, b.Metadata, b.Status)
		}
		if b.Metadata.Name != "store-edge" || b.Metadata.Project != "stores" || b.Metadata.Labels["team"] != "edge" {
			t.Errorf("Bump %s lost metadata: %+v", part, b.Metadata)
		}
		n := DeepCopy(p)
		Normalize(n)
		if !sameJSON(b.Spec.Layers, n.Spec.Layers) || !sameJSON(b.Spec.Variables, n.Spec.Variables) {
			t.Errorf("Bump %s changed the layers or variables", part)
		}
		if p.Spec.Version != "1.4.2" || !p.Spec.Published {
			t.Fatal("Bump changed its input")
		}
	}
	p.Spec.Version = "1.4.2-rc.1+build5"
	if b, err := Bump(p, "patch"); err != nil || b.Spec.Version != "1.4.3" {
		t.Errorf("Bump of a pre-release = %v, %v", b, err)
	}
	if _, err := Bump(p, "micro"); err == nil || !strings.Contains(err.Error(), `"micro" is not major, minor or patch`) {
		t.Errorf("Bump micro: %v", err)
	}
	p.Spec.Version = "one"
	wantFieldError(t, func() error { _, err := Bump(p, "patch"); return err }(), "spec.version", "not a semantic version")
}

func TestClone(t *testing.T) {
	p := published(t)
	c, err := Clone(p, "store-edge-eu", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Name != "store-edge-eu" || c.Spec.Version != "1.0.0" || c.Spec.Published {
		t.Errorf("clone = %s %s published=%v", c.Metadata.Name, c.Spec.Version, c.Spec.Published)
	}
	if err := Validate(c, testPacks(), testOpts); err != nil {
		t.Errorf("the clone does not validate: %v", err)
	}
	c.Spec.Layers[0].Version = "24.04.1"
	if p.Spec.Layers[0].Version != "22.04.4" {
		t.Error("the clone shares layers with the original")
	}
	if c, err := Clone(p, "other", "2.0.0"); err != nil || c.Spec.Version != "2.0.0" {
		t.Errorf("Clone with a version = %v, %v", c, err)
	}
	_, err = Clone(p, "Bad Name", "x")
	wantFieldError(t, err, "metadata.name", "not a DNS label")
	wantFieldError(t, err, "spec.version", `"x" is not a semantic version`)
}
