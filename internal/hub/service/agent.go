package service

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/pki"
)

// AgentIdentity is a host authenticated by its client certificate.
type AgentIdentity struct {
	HostID       string
	Project      string
	EnrollmentID string
}

// AuthenticateAgent checks that a verified client certificate still belongs
// to a paired host: the host exists and the certificate was issued for its
// current enrollment. It reads memory only.
func (s *Service) AuthenticateAgent(cert *x509.Certificate) (*AgentIdentity, error) {
	id := cert.Subject.CommonName
	e, ok := s.hosts.get(id)
	if !ok {
		return nil, fmt.Errorf("host %q is not registered: %w", id, errs.ErrUnauthenticated)
	}
	enr := pki.EnrollmentID(cert)
	if e.enrollmentID == "" || enr != e.enrollmentID || (e.state != v1.HostReady && e.state != v1.HostInUse) {
		return nil, fmt.Errorf("certificate of host %q belongs to an earlier enrollment: %w", id, errs.ErrUnauthenticated)
	}
	return &AgentIdentity{HostID: id, Project: e.project, EnrollmentID: enr}, nil
}

// Renew signs a fresh certificate for an enrolled host.
func (s *Service) Renew(ctx context.Context, a *AgentIdentity, req *v1.RenewRequest) (*v1.RenewResponse, error) {
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return nil, errs.Field("csr", "%v", err)
	}
	if csr.Subject.CommonName != a.HostID {
		return nil, errs.Field("csr", "common name %q is not the host ID %q", csr.Subject.CommonName, a.HostID)
	}
	keyHash, err := pki.PublicKeyHash(csr.PublicKey)
	if err != nil {
		return nil, errs.Field("csr", "%v", err)
	}
	for {
		h, err := objects.GetByKey[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, a.HostID)
		if err != nil {
			return nil, fmt.Errorf("renew host %q: %w", a.HostID, err)
		}
		certPEM, cert, err := s.ca.SignClient(csr, a.HostID, a.EnrollmentID, s.cfg.AgentCertTTL)
		if err != nil {
			return nil, err
		}
		h.Status.PublicKeyHash = keyHash
		h.Status.CertificateSerial = cert.SerialNumber.Text(16)
		exp := cert.NotAfter.UTC()
		h.Status.CertificateExpires = &exp
		op, err := objects.UpdateOp(v1.KindEdgeHost, h, a.HostID)
		if err != nil {
			return nil, err
		}
		if _, err := s.write(ctx, op); errors.Is(err, errs.ErrConflict) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("renew host %q: %w", a.HostID, err)
		}
		return &v1.RenewResponse{Certificate: string(certPEM), CACertificate: string(s.ca.CertPEM)}, nil
	}
}

// Heartbeat records that a host is alive. It writes to the store only when
// something the hub shows changed: inventory, agent version, health.
func (s *Service) Heartbeat(ctx context.Context, a *AgentIdentity, req *v1.HeartbeatRequest) (*v1.HeartbeatResponse, error) {
	now := s.now()
	s.presence.touch(a.HostID, now)
	s.metrics.heartbeats.Inc()
	resp := &v1.HeartbeatResponse{IntervalSeconds: int(s.cfg.HeartbeatInterval / time.Second)}

	e, _ := s.hosts.get(a.HostID)
	health := req.Health
	if health != v1.HealthUnhealthy {
		health = v1.HealthHealthy
	}
	var inv *v1.Inventory
	if req.Inventory != nil {
		if got := req.Inventory.Hash(); got != e.inventoryHash {
			inv = req.Inventory
		}
	} else if req.InventoryHash != "" && req.InventoryHash != e.inventoryHash {
		resp.SendInventory = true
	}
	versionChanged := req.AgentVersion != "" && req.AgentVersion != e.agentVersion
	healthChanged := health != e.health || req.HealthMessage != e.healthMessage
	if inv == nil && !versionChanged && !healthChanged {
		return resp, nil
	}
	for {
		h, err := objects.GetByKey[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, a.HostID)
		if err != nil {
			return nil, fmt.Errorf("heartbeat of host %q: %w", a.HostID, err)
		}
		ops := s.heartbeatOps(h, inv, req, health)
		if ops == nil {
			return resp, nil
		}
		_, err = s.write(ctx, ops...)
		if errors.Is(err, errs.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("heartbeat of host %q: %w", a.HostID, err)
		}
		return resp, nil
	}
}

