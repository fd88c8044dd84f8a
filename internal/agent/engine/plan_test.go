package engine_test

import (
	"slices"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

func layer(name, kind, typ, version, hash string) v1.RenderedLayer {
	return v1.RenderedLayer{Name: name, Layer: kind, Type: typ, Pack: name, Version: version, Hash: hash}
}

var (
	osUbuntu   = layer("ubuntu", v1.LayerOS, v1.PackDistro, "22.04", "os1")
	k3s1       = v1.RenderedLayer{Name: "k3s", Layer: v1.LayerK8s, Type: v1.PackDistro, Pack: "k3s", Version: "1.32.2+k3s1", KubernetesVersion: "1.32.2", Hash: "k3s-a"}
	k3s2       = v1.RenderedLayer{Name: "k3s", Layer: v1.LayerK8s, Type: v1.PackDistro, Pack: "k3s", Version: "1.32.3+k3s1", KubernetesVersion: "1.32.3", Hash: "k3s-b"}
	calico     = layer("calico", v1.LayerCNI, v1.PackHelm, "3.29.0", "cal-a")
	calico2    = layer("calico", v1.LayerCNI, v1.PackHelm, "3.29.0", "cal-b")
	longhorn   = layer("longhorn", v1.LayerCSI, v1.PackHelm, "1.8.0", "lh-a")
	monitoring = layer("monitoring", v1.LayerAddon, v1.PackManifest, "1.0.0", "mon-a")
)

// spec makes a HostSpec; its hash is given, as the hub computes it.
func spec(hash, role string, os, distro *v1.RenderedLayer, layers ...v1.RenderedLayer) *v1.HostSpec {
	c := &v1.HostCluster{Name: "store", Project: "stores", Role: role, Pool: "cp", OS: os, Distro: distro, Layers: layers}
	if role != v1.RoleInit {
		c.JoinEndpoint, c.JoinToken = "192.0.2.10", "K10secret"
	}
	return &v1.HostSpec{Metadata: v1.ObjectMeta{Name: "edge-1", Revision: 1}, Hash: hash, Cluster: c}
}

func ptr[T any](v T) *T { return &v }

// installed is the state of a host that applied os, distro and layers.
func installed(hash string, role string, distro v1.RenderedLayer, layers ...v1.RenderedLayer) *engine.State {
	s := &engine.State{SpecHash: hash, OS: ptr(osUbuntu), Distro: &engine.DistroState{Layer: distro, Role: role, Cluster: "store", Joined: true}}
	keys := engine.LayerKeys(layers)
	for i, l := range layers {
		s.Layers = append(s.Layers, engine.AppliedLayer{Key: keys[i], Layer: l})
	}
	return s
}

func names(steps []engine.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Name)
	}
	return out
}

