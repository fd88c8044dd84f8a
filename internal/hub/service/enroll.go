package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/pki"
)

// DefaultProject is where hosts without a token wait when they name none.
const DefaultProject = "default"

func newEnrollmentID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pairOps returns the ops that make h a paired (Ready) host with a fresh
// enrollment: the host write first (a create when the host is new), an
// event, and its (empty) HostSpec when it has none yet.
func (s *Service) pairOps(ctx context.Context, h *v1.EdgeHost, why string, create bool) ([]store.Op, error) {
	now := s.now().UTC()
	h.Status.State = v1.HostReady
	h.Status.EnrollmentID = newEnrollmentID()
	h.Status.PairedAt = &now
	op, err := objects.UpdateOp(v1.KindEdgeHost, h, h.Metadata.Name)
	if err != nil {
		return nil, err
	}
	if create {
		op.Type = store.OpCreate
	}
	ops := []store.Op{op, objects.EventOp(h.Metadata.Project, v1.KindEdgeHost, h.Metadata.Name, objects.EventNormal, "Paired", "host paired: "+why)}
	_, err = s.store.Get(ctx, v1.KindHostSpec, h.Metadata.Project, h.Metadata.Name)
	if err == nil {
		return ops, nil
	}
	if !errors.Is(err, errs.ErrNotFound) {
		return nil, err
	}
	specOp, err := s.emptySpecOp(h)
	if err != nil {
		return nil, err
	}
	return append(ops, specOp), nil
}

// emptySpecOp creates the host's HostSpec. Until the host joins a cluster
// the spec says only who the host is.
func (s *Service) emptySpecOp(h *v1.EdgeHost) (store.Op, error) {
	spec := &v1.HostSpec{
		TypeMeta: typeMeta(v1.KindHostSpec),
		Metadata: v1.ObjectMeta{Name: h.Metadata.Name, Project: h.Metadata.Project},
	}
	content, _ := json.Marshal(struct {
		Host, Project string
	}{h.Metadata.Name, h.Metadata.Project})
	sum := sha256.Sum256(content)
	spec.Hash = hex.EncodeToString(sum[:])
	return objects.CreateOp(v1.KindHostSpec, spec, h.Metadata.Name)
}

func (s *Service) lock(key string) func() {
	m, _ := s.keyLocks.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return func() { mu.Unlock() }
}

// EnrollResult is what Enroll decided.
type EnrollResult struct {
	Response v1.EnrollResponse
	Pending  bool
}

// Enroll handles an agent's enrollment. With a valid registration token the
// host is paired at once; a pre-registered (Unpaired) host pairs without one;
// anything else waits for approval in req.Project. While pending, Enroll
// holds the call up to wait for the approval to arrive.
func (s *Service) Enroll(ctx context.Context, req *v1.EnrollRequest, wait time.Duration) (*EnrollResult, error) {
	var fl errs.FieldList
	validHostID(&fl, "hostID", req.HostID)
	validLabels(&fl, "labels", req.Labels)
	if req.Project != "" {
		validName(&fl, "project", req.Project)
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return nil, errs.Field("csr", "%v", err)
	}
	if csr.Subject.CommonName != req.HostID {
		return nil, errs.Field("csr", "common name %q is not the host ID %q", csr.Subject.CommonName, req.HostID)
	}
	keyHash, err := pki.PublicKeyHash(csr.PublicKey)
	if err != nil {
		return nil, errs.Field("csr", "%v", err)
	}

	var token *storedRegistrationToken
	if req.RegistrationToken != "" {
		if token, err = s.checkRegistrationToken(ctx, req.RegistrationToken); err != nil {
			s.log.Info("enrollment refused", "host", req.HostID, "err", err)
			s.metrics.enrolls.WithLabelValues("refused").Inc()
			return nil, err
		}
	}

	res, err := s.enroll(ctx, req, csr, keyHash, token, wait)
	result := "error"
	switch {
	case err == nil && res.Pending:
		result = "pending"
	case err == nil:
		result = "approved"
	}
	s.metrics.enrolls.WithLabelValues(result).Inc()
	return res, err
}

