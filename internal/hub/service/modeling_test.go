package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

const widgetPack = `name: widget
registry: lab
layer: addon
type: manifest
versions:
  - version: 1.0.0
    values: |
      replicas: 1
    manifests:
      - name: widget
        content: |
          apiVersion: v1
          kind: ConfigMap
          metadata:
            name: widget
          data:
            replicas: "{{ .Values.replicas }}"
`

func writePack(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "widget.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A registry whose source breaks keeps the packs of its last good sync and
// says why in its status; a later good sync clears the error.
func TestRegistryKeepsLastGoodCatalog(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	dir := t.TempDir()
	writePack(t, dir, widgetPack)
	r, err := f.svc.CreateRegistry(ctx, admin, &v1.Registry{Metadata: v1.ObjectMeta{Name: "lab"}, Spec: v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: dir}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.LastError != "" || r.Status.Packs != 1 || r.Status.Versions != 1 {
		t.Fatalf("first sync status: %+v", r.Status)
	}
	writePack(t, dir, "name: widget\nlayer: nonsense\n")
	r, err = f.svc.SyncRegistry(ctx, admin, "lab")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.LastError == "" || r.Status.LastErrorAt == nil {
		t.Fatalf("broken source not reported: %+v", r.Status)
	}
	if !strings.Contains(r.Status.LastError, "layer") {
		t.Errorf("error does not say what is wrong: %q", r.Status.LastError)
	}
	pk, err := f.svc.GetPack(ctx, admin, "lab", "widget")
	if err != nil || len(pk.Spec.Versions) != 1 {
		t.Fatalf("last good pack lost: %v", err)
	}

	two := widgetPack + strings.Replace(widgetPack[strings.Index(widgetPack, "  - version"):], "1.0.0", "1.1.0", 1)
	writePack(t, dir, two)
	r, err = f.svc.SyncRegistry(ctx, admin, "lab")
	if err != nil || r.Status.LastError != "" || r.Status.Versions != 2 {
		t.Fatalf("recovery sync: %+v %v", r.Status, err)
	}
	// An index that lists nothing is a catalog: the pack that left goes.
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), []byte("apiVersion: outpost.dev/v1\nkind: PackIndex\npacks: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SyncRegistry(ctx, admin, "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetPack(ctx, admin, "lab", "widget"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("pack that left the registry: %v", err)
	}
}

func TestOnlyHubAdminsChangeRegistries(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	projectAdmin := &authPrincipal{roles: "default=admin"}
	_, err := f.svc.CreateRegistry(ctx, projectAdmin.p(), &v1.Registry{Metadata: v1.ObjectMeta{Name: "x"}, Spec: v1.RegistrySpec{Type: v1.RegistryHelm, URL: "https://charts.example.com"}})
	if !errors.Is(err, errs.ErrForbidden) {
		t.Fatalf("project admin created a registry: %v", err)
	}
	if err := f.svc.DeleteRegistry(ctx, admin, BuiltinRegistry); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("deleting the built-in registry: %v", err)
	}
}

// A profile on a train moves when its registry gains a matching version;
// a pinned layer does not.
func TestTrainsMoveWithTheRegistry(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	dir := t.TempDir()
	writePack(t, dir, widgetPack)
	if _, err := f.svc.CreateRegistry(ctx, admin, &v1.Registry{Metadata: v1.ObjectMeta{Name: "lab"}, Spec: v1.RegistrySpec{Type: v1.RegistryPackIndex, Directory: dir}}); err != nil {
		t.Fatal(err)
	}
	mk := func(name, version string) {
		_, err := f.svc.CreateProfile(ctx, admin, DefaultProject, &v1.ClusterProfile{
			Metadata: v1.ObjectMeta{Name: name},
			Spec:     v1.ClusterProfileSpec{Type: v1.ProfileAddon, Version: "1.0.0", Layers: []v1.ProfileLayer{{Pack: "widget", Registry: "lab", Version: version}}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("on-train", "1.x")
	mk("pinned", "1.0.0")
	resolved := func(name string) string {
		p, err := f.svc.GetProfile(ctx, admin, DefaultProject, name, "1.0.0")
		if err != nil || len(p.Status.Resolved) != 1 {
			t.Fatalf("profile %s: %+v %v", name, p, err)
		}
		return p.Status.Resolved[0].Version
	}
	if got := resolved("on-train"); got != "1.0.0" {
		t.Fatalf("train before: %s", got)
	}
	writePack(t, dir, widgetPack+strings.Replace(widgetPack[strings.Index(widgetPack, "  - version"):], "1.0.0", "1.2.0", 1))
	if _, err := f.svc.SyncRegistry(ctx, admin, "lab"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for resolved("on-train") != "1.2.0" {
		if time.Now().After(deadline) {
			t.Fatalf("train did not move to 1.2.0: %s", resolved("on-train"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := resolved("pinned"); got != "1.0.0" {
		t.Fatalf("pinned layer moved to %s", got)
	}
	evs, _ := f.svc.ListEvents(ctx, admin, DefaultProject, "ClusterProfile/on-train@1.0.0")
	if n := len(evs.Items); n == 0 || evs.Items[n-1].Reason != "VersionsResolved" || !strings.Contains(evs.Items[n-1].Message, "1.0.0 → 1.2.0") {
		t.Fatalf("no event for the move: %+v", evs.Items)
	}
}
