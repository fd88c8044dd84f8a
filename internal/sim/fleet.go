package sim

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/outpost-edge/outpost/internal/agent/agent"
	"github.com/outpost-edge/outpost/internal/agent/hostid"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// Fleet runs simulated hosts, each a real agent against its own root.
type Fleet struct {
	Dir     string // one sub-directory per host
	HubURL  string // the agent API, https://…
	CAPEM   string
	Project string
	Version string
	Log     *slog.Logger
	wg      sync.WaitGroup
}

// Member is one simulated host of a fleet.
type Member struct {
	Host   Host
	Root   string
	ID     string
	Labels map[string]string
}

// Prepare lays out the i-th sample host and returns it with its host ID.
func (f *Fleet) Prepare(i int, labels map[string]string) (*Member, error) {
	h := Sample(i)
	root := filepath.Join(f.Dir, h.Hostname)
	if err := WriteRoot(root, h); err != nil {
		return nil, err
	}
	ud := f.userData(labels)
	id, err := hostid.Compute(hostos.Root{Dir: root}, ud)
	if err != nil {
		return nil, fmt.Errorf("simulated host %s: %w", h.Hostname, err)
	}
	return &Member{Host: h, Root: root, ID: id, Labels: labels}, nil
}

func (f *Fleet) userData(labels map[string]string) *userdata.UserData {
	all := map[string]string{"simulated": "true"}
	for k, v := range labels {
		all[k] = v
	}
	ud := &userdata.UserData{
		Hub:          userdata.Hub{URL: f.HubURL, CACert: f.CAPEM},
		Registration: userdata.Registration{Project: f.Project},
		Host:         userdata.Host{Labels: all},
	}
	ud.SetDefaults()
	return ud
}

// Run starts m's agent; it stops when ctx ends. Wait waits for all of them.
func (f *Fleet) Run(ctx context.Context, m *Member) error {
	a, err := agent.New(agent.Config{
		Root:     hostos.Root{Dir: m.Root},
		UserData: f.userData(m.Labels),
		Version:  f.Version,
		Logger:   f.Log.With("simulated", m.Host.Hostname),
		// Simulated hosts run their clusters on the simulated providers.
		Simulated: true,
	})
	if err != nil {
		return fmt.Errorf("simulated host %s: %w", m.Host.Hostname, err)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := a.Run(ctx); err != nil {
			f.Log.Warn("simulated agent stopped", "host", m.ID, "err", err)
		}
	}()
	return nil
}

// Wait returns when every agent started by Run has stopped.
func (f *Fleet) Wait() { f.wg.Wait() }
