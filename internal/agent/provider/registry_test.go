package provider

import (
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/provider/hostexec"
)

func TestDefaults(t *testing.T) {
	distros, layers := Defaults(hostos.Root{Dir: t.TempDir()}, &hostexec.Recorder{}, nil, nil)
	for _, pack := range []string{"k3s", "rke2", "kubeadm"} {
		d, ok := distros.Lookup(pack)
		if !ok {
			t.Errorf("no provider for %s", pack)
			continue
		}
		if d.Name() != pack {
			t.Errorf("provider for %s calls itself %s", pack, d.Name())
		}
	}
	if _, ok := distros.Lookup("microk8s"); ok {
		t.Error("a provider answers for a pack it does not know")
	}
	if _, ok := layers[engine.LayerKind(v1.RenderedLayer{Layer: v1.LayerOS, Type: v1.PackDistro})]; !ok {
		t.Error("no applier for the os layer")
	}
}