func (s *Service) heartbeatOps(h *v1.EdgeHost, inv *v1.Inventory, req *v1.HeartbeatRequest, health string) []store.Op {
	changed := false
	var ops []store.Op
	if inv != nil && inv.Hash() != h.Status.InventoryHash {
		h.Status.Inventory, h.Status.InventoryHash = inv, inv.Hash()
		changed = true
	}
	if req.AgentVersion != "" && req.AgentVersion != h.Status.AgentVersion {
		if h.Status.AgentVersion != "" {
			ops = append(ops, objects.EventOp(h.Metadata.Project, v1.KindEdgeHost, h.Metadata.Name, objects.EventNormal, "AgentUpdated", fmt.Sprintf("agent %s → %s", h.Status.AgentVersion, req.AgentVersion)))
		}
		h.Status.AgentVersion = req.AgentVersion
		changed = true
	}
	if health != h.Status.Health || req.HealthMessage != h.Status.HealthMessage {
		typ := objects.EventNormal
		if health != v1.HealthHealthy {
			typ = objects.EventWarning
		}
		msg := "host is " + health
		if h.Status.Health == v1.HealthOffline {
			msg = "host is back online and " + health
		}
		if req.HealthMessage != "" {
			msg += ": " + req.HealthMessage
		}
		ops = append(ops, objects.EventOp(h.Metadata.Project, v1.KindEdgeHost, h.Metadata.Name, typ, health, msg))
		h.Status.Health, h.Status.HealthMessage = health, req.HealthMessage
		changed = true
	}
	if !changed {
		return nil
	}
	op, err := objects.UpdateOp(v1.KindEdgeHost, h, h.Metadata.Name)
	if err != nil {
		return nil
	}
	return append([]store.Op{op}, ops...)
}

// WaitSpec returns the host's HostSpec when its revision is newer than since,
// waiting up to wait for it to change. It returns (nil, nil) when nothing
// changed in time, and ErrUnauthenticated when the host was deleted or
// re-enrolled meanwhile (its certificate no longer counts).
func (s *Service) WaitSpec(ctx context.Context, a *AgentIdentity, since int64, wait time.Duration) (*v1.HostSpec, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Register before reading so a change between the two is not lost.
		specChanged, cancelSpec := s.watch.Wait(v1.KindHostSpec, a.HostID)
		hostChanged, cancelHost := s.watch.Wait(v1.KindEdgeHost, a.HostID)
		spec, err := s.currentSpec(ctx, a, since)
		if spec != nil || err != nil {
			cancelSpec()
			cancelHost()
			return spec, err
		}
		select {
		case <-ctx.Done():
			cancelSpec()
			cancelHost()
			return nil, nil
		case <-timer.C:
			cancelSpec()
			cancelHost()
			return nil, nil
		case <-specChanged:
			cancelHost()
		case <-hostChanged:
			cancelSpec()
		}
	}
}

func (s *Service) currentSpec(ctx context.Context, a *AgentIdentity, since int64) (*v1.HostSpec, error) {
	e, ok := s.hosts.get(a.HostID)
	if !ok || e.enrollmentID != a.EnrollmentID {
		return nil, fmt.Errorf("host %q is no longer enrolled: %w", a.HostID, errs.ErrUnauthenticated)
	}
	spec, err := objects.GetByKey[v1.HostSpec](ctx, s.store, v1.KindHostSpec, a.HostID)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if spec.Metadata.Revision <= since {
		return nil, nil
	}
	return spec, nil
}