func (s *Service) enroll(ctx context.Context, req *v1.EnrollRequest, csr *x509.CertificateRequest, keyHash string, token *storedRegistrationToken, wait time.Duration) (*EnrollResult, error) {
	deadline := time.Now().Add(wait)
	for {
		res, retry, err := s.enrollOnce(ctx, req, csr, keyHash, token)
		if err != nil || !retry && (res == nil || !res.Pending) {
			return res, err
		}
		if retry {
			// A concurrent write (token use, approval) got in first: re-read.
			if token != nil {
				if token, err = s.checkRegistrationToken(ctx, req.RegistrationToken); err != nil {
					return nil, err
				}
			}
			continue
		}
		// Pending: wait for the host object to change (approval, deletion).
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return res, nil
		}
		changed, cancel := s.watch.Wait(v1.KindEdgeHost, req.HostID)
		// Re-check after registering the waiter so an approval between the
		// read and the registration is not missed.
		res2, retry2, err := s.enrollOnce(ctx, req, csr, keyHash, token)
		if err != nil || retry2 || !res2.Pending {
			cancel()
			if retry2 {
				continue
			}
			return res2, err
		}
		timer := time.NewTimer(remaining)
		select {
		case <-ctx.Done():
			timer.Stop()
			cancel()
			return res2, nil
		case <-timer.C:
			cancel()
			return res2, nil
		case <-changed:
			timer.Stop()
			cancel()
		}
	}
}

// enrollOnce makes one enrollment decision. retry reports an optimistic
// concurrency conflict the caller should retry.
func (s *Service) enrollOnce(ctx context.Context, req *v1.EnrollRequest, csr *x509.CertificateRequest, keyHash string, token *storedRegistrationToken) (*EnrollResult, bool, error) {
	unlock := s.lock(req.HostID)
	defer unlock()

	h, err := objects.GetByKey[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, req.HostID)
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		return nil, false, err
	}
	exists := err == nil
	var ops []store.Op
	why := ""

	switch {
	case token != nil:
		project := token.Metadata.Project
		if exists && h.Metadata.Project != project {
			return nil, false, fmt.Errorf("host %q is registered in another project: %w", req.HostID, errs.ErrConflict)
		}
		if exists && h.Status.PublicKeyHash == keyHash && (h.Status.State == v1.HostReady || h.Status.State == v1.HostInUse) {
			// The same host asking again (lost its certificate): no new use.
			return s.issue(ctx, h, csr, keyHash, req, nil)
		}
		if !exists {
			h = &v1.EdgeHost{
				TypeMeta: typeMeta(v1.KindEdgeHost),
				Metadata: v1.ObjectMeta{Name: req.HostID, Project: project},
				Status:   v1.EdgeHostStatus{Health: v1.HealthUnknown},
			}
		}
		h.Metadata.Labels = mergeLabels(token.Spec.Labels, req.Labels, h.Metadata.Labels)
		h.Status.EnrolledWith = token.Metadata.Name
		why = "enrolled with registration token " + token.Metadata.Name
		if exists && h.Status.State != v1.HostUnpaired && h.Status.State != v1.HostPendingApproval {
			why = "re-enrolled with a new key using registration token " + token.Metadata.Name
		}
		token.Status.Uses++
		top, err := objects.UpdateOp(v1.KindRegistrationToken, token, token.Status.ID)
		if err != nil {
			return nil, false, err
		}
		ops = append(ops, top)
	case !exists:
		project := req.Project
		if project == "" {
			project = DefaultProject
		}
		if _, err := s.store.Get(ctx, v1.KindProject, "", project); err != nil {
			return nil, false, fmt.Errorf("project %q: %w", project, errs.ErrNotFound)
		}
		if n := s.countPending(project); n >= s.cfg.MaxPendingPerProject {
			return nil, false, fmt.Errorf("project %q already has %d hosts waiting for approval: %w", project, n, errs.ErrUnavailable)
		}
		h = &v1.EdgeHost{
			TypeMeta: typeMeta(v1.KindEdgeHost),
			Metadata: v1.ObjectMeta{Name: req.HostID, Project: project, Labels: mergeLabels(nil, req.Labels, nil)},
			Status: v1.EdgeHostStatus{
				State: v1.HostPendingApproval, Health: v1.HealthUnknown, PublicKeyHash: keyHash,
				AgentVersion: req.AgentVersion, Inventory: req.Inventory, InventoryHash: req.Inventory.Hash(),
			},
		}
		op, err := objects.CreateOp(v1.KindEdgeHost, h, req.HostID)
		if err != nil {
			return nil, false, err
		}
		_, err = s.write(ctx, op, objects.EventOp(project, v1.KindEdgeHost, req.HostID, objects.EventNormal, "ApprovalRequested", "host enrolled without a registration token; approve it to let it in"))
		if errors.Is(err, errs.ErrAlreadyExists) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("enroll host %q: %w", req.HostID, err)
		}
		s.log.Info("host waiting for approval", "host", req.HostID, "project", project)
		return s.pending(req.HostID, project), false, nil
	case h.Status.State == v1.HostUnpaired:
		h.Metadata.Labels = mergeLabels(nil, req.Labels, h.Metadata.Labels)
		why = "pre-registered host enrolled"
	case h.Status.State == v1.HostPendingApproval:
		if h.Status.PublicKeyHash != keyHash {
			return nil, false, fmt.Errorf("host %q is waiting for approval with another key: %w", req.HostID, errs.ErrConflict)
		}
		return s.pending(req.HostID, h.Metadata.Project), false, nil
	default: // Ready or InUse, no token
		if h.Status.PublicKeyHash != keyHash {
			return nil, false, fmt.Errorf("host %q is already enrolled with another key; re-enroll it with a registration token: %w", req.HostID, errs.ErrConflict)
		}
		return s.issue(ctx, h, csr, keyHash, req, nil)
	}

	// Pair (new host with token, pre-registered host, re-enrollment).
	pair, err := s.pairOps(ctx, h, why, !exists)
	if err != nil {
		return nil, false, err
	}
	return s.issue(ctx, h, csr, keyHash, req, append(pair, ops...))
}

