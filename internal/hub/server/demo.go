package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/examples"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/service"
	"github.com/outpost-edge/outpost/internal/profile"
	"github.com/outpost-edge/outpost/internal/sim"
	"github.com/outpost-edge/outpost/pki"
)

// DemoProject holds the simulated demo fleet.
const DemoProject = "demo"

// demoFleet shows a newcomer every host state at once, with simulated hosts
// (real agents against simulated roots, over the real agent API): four
// pre-registered hosts that pair, one that enrolls unannounced and waits for
// approval, and one pre-registered box that was never plugged in; plus the
// example profile examples/store-edge.yaml.
func startDemo(ctx context.Context, svc *service.Service, agentAddr string, ca *pki.CA, cfg Config, log *slog.Logger) (*sim.Fleet, error) {
	system := &auth.Principal{TokenName: "demo", Roles: []v1.ProjectRole{{Project: v1.AllProjects, Role: v1.RoleAdmin}}}
	if err := svc.EnsureProject(ctx, DemoProject, "a simulated demo fleet (outpost server --demo)"); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(agentAddr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	fleet := &sim.Fleet{
		Dir:     filepath.Join(cfg.DataDir, "demo"),
		HubURL:  "https://" + net.JoinHostPort(host, port),
		CAPEM:   string(ca.CertPEM),
		Project: DemoProject,
		Version: cfg.Version,
		Log:     log.With("component", "demo"),
	}
	sites := []string{"store-berlin", "store-lyon", "clinic-porto", "factory-brno", "store-oslo", "store-graz"}
	for i, site := range sites {
		m, err := fleet.Prepare(i, map[string]string{"site": site})
		if err != nil {
			return nil, err
		}
		preRegister := i != 4 // host 4 shows the approval flow
		plugIn := i != 5      // host 5 is registered but never turns up
		if preRegister {
			_, err := svc.RegisterHost(ctx, system, DemoProject, &v1.EdgeHost{Metadata: v1.ObjectMeta{
				Name: m.ID, Labels: map[string]string{"site": site, v1.LabelName: fmt.Sprintf("%s box %d", site, i+1)},
			}})
			if err != nil && !errors.Is(err, errs.ErrAlreadyExists) {
				return nil, fmt.Errorf("demo: %w", err)
			}
		}
		if plugIn {
			if err := fleet.Run(ctx, m); err != nil {
				return nil, err
			}
		}
	}
	if p, err := profile.Decode(examples.StoreEdge); err != nil {
		log.Warn("demo profile", "err", err)
	} else if _, err := svc.CreateProfile(ctx, system, DemoProject, p); err != nil && !errors.Is(err, errs.ErrAlreadyExists) {
		log.Warn("demo profile", "err", err)
	}
	go demoCluster(ctx, svc, system, fleet, log)
	log.Info("demo fleet started (simulated hosts)", "project", DemoProject, "hosts", len(sites), "dir", fleet.Dir)
	return fleet, nil
}

// demoCluster builds a cluster on the first three simulated hosts once they
// are Ready: one control-plane node and two workers, provisioned through the
// real controller and agents with the simulated distro provider.
func demoCluster(ctx context.Context, svc *service.Service, system *auth.Principal, fleet *sim.Fleet, log *slog.Logger) {
	var ids []string
	for i := range 3 {
		m, err := fleet.Prepare(i, nil)
		if err != nil {
			return
		}
		ids = append(ids, m.ID)
	}
	// Simulation bootstrap: wait (bounded) for the demo agents to enroll.
	deadline := time.Now().Add(time.Minute)
	for {
		ready := 0
		for _, id := range ids {
			if h, err := svc.GetHost(ctx, system, DemoProject, id); err == nil && (h.Status.State == v1.HostReady || h.Status.State == v1.HostInUse) {
				ready++
			}
		}
		if ready == len(ids) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	_, err := svc.CreateCluster(ctx, system, DemoProject, &v1.Cluster{
		Metadata: v1.ObjectMeta{Name: "store-berlin", Labels: map[string]string{"simulated": "true"}},
		Spec: v1.ClusterSpec{
			Profiles:  []v1.ClusterProfileRef{{Name: "store-edge", Version: "1.0.0"}},
			Variables: map[string]string{"siteCode": "de-001"},
			Pools: []v1.NodePool{
				{Name: "control-plane", ControlPlane: true, AllowWorkloads: true, Hosts: ids[:1]},
				{Name: "workers", Hosts: ids[1:]},
			},
		},
	})
	if err != nil && !errors.Is(err, errs.ErrAlreadyExists) {
		log.Warn("demo cluster", "err", err)
	}
}