func TestPlan(t *testing.T) {
	withRemove := func(s *v1.HostSpec) *v1.HostSpec { s.Cluster.Remove = true; return s }
	granted := func(s *v1.HostSpec) *v1.HostSpec { s.Cluster.UpgradeGranted = true; return s }
	withLayer := func(s *engine.State, key string, l v1.RenderedLayer) *engine.State {
		s.Layers = append(s.Layers, engine.AppliedLayer{Key: key, Layer: l})
		return s
	}
	notJoined := installed("h0", v1.RoleInit, k3s1)
	notJoined.Distro.Joined = false
	helmMonitoring := monitoring
	helmMonitoring.Type, helmMonitoring.Hash = v1.PackHelm, "mon-helm"
	dupA, dupB := layer("ingress", v1.LayerAddon, v1.PackHelm, "1", "ia"), layer("ingress", v1.LayerAddon, v1.PackManifest, "1", "ib")

	full := []string{"apply os ubuntu", "install k3s", "wait for node to join", "apply layer calico", "apply layer longhorn"}
	cases := []struct {
		name  string
		state *engine.State
		spec  *v1.HostSpec
		want  []string
		gate  string
	}{
		{"fresh init", nil, spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn), full, ""},
		{"fresh control plane", &engine.State{}, spec("h1", v1.RoleControlPlane, &osUbuntu, &k3s1, calico, longhorn), full, ""},
		{"fresh worker", &engine.State{}, spec("h1", v1.RoleWorker, &osUbuntu, &k3s1, calico, longhorn), full, ""},
		{"no OS layer", nil, spec("h1", v1.RoleInit, nil, &k3s1, calico), []string{"install k3s", "wait for node to join", "apply layer calico"}, ""},
		{"unchanged spec hash", installed("h1", v1.RoleInit, k3s1, calico), spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico), nil, ""},
		{"new hash, nothing that acts changed", installed("h0", v1.RoleInit, k3s1, calico), spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico), nil, ""},
		{"no cluster part", installed("h0", v1.RoleInit, k3s1), &v1.HostSpec{Hash: "h1"}, nil, ""},
		{"reconfigure one layer", installed("h0", v1.RoleInit, k3s1, calico, longhorn), spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico2, longhorn), []string{"apply layer calico"}, ""},
		{"layer added", installed("h0", v1.RoleInit, k3s1, calico), spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn), []string{"apply layer longhorn"}, ""},
		{"layers removed in reverse", installed("h0", v1.RoleInit, k3s1, calico, longhorn, monitoring), spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico),
			[]string{"remove layer monitoring", "remove layer longhorn"}, ""},
		{"layer changed type", installed("h0", v1.RoleInit, k3s1, calico, monitoring), spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, helmMonitoring),
			[]string{"remove layer monitoring", "apply layer monitoring"}, ""},
		{"upgrade waits for its turn", installed("h0", v1.RoleInit, k3s1, calico), spec("h1", v1.RoleInit, &osUbuntu, &k3s2, calico2),
			[]string{"upgrade k3s"}, engine.MsgWaitingForTurn},
		{"OS before the gate", installed("h0", v1.RoleWorker, k3s1, calico), spec("h1", v1.RoleWorker, ptr(layer("ubuntu", v1.LayerOS, v1.PackDistro, "24.04", "os2")), &k3s2, calico),
			[]string{"apply os ubuntu", "upgrade k3s"}, engine.MsgWaitingForTurn},
		{"upgrade granted", installed("h0", v1.RoleInit, k3s1, calico), granted(spec("h1", v1.RoleInit, &osUbuntu, &k3s2, calico2)),
			[]string{"upgrade k3s", "wait for node to join", "apply layer calico"}, ""},
		{"restart before the node joined", notJoined, spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico), []string{"wait for node to join", "apply layer calico"}, ""},
		{"role changed", installed("h0", v1.RoleWorker, k3s1, calico), spec("h1", v1.RoleControlPlane, &osUbuntu, &k3s1, calico),
			[]string{"remove k3s", "install k3s", "wait for node to join", "apply layer calico"}, ""},
		{"another cluster", installed("h0", v1.RoleWorker, k3s1, calico), func() *v1.HostSpec {
			s := spec("h1", v1.RoleWorker, &osUbuntu, &k3s1, calico)
			s.Cluster.Name = "depot"
			return s
		}(), []string{"remove k3s", "install k3s", "wait for node to join", "apply layer calico"}, ""},
		{"remove all", installed("h0", v1.RoleInit, k3s1, calico, longhorn), withRemove(spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn)),
			[]string{"remove layer longhorn", "remove layer calico", "remove k3s"}, ""},
		{"remove what the state lost too", withLayer(installed("h0", v1.RoleInit, k3s1), "calico", calico), withRemove(spec("h1", v1.RoleInit, &osUbuntu, &k3s1, calico, longhorn)),
			[]string{"remove layer calico", "remove layer longhorn", "remove k3s"}, ""},
		{"remove after removed", &engine.State{SpecHash: "h1"}, withRemove(spec("h1", v1.RoleInit, &osUbuntu, &k3s1)), nil, ""},
		{"duplicate layer names", nil, spec("h1", v1.RoleInit, nil, &k3s1, dupA, dupB),
			[]string{"install k3s", "wait for node to join", "apply layer ingress", "apply layer ingress#2"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			steps := engine.Plan(c.state, c.spec)
			if got := names(steps); !slices.Equal(got, c.want) {
				t.Fatalf("steps = %q, want %q", got, c.want)
			}
			for i, s := range steps {
				gate := ""
				if i == len(steps)-1 {
					gate = c.gate
				}
				if s.Gate != gate {
					t.Errorf("step %q gate = %q, want %q", s.Name, s.Gate, gate)
				}
			}
		})
	}
}

// The actions carry what providers need: role and join data for the
// distro, the distro and role for layers, the installed layer to upgrade
// from and to remove.
func TestPlanActions(t *testing.T) {
	steps := engine.Plan(nil, spec("h1", v1.RoleWorker, &osUbuntu, &k3s1, calico))
	os, install, wait, cal := steps[0], steps[1], steps[2], steps[3]
	if os.Kind != engine.StepLayer || os.Layer.Op != engine.LayerApply || os.Layer.Layer.Hash != "os1" || engine.LayerKind(os.Layer.Layer) != "os" {
		t.Errorf("os step = %+v", os.Layer)
	}
	a := install.Distro
	if install.Kind != engine.StepDistro || a.Op != engine.DistroInstall || a.Role != v1.RoleWorker || a.JoinEndpoint != "192.0.2.10" ||
		a.JoinToken != "K10secret" || a.Node != "edge-1" || a.Cluster != "store" || a.Layer.Hash != "k3s-a" {
		t.Errorf("install action = %+v", a)
	}
	if wait.Kind != engine.StepWait || wait.Distro.Role != v1.RoleWorker || wait.Distro.Pack() != "k3s" {
		t.Errorf("wait step = %+v", wait)
	}
	if l := cal.Layer; l.Op != engine.LayerApply || l.Key != "calico" || l.Distro != "k3s" || l.Role != v1.RoleWorker || engine.LayerKind(l.Layer) != v1.PackHelm {
		t.Errorf("calico action = %+v", l)
	}

	s := spec("h2", v1.RoleInit, &osUbuntu, &k3s2, calico)
	s.Cluster.UpgradeGranted = true
	up := engine.Plan(installed("h1", v1.RoleInit, k3s1, calico), s)[0].Distro
	if up.Op != engine.DistroUpgrade || up.From == nil || up.From.Version != k3s1.Version || up.Layer.Version != k3s2.Version {
		t.Errorf("upgrade action = %+v", up)
	}

	// Removal uses what was applied, not what the spec now says.
	s = spec("h2", v1.RoleInit, &osUbuntu, &k3s2, calico2)
	s.Cluster.Remove = true
	steps = engine.Plan(installed("h1", v1.RoleInit, k3s1, calico), s)
	if l := steps[0].Layer; l.Op != engine.LayerRemove || l.Layer.Hash != "cal-a" {
		t.Errorf("remove layer action = %+v", l)
	}
	if d := steps[1].Distro; d.Op != engine.DistroRemove || d.Layer.Hash != "k3s-a" {
		t.Errorf("remove distro action = %+v", d)
	}
}