// issue signs a certificate for h and writes h (with extra ops) in one go.
func (s *Service) issue(ctx context.Context, h *v1.EdgeHost, csr *x509.CertificateRequest, keyHash string, req *v1.EnrollRequest, ops []store.Op) (*EnrollResult, bool, error) {
	certPEM, cert, err := s.ca.SignClient(csr, h.Metadata.Name, h.Status.EnrollmentID, s.cfg.AgentCertTTL)
	if err != nil {
		return nil, false, err
	}
	h.Status.PublicKeyHash = keyHash
	h.Status.CertificateSerial = cert.SerialNumber.Text(16)
	exp := cert.NotAfter.UTC()
	h.Status.CertificateExpires = &exp
	if req != nil {
		if req.AgentVersion != "" {
			h.Status.AgentVersion = req.AgentVersion
		}
		if req.Inventory != nil {
			h.Status.Inventory, h.Status.InventoryHash = req.Inventory, req.Inventory.Hash()
		}
	}
	// The host write goes first in ops (pairOps puts it there); re-encode it
	// now that the certificate fields are set.
	hostOp, err := objects.UpdateOp(v1.KindEdgeHost, h, h.Metadata.Name)
	if err != nil {
		return nil, false, err
	}
	if len(ops) == 0 {
		ops = []store.Op{hostOp}
	} else {
		hostOp.Type = ops[0].Type
		ops[0] = hostOp
	}
	if _, err := s.write(ctx, ops...); err != nil {
		if errors.Is(err, errs.ErrConflict) || errors.Is(err, errs.ErrAlreadyExists) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("enroll host %q: %w", h.Metadata.Name, err)
	}
	s.presence.touch(h.Metadata.Name, s.now())
	s.log.Info("host enrolled", "host", h.Metadata.Name, "project", h.Metadata.Project, "serial", h.Status.CertificateSerial)
	return &EnrollResult{Response: v1.EnrollResponse{
		Status: v1.EnrollApproved, HostID: h.Metadata.Name, Project: h.Metadata.Project,
		Certificate: string(certPEM), CACertificate: string(s.ca.CertPEM),
	}}, false, nil
}

func (s *Service) pending(id, project string) *EnrollResult {
	return &EnrollResult{Pending: true, Response: v1.EnrollResponse{
		Status: v1.EnrollPending, HostID: id, Project: project, RetryAfterSeconds: 10,
	}}
}

func (s *Service) countPending(project string) int {
	n := 0
	s.hosts.each(func(_ string, e hostEntry) {
		if e.project == project && e.state == v1.HostPendingApproval {
			n++
		}
	})
	return n
}

// mergeLabels layers labels: base (token defaults) < agent's < existing
// (what a person set on the hub wins over what a host says of itself).
func mergeLabels(base, agent, existing map[string]string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, base)
	maps.Copy(out, agent)
	maps.Copy(out, existing)
	if len(out) == 0 {
		return nil
	}
	return out
}
